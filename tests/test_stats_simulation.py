"""Simulation checks of the inference (issue 11): levels and coverage over many datasets.

Each test draws >= 1,000 small datasets with a fixed seed and runs the library's own
functions on each; the numbers are printed in the assertion messages so a failure (or a
reader) sees the rates, including the old method's where there is one.
"""

import numpy as np
import pandas as pd
import pytest
import rsatoolbox
from scipy import stats
from scipy.spatial.distance import pdist

from lib import inference as inf
from lib import rsa
from lib.brain.analysis import cross_layer_link, network_bootstrap, roi_subject_tests

ALPHA = 0.05


def _sqdist(f: np.ndarray) -> np.ndarray:
    return pdist(f, "sqeuclidean")


def _null_dataset(rng, n: int, effect: float = 0.0):
    """Two correlated references and a layer that carries only the control's structure
    (plus, with ``effect`` > 0, a unique share of the target's own part).

    The control is categorical (same / different category of 4), so every function of it
    is linear in its ranks: "no unique target information" then means a partial Spearman
    of exactly zero in the population, which is the null the test is about."""
    cat = rng.permutation(np.arange(n) % 4)
    control = (cat[:, None] != cat[None, :])[np.triu_indices(n, 1)].astype(float)
    a, e = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    own = _sqdist(a)
    target = control * own.std() + own  # shares the category structure with the control
    noise = _sqdist(e)
    layer = 3.0 * control * noise.std() + noise + effect * own / own.std() * noise.std()
    return inf.zscored_ranks(np.vstack([layer, target, control]))


def _partial_rejections(n_sets: int, n: int, effect: float, seed: int, n_perm: int = 199):
    rng = np.random.default_rng(seed)
    perms = inf.permutations(n, n_perm, seed + 1)
    rej = np.zeros(2)
    r_refs = []
    for _ in range(n_sets):
        lz, xz, cz = _null_dataset(rng, n, effect)
        r_refs.append(xz @ cz)
        obs = np.array([inf.partial_from_corr(lz @ xz, lz @ cz, xz @ cz)])
        for i, null in enumerate((inf.freedman_lane_null(lz[None], xz, cz, perms),
                                  inf.smouse_null(lz[None], xz, cz, perms))):
            rej[i] += inf.permutation_pvalues(obs, null)[0] <= ALPHA
    return rej / n_sets, float(np.mean(r_refs))


def test_partial_rsa_holds_its_level_with_correlated_references():
    (fl, old), r_refs = _partial_rejections(1500, 16, 0.0, seed=11)
    msg = (f"Freedman–Lane rejects {fl:.1%} of 1,500 null datasets (n = 16 stimuli, references correlated at "
           f"mean Spearman {r_refs:.2f}); the previous method (relabelling the raw target, Smouse et al.) "
           f"rejects {old:.1%}")
    assert 0.035 <= fl <= 0.065, msg
    assert old > fl, msg  # the old method's inflation, in this very simulation
    print(msg)


def test_partial_rsa_has_power_against_a_unique_effect():
    (fl, _), _ = _partial_rejections(300, 16, 1.0, seed=12)
    assert fl > 0.5, f"Freedman–Lane power {fl:.1%} with a planted unique target effect"


def test_partial_rsa_table_uses_freedman_lane():
    """The table's p is the Freedman–Lane p with the table's own permutations."""
    rng = np.random.default_rng(3)
    n = 14
    ids = [f"s{i}" for i in range(n)]
    vecs = np.vstack([_sqdist(rng.normal(size=(n, 3))) for _ in range(3)])
    layer = rsatoolbox.rdm.RDMs(vecs[:1] + vecs[2:], rdm_descriptors={"model": ["m"], "layer": ["l0"]},
                                pattern_descriptors={"image_id": ids})
    refs = {"saliency": rsatoolbox.rdm.RDMs(vecs[1:2], pattern_descriptors={"image_id": ids}),
            "semantic": rsatoolbox.rdm.RDMs(vecs[2:3] + 0.5 * vecs[1:2], pattern_descriptors={"image_id": ids})}
    t = rsa.partial_rsa(layer, refs, n_permutations=50, n_bootstrap=0, alpha=0.05, seed=4)
    row = t[t.reference == "saliency"].iloc[0]
    lz, sz, mz = inf.zscored_ranks(np.vstack([layer.get_vectors(), vecs[1:2], refs["semantic"].get_vectors()]))
    perms = inf.permutations(n, int(row.n_permutations), 4)
    null = inf.freedman_lane_null(lz[None], sz, mz, perms)
    assert row.p == pytest.approx(inf.permutation_pvalues(np.array([row.rho]), null)[0])
    assert row.n_permutations == 50  # one layer: 1/0.05 = 20 < 50 requested


def _link_dataset(rng, k: int, n_layers: int, mu: float, tau: float):
    z = rng.normal(mu, tau, k)
    xs, ys, nets = [], [], []
    for g, r in enumerate(np.tanh(z)):
        x = rng.normal(size=n_layers) + rng.normal()  # each network its own offset
        y = r * (x - x.mean()) + np.sqrt(1 - r * r) * rng.normal(size=n_layers) + rng.normal()
        xs.append(x), ys.append(y), nets.append(np.full(n_layers, f"net{g}"))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(nets)


def test_network_bootstrap_covers_the_planted_link():
    """Planted: each network's layer-level correlation is tanh(z_g), z_g ~ N(mu, tau); the
    pooled estimand is tanh(mu). The old layer-pooled Fisher CI is shown for contrast."""
    rng = np.random.default_rng(21)
    mu, tau, k, n_layers, n_sets = 0.5, 0.25, 10, 20, 1000
    cover = cover_old = 0
    for d in range(n_sets):
        x, y, net = _link_dataset(rng, k, n_layers, mu, tau)
        boot = network_bootstrap(x, y, net, n_bootstrap=200, seed=d)
        lo, hi = inf.percentile_ci(boot[:, None], 0.95)
        cover += lo[0] <= mu <= hi[0]
        r = np.corrcoef(x, y)[0, 1]  # previous method: all layers as independent points
        half = stats.norm.ppf(0.975) / np.sqrt(len(x) - 3)
        cover_old += np.arctanh(r) - half <= mu <= np.arctanh(r) + half
    msg = (f"hierarchical network bootstrap covers the planted link in {cover / n_sets:.1%} of {n_sets} datasets "
           f"({k} networks x {n_layers} layers); the previous layer-pooled Fisher CI in {cover_old / n_sets:.1%}")
    assert cover / n_sets >= 0.93, msg
    print(msg)


def test_network_sign_flip_holds_its_level():
    rng = np.random.default_rng(22)
    p = []
    for _ in range(2000):
        x, y, net = _link_dataset(rng, 8, 15, 0.0, 0.2)
        z = [np.arctanh(np.corrcoef(x[net == g], y[net == g])[0, 1]) for g in dict.fromkeys(net)]
        p.append(inf.sign_flip_pvalue(np.array(z))[0])
    rate = float(np.mean(np.array(p) <= ALPHA))
    msg = f"sign-flip over 8 networks rejects {rate:.1%} of 2,000 null datasets"
    assert 0.03 <= rate <= 0.065, msg
    print(msg)


def test_cross_layer_link_end_to_end_on_planted_networks():
    rng = np.random.default_rng(23)
    x, y, net = _link_dataset(rng, 10, 30, 0.6, 0.1)
    table, fits = cross_layer_link(pd.DataFrame({"model": net, "semantic": x}), pd.Series(y), ("semantic",),
                                   n_bootstrap=500)
    row = table.iloc[0]
    assert row.ci_low < np.tanh(0.6) < row.ci_high and row.p == pytest.approx(2 / 2**10)


def test_roi_subject_tests_hold_their_level():
    """7 subjects (the paper's), 1,500 null ROIs with skewed subject values symmetric about
    0: the exact sign-flip test and the t interval keep their level."""
    rng = np.random.default_rng(31)
    n_roi, n_sub = 1500, 7
    vals = rng.standard_t(4, size=(n_roi, n_sub, 2)) * 0.05
    per = pd.DataFrame({"roi": np.repeat([f"r{i}" for i in range(n_roi)], n_sub * 2), "family": "f",
                        "subject": np.tile(np.repeat(np.arange(n_sub), 2), n_roi),
                        "reference": np.tile(["saliency", "semantic"], n_roi * n_sub), "rho": vals.reshape(-1)})
    out = roi_subject_tests(per)
    for ref in ("saliency", "semantic", "saliency − semantic"):
        o = out[out.reference == ref]
        rej = float((o.p <= ALPHA).mean())
        miss = float(((o.ci_low > 0) | (o.ci_high < 0)).mean())
        msg = f"{ref}: sign-flip rejects {rej:.1%}, t interval excludes 0 in {miss:.1%} of {n_roi} null ROIs"
        assert 0.03 <= rej <= 0.065 and 0.03 <= miss <= 0.07, msg
        print(msg)
    assert np.allclose(out.p_floor, 2 / 2**7)


def test_adaptive_permutations_let_one_layer_pass_fdr():
    """With 40 distinct layers and alpha 0.05 a p floor of 1/11 (10 permutations) could never
    pass BH; the table raises the count to 40/0.05 = 800, so a strong layer does."""
    rng = np.random.default_rng(5)
    n = 20
    ids = [f"s{i}" for i in range(n)]
    feats = rng.normal(size=(n, 5))
    ref = rsa.rdm(feats).get_vectors()
    vecs = [ref + 0.01 * rng.normal(size=ref.shape)] + [rsa.rdm(rng.normal(size=(n, 5))).get_vectors()[0]
                                                         for _ in range(39)]
    vecs.insert(1, vecs[0].copy())  # a Dropout layer: the same RDM again
    layers = rsatoolbox.rdm.RDMs(np.vstack(vecs), rdm_descriptors={"model": ["m"] * 41,
                                                                   "layer": [f"l{i}" for i in range(41)]},
                                 pattern_descriptors={"image_id": ids})
    refs = {"saliency": rsatoolbox.rdm.RDMs(ref, pattern_descriptors={"image_id": ids})}
    t = rsa.rsa_table(layers, refs, n_permutations=10, n_bootstrap=0, alpha=0.05)
    assert (t.n_permutations == 800).all() and t.p_floor.iloc[0] == pytest.approx(1 / 801)
    assert t.duplicate_of.tolist()[:3] == ["", "l0", ""] and (t.duplicate_of[2:] == "").all()
    assert t.q.iloc[0] < 0.05 and t.q.iloc[1] == t.q.iloc[0]
    assert rsa.duplicate_note(t).endswith("m: l1 = l0.")
    from lib.layer_rsa import tests_markdown

    assert "**m**: 40 distinct layers of 41; 800 permutations, p floor 0.0012" in tests_markdown(t)
    expected_q = inf.fdr_bh(t.p.drop(index=1).to_numpy())
    np.testing.assert_allclose(t.q.drop(index=1).to_numpy(), expected_q)
