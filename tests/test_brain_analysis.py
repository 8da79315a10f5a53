"""Model-brain RSA tables, best layers and the cross-layer link against scipy."""

import numpy as np
import pandas as pd
import pytest
import rsatoolbox
from scipy.stats import pearsonr, spearmanr

from lib.brain.algonauts import load_algonauts
from lib.brain.analysis import (best_layers, cross_layer_link, model_brain_rsa, noise_ceilings, ranked,
                                reference_rsa, summarise_layers)
from lib.brain.rois import roi_rdms
from tests.brain_fixtures import make_fake


@pytest.fixture
def roi(tmp_path):
    make_fake(tmp_path, subjects=(1, 2, 3))
    return roi_rdms(load_algonauts(tmp_path, [1, 2, 3]))


def _layers(m, n_layers=5, seed=0, model="netA"):
    rng = np.random.default_rng(seed)
    v = rng.random((n_layers, m))
    v[2, :3] = v[2, 3]  # ties
    return rsatoolbox.rdm.RDMs(v, rdm_descriptors={
        "model": [model] * n_layers, "layer": [f"l{i}" for i in range(n_layers)], "depth": list(range(n_layers)),
        "rel_depth": list(np.linspace(0, 1, n_layers)), "block": ["b"] * n_layers, "type": ["Conv2d"] * n_layers})


def test_ranked_matches_spearman():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 5, (3, 40)).astype(float)  # many ties
    r = ranked(a, np.float64)
    assert r[0] @ r[1] == pytest.approx(spearmanr(a[0], a[1])[0], abs=1e-12)
    assert np.isnan(ranked(np.ones((1, 5)))).all()
    # long vectors take the threaded argsort path; with and without ties it equals rankdata
    from scipy.stats import rankdata
    big = rng.random((3, 60_000))
    big[1, :100] = big[1, 100]
    big[2, ::3] -= 0.5  # negative values, exact zeros of both signs, values equal to ~1e-13
    big[2, :4], big[2, 4:8] = 0.0, -0.0
    big[2, 8::5] = big[2, 8::5] * (1 + 1e-13)
    expected = rankdata(big, axis=1)
    expected -= expected.mean(1, keepdims=True)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(ranked(big, np.float64, workers=2), expected, atol=1e-14)


def test_model_brain_rsa_against_scipy(roi):
    layers = _layers(roi.vectors["V1v"].shape[1])
    refs = {"saliency": np.arange(15.0), "semantic": np.random.default_rng(5).random(15)}
    brain, layer_ref = model_brain_rsa(layers, roi, refs, chunk=2)
    assert len(brain) == 5 * sum(len(v) for v in roi.subjects.values())
    v = layers.dissimilarities
    for _, row in brain.sample(20, random_state=0).iterrows():
        i = int(row["depth"])
        subj_idx = roi.subjects[row["roi"]].index(row["subject"])
        expected = spearmanr(v[i], roi.vectors[row["roi"]][subj_idx])[0]
        assert row["rho"] == pytest.approx(expected, abs=1e-5)
    assert layer_ref.loc[3, "semantic"] == pytest.approx(spearmanr(v[3], refs["semantic"])[0], abs=1e-5)
    with pytest.raises(ValueError, match="brain image set"):
        model_brain_rsa(rsatoolbox.rdm.RDMs(np.random.default_rng(0).random((2, 10))), roi)


def test_summaries_and_best_layers(roi):
    layers = _layers(15)
    brain, _ = model_brain_rsa(layers, roi)
    nc = noise_ceilings(roi)
    summ = summarise_layers(brain, nc)
    one = summ[(summ.layer == "l1") & (summ.roi == "early")].iloc[0]
    vals = brain[(brain.layer == "l1") & (brain.roi == "early")].rho
    assert one["mean"] == pytest.approx(vals.mean()) and one["sem"] == pytest.approx(vals.std(ddof=1) / np.sqrt(3))
    best = best_layers(summ)
    assert len(best) == len(roi.rois)
    for _, b in best.iterrows():
        assert b["mean"] == pytest.approx(summ[summ.roi == b["roi"]]["mean"].max())


def test_reference_rsa_against_scipy(roi):
    refs = {"saliency": np.random.default_rng(6).random(15)}
    per, summary = reference_rsa(roi, refs)
    row = per[(per.roi == "ventral") & (per.subject == 2)].iloc[0]
    assert row.rho == pytest.approx(spearmanr(roi.vectors["ventral"][1], refs["saliency"])[0], abs=1e-6)
    assert {"nc_lower", "nc_upper", "mean", "sem", "n_subjects"} <= set(summary.columns)
    assert summary.roi.tolist() == roi.rois.roi.tolist()


def _networks(k, n_layers=12, seed=0):
    rng = np.random.default_rng(seed)
    sem = rng.random(k * n_layers)
    sal = rng.uniform(-1, 1, k * n_layers)
    brain = 0.8 * sem + 0.5 * sal ** 2 + 0.05 * rng.standard_normal(k * n_layers)
    lr = pd.DataFrame({"model": np.repeat([f"net{i}" for i in range(k)], n_layers), "semantic": sem, "saliency": sal})
    return lr, brain


def test_cross_layer_link_is_network_level():
    """Method changed (issue 11): the pooled r is tanh(mean Fisher-z of per-network r), its
    CI a hierarchical bootstrap, p an exact sign-flip over networks, and the nonlinearity is
    judged by leave-one-network-out prediction (no pooled Fisher CI / F-test any more)."""
    lr, brain = _networks(8, n_layers=30)
    table, fits = cross_layer_link(lr, pd.Series(brain), n_bootstrap=300)
    t = table.set_index("reference")
    per = fits["semantic"]["networks"]
    for _, row in per.iterrows():
        sel = (lr.model == row.network).to_numpy()
        assert row.r == pytest.approx(pearsonr(lr.semantic[sel], brain[sel])[0])
    assert t.loc["semantic", "r"] == pytest.approx(np.tanh(np.arctanh(per.r).mean()))
    assert t.loc["semantic", "ci_low"] < t.loc["semantic", "r"] < t.loc["semantic", "ci_high"]
    assert t.loc["semantic", "p"] == pytest.approx(2 / 2 ** 8)  # all 8 networks positive: exact sign-flip floor
    assert t.loc["semantic", "p_floor"] == pytest.approx(2 / 2 ** 8)
    # brain ~ sal^2: a quadratic fitted on 7 networks predicts the 8th better than a line
    assert t.loc["saliency", "lono_gain_ci_low"] > 0
    assert t.loc["semantic", "lono_gain"] < t.loc["saliency", "lono_gain"]
    lono = fits["saliency"]["lono"].set_index("network")
    held = (lr.model == "net3").to_numpy()
    line = np.polyfit(lr.saliency[~held], brain[~held], 1)
    assert lono.loc["net3", "mse_linear"] == pytest.approx(np.mean((brain[held] - np.polyval(line, lr.saliency[held])) ** 2))
    np.testing.assert_allclose(fits["saliency"]["quadratic"], np.polyfit(lr.saliency, brain, 2))


def test_cross_layer_link_too_few_networks():
    lr, brain = _networks(4)
    table, fits = cross_layer_link(lr, pd.Series(brain), n_bootstrap=50)
    row = table.set_index("reference").loc["semantic"]
    assert row.reason == "too few networks (4) for a network-level test (needs 6)"
    assert np.isnan(row.r) and np.isnan(row.ci_low)
    assert len(fits["semantic"]["networks"]) == 4  # per-network r still shown


def test_roi_subject_tests_against_scipy():
    from scipy.stats import ttest_1samp

    from lib.brain.analysis import roi_subject_tests

    rng = np.random.default_rng(3)
    per = pd.DataFrame([dict(roi=r, family="f", subject=s, reference=ref, rho=rng.normal(0.1, 0.1))
                        for r in ("A", "B") for s in range(6) for ref in ("saliency", "semantic")])
    nc = pd.DataFrame({"roi": ["A", "B"], "nc_lower": [0.4, 0.0]})
    out = roi_subject_tests(per, nc)
    row = out[(out.roi == "A") & (out.reference == "saliency")].iloc[0]
    v = per[(per.roi == "A") & (per.reference == "saliency")].rho.to_numpy()
    ci = ttest_1samp(v, 0).confidence_interval(0.95)
    assert (row["mean"], row.ci_low, row.ci_high) == pytest.approx((v.mean(), ci.low, ci.high))
    flips = np.array(np.meshgrid(*[[1, -1]] * 6)).reshape(6, -1).T
    assert row.p == pytest.approx(np.mean(np.abs(flips @ v) >= abs(v.sum()) - 1e-12))
    assert row.frac_nc_lower == pytest.approx(v.mean() / 0.4)
    assert np.isnan(out[(out.roi == "B") & (out.reference == "saliency")].frac_nc_lower.iloc[0])  # no ceiling
    assert {"saliency − semantic"} <= set(out.reference)


def _fake_results(synthetic: bool, k_networks: int):
    from types import SimpleNamespace

    rng = np.random.default_rng(9)
    rows = []
    for s in range(7):
        for roi, fam in (("V1v", "prf-visualrois"), ("FFA-1", "floc-faces"), ("ventral", "streams")):
            early = roi == "V1v"
            rows += [dict(roi=roi, family=fam, subject=s, reference="saliency",
                          rho=(0.3 if early else 0.05) + 0.02 * rng.standard_normal()),
                     dict(roi=roi, family=fam, subject=s, reference="semantic",
                          rho=(0.05 if early else 0.3) + 0.02 * rng.standard_normal())]
    per = pd.DataFrame(rows)
    summary = per.groupby(["roi", "family", "reference"], sort=False)["rho"].agg(mean="mean").reset_index()
    lr, brain = _networks(k_networks, n_layers=30)
    link, fits = cross_layer_link(lr, pd.Series(brain), n_bootstrap=100)
    return SimpleNamespace(bs=SimpleNamespace(synthetic=synthetic), ref_per_subject=per, ref_summary=summary,
                           link=link, fits=fits)


def test_brain_claims_use_the_shared_vocabulary():
    from lib.brain import report

    real = report.claims(_fake_results(False, 8))
    assert real.status.tolist()[:3] == ["supported"] * 3 and real.holds.tolist()[:3] == [True] * 3
    synth = report.claims(_fake_results(True, 8))
    assert (synth.status == "not testable here (synthetic fMRI)").all() and not synth.holds.any()
    few = report.claims(_fake_results(False, 4))
    assert few.status.iloc[2] == "not testable here (too few networks (4) for a network-level test (needs 6))"
    assert "too few networks (4)" in report.link_markdown(_fake_results(True, 4))


def test_per_network_link_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lib.plots.link import per_network_link

    for k in (4, 7):
        lr, brain = _networks(k)
        link, fits = cross_layer_link(lr, pd.Series(brain), n_bootstrap=50)
        fig = per_network_link(fits, link)
        titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
        assert len(titles) == 2 * k and all("r = " in t for t in titles)
        plt.close(fig)
