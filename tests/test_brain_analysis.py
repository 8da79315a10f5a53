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


def test_cross_layer_link():
    rng = np.random.default_rng(0)
    sem = rng.random(60)
    sal = rng.uniform(-1, 1, 60)
    brain = 0.8 * sem + 0.5 * sal ** 2 + 0.05 * rng.standard_normal(60)
    lr = pd.DataFrame({"model": np.repeat(list("abcdef"), 10), "semantic": sem, "saliency": sal})
    table, fits = cross_layer_link(lr, pd.Series(brain), n_bootstrap=200)
    t = table.set_index("reference")
    assert t.loc["semantic", "r"] == pytest.approx(pearsonr(sem, brain)[0])
    assert t.loc["semantic", "ci_low"] < t.loc["semantic", "r"] < t.loc["semantic", "ci_high"]
    assert t.loc["semantic", "boot_low"] < t.loc["semantic", "r"] < t.loc["semantic", "boot_high"]
    assert np.isfinite(t.loc["semantic", "model_boot_low"])
    # the quadratic term is needed for saliency (brain ~ sal^2), not much for semantics
    assert t.loc["saliency", "r2_quadratic"] > t.loc["saliency", "r2_linear"] + 0.1
    assert t.loc["saliency", "p_quadratic_term"] < 1e-3
    np.testing.assert_allclose(fits["saliency"]["quadratic"], np.polyfit(sal, brain, 2))
