"""Statistics engine: exact agreement with rsatoolbox/scipy/statsmodels, and calibration."""

import numpy as np
import pytest
import rsatoolbox
from scipy.stats import kstest, spearmanr
from statsmodels.stats.multitest import multipletests

from lib import inference as inf
from lib.rsa import rdm


def _rdms(x):
    return rdm(x)


def test_bootstrap_equals_rsatoolbox_resampling_with_ties():
    """Weighted-rank Spearman of a resample == rsatoolbox's subsample_pattern + compare
    (which drops same-stimulus pairs), including ties in the RDM values."""
    rng = np.random.default_rng(0)
    n = 11
    x = rng.normal(size=(n, 15))
    a = _rdms(x).get_vectors()
    a_tied = np.round(a * 4) / 4  # many ties
    b = _rdms(x + rng.normal(size=(n, 15))).get_vectors()
    counts = inf.bootstrap_counts(n, 8, seed=3)
    got = inf.bootstrap_spearman(np.vstack([a, a_tied]), b, counts)
    for i, c in enumerate(counts):
        idx = np.repeat(np.arange(n), c)
        rb = rsatoolbox.rdm.RDMs(b, pattern_descriptors={"index": list(range(n))}).subsample_pattern("index", idx)
        for row, vec in enumerate((a, a_tied)):
            ra = rsatoolbox.rdm.RDMs(vec, pattern_descriptors={"index": list(range(n))}).subsample_pattern("index", idx)
            want = rsatoolbox.rdm.compare(ra, rb, method="spearman")[0, 0]
            assert got[i, row, 0] == pytest.approx(want, abs=1e-10)


def test_bootstrap_counts_are_paired_and_complete():
    c1 = inf.bootstrap_counts(20, 50, seed=7)
    assert np.array_equal(c1, inf.bootstrap_counts(20, 50, seed=7))
    assert (c1.sum(axis=1) == 20).all()
    assert not np.array_equal(c1, inf.bootstrap_counts(20, 50, seed=8))


def test_permuted_vectors_relabel_stimuli():
    """Each permuted vector is the upper triangle of P D Pᵀ (rows and columns together)."""
    rng = np.random.default_rng(1)
    n = 7
    v = rng.random(n * (n - 1) // 2)
    sq = inf._square(v, n)
    perms = inf.permutations(n, 5, seed=0)
    got = inf.permuted_vectors(v, perms)
    iu = np.triu_indices(n, 1)
    for p, row in zip(perms, got):
        assert np.allclose(row, sq[np.ix_(p, p)][iu])


def test_permutation_null_equals_scipy_on_permuted_reference():
    rng = np.random.default_rng(2)
    n = 9
    layers = rng.random((3, n * (n - 1) // 2))
    ref = rng.random(n * (n - 1) // 2)
    perms = inf.permutations(n, 4, seed=1)
    null = inf.permutation_null(inf.zscored_ranks(layers), inf.zscored_ranks(ref)[0], perms)
    sq = inf._square(ref, n)
    iu = np.triu_indices(n, 1)
    for j, p in enumerate(perms):
        for i in range(3):
            assert null[i, j] == pytest.approx(spearmanr(layers[i], sq[np.ix_(p, p)][iu])[0], abs=1e-12)


def test_permutation_pvalues_uniform_under_null_and_small_under_effect():
    rng = np.random.default_rng(4)
    n, k = 12, 300
    ref = _rdms(rng.normal(size=(n, 10)))
    layers = np.vstack([_rdms(rng.normal(size=(n, 10))).get_vectors() for _ in range(k)])
    lz, rz = inf.zscored_ranks(layers), inf.zscored_ranks(ref.get_vectors())[0]
    perms = inf.permutations(n, 199, seed=0)
    p = inf.permutation_pvalues(lz @ rz, inf.permutation_null(lz, rz, perms))
    assert kstest(p, "uniform").pvalue > 0.01
    assert 0.02 < np.mean(p < 0.05) < 0.09
    # planted effect: layer = reference features + modest noise
    x = rng.normal(size=(n, 10))
    eff = np.vstack([_rdms(x + 0.5 * rng.normal(size=(n, 10))).get_vectors() for _ in range(20)])
    ez = inf.zscored_ranks(eff)
    rz2 = inf.zscored_ranks(_rdms(x).get_vectors())[0]
    p_eff = inf.permutation_pvalues(ez @ rz2, inf.permutation_null(ez, rz2, perms))
    assert np.all(p_eff <= 0.01)


def test_permutation_pvalues_sides_and_bad_alternative():
    obs = np.array([0.5, -0.5, np.nan])
    null = np.array([[0.1, -0.6, 0.2, 0.55]] * 3)
    assert np.allclose(inf.permutation_pvalues(obs, null)[:2], [3 / 5, 3 / 5])
    assert inf.permutation_pvalues(obs, null, "greater")[0] == pytest.approx(2 / 5)
    assert inf.permutation_pvalues(obs, null, "less")[1] == pytest.approx(2 / 5)
    assert np.isnan(inf.permutation_pvalues(obs, null)[2])
    with pytest.raises(ValueError, match="two-sided"):
        inf.permutation_pvalues(obs, null, "both")


def test_bootstrap_ci_covers_planted_value_at_nominal_rate():
    """Population rho from one very large stimulus sample; 95 % CIs from n = 25 samples
    should cover it about 95 % of the time (stimulus bootstrap is, if anything, wide)."""
    rng = np.random.default_rng(5)
    d = 6

    def sample(n):
        x = rng.normal(size=(n, d))
        return (_rdms(x + 0.8 * rng.normal(size=(n, d))).get_vectors(),
                _rdms(x + 0.8 * rng.normal(size=(n, d))).get_vectors())

    big_a, big_b = sample(600)
    truth = spearmanr(big_a[0], big_b[0])[0]
    hits, sims = 0, 80
    for s in range(sims):
        a, b = sample(25)
        draws = inf.bootstrap_spearman(a, b, inf.bootstrap_counts(25, 200, seed=s))[:, 0, 0]
        lo, hi = inf.percentile_ci(draws)
        hits += lo <= truth <= hi
    assert 0.85 <= hits / sims <= 1.0


def test_fdr_matches_statsmodels_and_keeps_nan():
    rng = np.random.default_rng(6)
    p = rng.random(50) ** 3
    want = multipletests(p, method="fdr_bh")[1]
    assert np.allclose(inf.fdr_bh(p), want)
    p_nan = p.copy()
    p_nan[[3, 7]] = np.nan
    got = inf.fdr_bh(p_nan)
    assert np.isnan(got[[3, 7]]).all()
    keep = ~np.isnan(p_nan)
    assert np.allclose(got[keep], multipletests(p_nan[keep], method="fdr_bh")[1])
    assert np.isnan(inf.fdr_bh(np.array([np.nan]))).all()


def test_partial_correlation_hand_worked():
    # r_xy = .5, r_xz = .5, r_yz = .5  ->  (.5 - .25) / (1 - .25) = 1/3
    assert inf.partial_from_corr(0.5, 0.5, 0.5) == pytest.approx(1 / 3)
    assert inf.partial_from_corr(0.8, 0.0, 0.0) == pytest.approx(0.8)
    assert np.isnan(inf.partial_from_corr(0.5, 1.0, 0.2))


def test_bootstrap_pvalue():
    draws = np.array([[0.1], [0.2], [0.3], [-0.1]])
    assert inf.bootstrap_pvalue(draws)[0] == pytest.approx(2 * 2 / 5)
    assert np.isnan(inf.bootstrap_pvalue(np.full((3, 1), np.nan))[0])


def test_constant_vector_gives_nan_draws_and_mismatch_errors():
    rng = np.random.default_rng(8)
    n = 8
    m = n * (n - 1) // 2
    draws = inf.bootstrap_spearman(np.vstack([np.ones(m), rng.random(m)]), rng.random(m), inf.bootstrap_counts(n, 5, 0))
    assert np.isnan(draws[:, 0]).all() and not np.isnan(draws[:, 1]).any()
    with pytest.raises(ValueError, match="differ in length"):
        inf.bootstrap_spearman(rng.random((1, m)), rng.random((1, m - 1)), inf.bootstrap_counts(n, 2, 0))
    with pytest.raises(ValueError, match="upper triangle"):
        inf.n_from_pairs(7)


def test_bootstrap_pvalue_tail_fit_below_the_floor():
    from scipy.stats import norm

    rng = np.random.default_rng(0)
    draws = np.column_stack([rng.normal(5.0, 1.0, 1000), rng.normal(0.3, 1.0, 1000)])
    emp = inf.bootstrap_pvalue(draws)
    fit = inf.bootstrap_pvalue(draws, tail_fit=True)
    assert emp[0] == pytest.approx(2 / 1001)  # the floor
    m, s = draws[:, 0].mean(), draws[:, 0].std(ddof=1)
    assert fit[0] == pytest.approx(2 * norm.sf(m / s)) and fit[0] < 1e-5
    assert fit[1] == emp[1]  # hundreds of draws cross zero: the empirical share stands
