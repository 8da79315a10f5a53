"""RSA tables: values against scipy/rsatoolbox, ΔRSA and partial RSA by hand, bad input."""

import numpy as np
import pandas as pd
import pytest
import rsatoolbox
from scipy.stats import rankdata, spearmanr

from lib import rsa
from lib.inference import fdr_bh

N = 14


def _layers(x, rng, model="net", k=6, noise=(0.2, 0.5, 1.0, 2.0, 4.0, 8.0), ids=None):
    vecs = np.vstack([rsa.rdm(x + s * rng.normal(size=x.shape)).get_vectors() for s in noise[:k]])
    ids = ids or [f"img{i}" for i in range(len(x))]
    return rsatoolbox.rdm.RDMs(
        vecs,
        rdm_descriptors={"model": [model] * k, "layer": [f"l{i}" for i in range(k)], "depth": list(range(k)),
                         "rel_depth": list(np.linspace(0, 1, k)), "block": [f"b{i // 2}" for i in range(k)],
                         "type": ["Conv2d"] * k},
        pattern_descriptors={"image_id": ids},
    )


def _ref(x, name, ids=None):
    r = rsa.rdm(x)
    return rsatoolbox.rdm.RDMs(r.get_vectors(), rdm_descriptors={"reference": [name]},
                               pattern_descriptors={"image_id": ids or [f"img{i}" for i in range(len(x))]})


@pytest.fixture
def setup():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 8))
    refs = {"saliency": _ref(x + 0.3 * rng.normal(size=x.shape), "saliency"),
            "semantic": _ref(rng.normal(size=(N, 8)), "semantic")}
    return rng, x, refs


def test_rsa_table_matches_scipy_and_rsatoolbox(setup):
    rng, x, refs = setup
    layers = _layers(x, rng)
    t = rsa.rsa_table(layers, refs, n_permutations=50, n_bootstrap=30, seed=1)
    assert list(t.columns) == list(rsa.TABLE_COLUMNS)
    assert len(t) == 12
    for _, row in t.iterrows():
        i = int(row["layer"][1:])
        ref = refs[row["reference"]]
        want = spearmanr(layers.get_vectors()[i], ref.get_vectors()[0])[0]
        assert row["rho"] == pytest.approx(want, abs=1e-12)
        assert row["rho"] == pytest.approx(
            rsatoolbox.rdm.compare(layers.subset("layer", row["layer"]), ref, method="spearman")[0, 0], abs=1e-12)
        assert row["ci_low"] <= row["ci_high"]
        assert row["reason"] == "" and row["n_stimuli"] == N
    sal = t[t.reference == "saliency"]
    assert np.allclose(sal["q"], fdr_bh(sal["p"].to_numpy()))
    # planted: the least noisy layer carries saliency, significantly
    assert sal.iloc[0]["p"] < 0.05 and sal.iloc[0]["ci_low"] > 0
    # same seed -> same numbers
    pd.testing.assert_frame_equal(t, rsa.rsa_table(layers, refs, n_permutations=50, n_bootstrap=30, seed=1))


def test_rsa_table_caches_through_store(setup, tmp_path):
    from lib.store import Store

    rng, x, refs = setup
    layers = _layers(x, rng)
    store = Store(tmp_path)
    a = rsa.rsa_table(layers, refs, n_permutations=20, n_bootstrap=10, store=store)
    assert len(list((tmp_path / "rsa_table").iterdir())) == 1
    b = rsa.rsa_table(layers, refs, n_permutations=20, n_bootstrap=10, store=store)
    pd.testing.assert_frame_equal(a, b)
    rsa.rsa_table(layers, refs, n_permutations=20, n_bootstrap=10, seed=5, store=store)
    assert len(list((tmp_path / "rsa_table").iterdir())) == 2


def test_delta_rsa_equals_hand_computation(setup):
    rng, x, refs = setup
    conds = {"Baseline": _layers(x, rng), "Control": _layers(x, rng), "Salient": _layers(rng.normal(size=x.shape), rng)}
    d = rsa.delta_rsa(conds, refs, n_bootstrap=40, seed=2)
    assert set(d["condition"]) == {"Control", "Salient"}
    for _, row in d.iterrows():
        i = int(row["layer"][1:])
        ref = refs[row["reference"]].get_vectors()[0]
        want = (spearmanr(conds[row["condition"]].get_vectors()[i], ref)[0]
                - spearmanr(conds["Baseline"].get_vectors()[i], ref)[0])
        assert row["rho"] == pytest.approx(want, abs=1e-12)
        assert row["rho_condition"] - row["rho_baseline"] == pytest.approx(row["rho"])
        assert row["ci_low"] <= row["ci_high"]
    # destroying the structure lowers saliency RSA for the clean layer, credibly
    row = d[(d.condition == "Salient") & (d.reference == "saliency") & (d.layer == "l0")].iloc[0]
    assert row["rho"] < 0 and row["ci_high"] < 0


def test_delta_rsa_paired_bootstrap_of_identical_condition_is_zero(setup):
    rng, x, refs = setup
    base = _layers(x, rng)
    d = rsa.delta_rsa({"Baseline": base, "Control": base}, refs, n_bootstrap=20)
    assert np.allclose(d[["rho", "ci_low", "ci_high"]].to_numpy(), 0.0)


def test_partial_rsa_matches_hand_worked_ranks(setup):
    rng, x, refs = setup
    layers = _layers(x, rng, k=3)
    t = rsa.partial_rsa(layers, refs, n_permutations=30, n_bootstrap=20)
    lv = layers.get_vectors()
    s, m = refs["saliency"].get_vectors()[0], refs["semantic"].get_vectors()[0]
    for _, row in t.iterrows():
        i = int(row["layer"][1:])
        y, z = (s, m) if row["reference"] == "saliency" else (m, s)
        # hand-worked: residualise the ranks of x and y on the ranks of z, correlate
        rx, ry, rz = rankdata(lv[i]), rankdata(y), rankdata(z)
        Z = np.column_stack([np.ones_like(rz), rz])
        ex = rx - Z @ np.linalg.lstsq(Z, rx, rcond=None)[0]
        ey = ry - Z @ np.linalg.lstsq(Z, ry, rcond=None)[0]
        assert row["rho"] == pytest.approx(np.corrcoef(ex, ey)[0, 1], abs=1e-10)
        assert row["control"] != row["reference"]
        assert row["rho_zero_order"] == pytest.approx(spearmanr(lv[i], y)[0], abs=1e-12)
    with pytest.raises(rsa.RSAInputError, match="exactly two"):
        rsa.partial_rsa(layers, {"saliency": refs["saliency"]})


def test_contrast_paired_and_binned(setup):
    rng, x, refs = setup
    a = _layers(x, rng, model="clip", noise=(0.1, 0.1, 0.1, 0.1, 0.1, 0.1))
    b = _layers(x, rng, model="sup", noise=(5, 5, 5, 5, 5, 5))
    c = rsa.contrast(a, b, refs, n_bins=3, n_bootstrap=50, seed=0)
    assert set(c["group_a"]) == {"clip"} and set(c["group_b"]) == {"sup"}
    ta = rsa.rsa_table(a, refs, n_permutations=0, n_bootstrap=0)
    tb = rsa.rsa_table(b, refs, n_permutations=0, n_bootstrap=0)
    bins = c[c["span"] == ""]
    for _, row in bins.iterrows():
        sel = lambda t: t[(t.reference == row["reference"]) & (rsa.depth_bins(t.rel_depth, 3) == row["bin"])]["rho"].mean()
        assert row["rho_a"] == pytest.approx(sel(ta)) and row["rho_b"] == pytest.approx(sel(tb))
        assert row["diff"] == pytest.approx(row["rho_a"] - row["rho_b"])
    sal = c[c.reference == "saliency"]
    assert (sal.loc[sal.span != rsa.TREND, "ci_low"] > 0).all()
    # claim-level spans (issue 11): means over the span's bins, from the same draws, outside the FDR family
    spans = c[c["span"] != ""].set_index(["reference", "span"])
    sal_bins = bins[bins.reference == "saliency"].set_index("bin")["diff"]
    assert spans.loc[("saliency", "all depths"), "diff"] == pytest.approx(sal_bins.mean())
    assert spans.loc[("saliency", "first half"), "diff"] == pytest.approx(sal_bins.loc[0])  # centre 1/6 only
    assert spans.loc[("saliency", "second − first half"), "diff"] == pytest.approx(
        sal_bins.loc[[1, 2]].mean() - sal_bins.loc[0])
    assert spans["q"].isna().all() and bins["q"].notna().all()
    # a model against itself: every paired resample difference is exactly zero
    self_c = rsa.contrast(a, a, refs, n_bins=3, n_bootstrap=10)
    assert np.allclose(self_c[["diff", "ci_low", "ci_high"]].to_numpy(), 0.0)


def test_constant_rdm_is_nan_with_reason(setup):
    rng, x, refs = setup
    layers = _layers(x, rng, k=3)
    vecs = layers.get_vectors().copy()
    vecs[1] = 0.5
    const = rsatoolbox.rdm.RDMs(vecs, rdm_descriptors=layers.rdm_descriptors, pattern_descriptors=layers.pattern_descriptors)
    t = rsa.rsa_table(const, refs, n_permutations=10, n_bootstrap=10)
    bad = t[t.layer == "l1"]
    assert bad["rho"].isna().all() and bad["p"].isna().all() and bad["q"].isna().all()
    assert (bad["reason"] == rsa.CONSTANT_LAYER).all()
    assert t[t.layer != "l1"]["rho"].notna().all()
    flat_ref = rsatoolbox.rdm.RDMs(np.ones((1, vecs.shape[1])), pattern_descriptors=layers.pattern_descriptors)
    t2 = rsa.rsa_table(layers, {"saliency": flat_ref}, n_permutations=10, n_bootstrap=10)
    assert t2["rho"].isna().all() and (t2["reason"] == rsa.CONSTANT_REFERENCE).all()
    # no NaN anywhere without a reason
    for tab in (t, t2):
        assert (tab["rho"].notna() | (tab["reason"] != "")).all()


def test_mismatched_stimuli_errors_name_both(setup):
    rng, x, refs = setup
    layers = _layers(x, rng, model="resnet")
    fewer = _ref(x[:-1], "saliency")
    with pytest.raises(rsa.RSAInputError, match=r"resnet.*14 stimuli.*'saliency' over 13"):
        rsa.rsa_table(layers, {"saliency": fewer})
    ids = [f"img{i}" for i in range(N)]
    shuffled = _ref(x, "saliency", ids=ids[::-1])
    with pytest.raises(rsa.RSAInputError, match="different order.*position 0 is 'img0' vs 'img13'"):
        rsa.rsa_table(layers, {"saliency": shuffled})
    other = _ref(x, "saliency", ids=[f"z{i}" for i in range(N)])
    with pytest.raises(rsa.RSAInputError, match="different stimuli"):
        rsa.rsa_table(layers, {"saliency": other})


def test_unknown_condition_lists_valid_ones(setup):
    rng, x, refs = setup
    layers = _layers(x, rng)
    with pytest.raises(rsa.RSAInputError, match="Semantic_Salient"):
        rsa.rsa_table(layers, refs, condition="Salient_Semantic")
    with pytest.raises(rsa.RSAInputError, match="unknown condition 'Ctrl'"):
        rsa.delta_rsa({"Baseline": layers, "Ctrl": layers}, refs)
    with pytest.raises(rsa.RSAInputError, match="needs the 'Baseline'"):
        rsa.delta_rsa({"Control": layers}, refs)


def test_block_and_suppression_summaries():
    t = pd.DataFrame({
        "model": ["m"] * 4, "layer": list("abcd"), "depth": [0, 1, 2, 3], "rel_depth": [0, 1 / 3, 2 / 3, 1],
        "block": ["b0", "b0", "b1", "b1"], "type": ["Conv2d"] * 4, "condition": ["Baseline"] * 4,
        "reference": ["saliency"] * 4, "rho": [-0.2, -0.4, 0.1, 0.3], "ci_low": [-0.3, -0.5, -0.1, 0.2],
        "ci_high": [-0.1, -0.3, 0.2, 0.4], "p": [0.01, 0.001, 0.5, 0.01], "q": [0.02, 0.004, 0.5, 0.02],
    })
    b = rsa.block_summary(t)
    assert b["mean"].tolist() == pytest.approx([-0.3, 0.2])
    assert b["sem"].tolist() == pytest.approx([np.std([-0.2, -0.4], ddof=1) / np.sqrt(2)] * 2)
    s = rsa.suppression_summary(t).iloc[0]
    assert s["n_negative"] == 2 and s["n_positive"] == 1
    assert s["first_negative_layer"] == "a" and s["min_rho_layer"] == "b" and s["min_rho"] == -0.4


def test_conditions_mirror_stimuli_package():
    stimuli = pytest.importorskip("lib.stimuli")
    if hasattr(stimuli, "CONDITIONS"):
        assert tuple(stimuli.CONDITIONS) == rsa.CONDITIONS


def test_block_summary_original_rule_keeps_only_layers_inside_blocks():
    """summary_rule=original: the stem and head leave the block means (as the original drew them)."""
    table = pd.DataFrame({
        "model": "m", "reference": "saliency", "condition": "Baseline",
        "layer": ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer1.1.conv1", "fc"],
        "block": ["stem", "layer1.0", "layer1.0", "layer1.1", "head"],
        "rho": [0.9, 0.1, 0.3, 0.5, -0.9], "q": 0.5, "rel_depth": [0, 0.25, 0.5, 0.75, 1], "depth": range(5)})
    every = rsa.block_summary(table)
    original = rsa.block_summary(table, rule="original")
    assert set(every["block"]) == {"stem", "layer1.0", "layer1.1", "head"}
    assert list(original["block"]) == ["layer1.0", "layer1.1"]
    assert original["mean"].tolist() == pytest.approx([0.2, 0.5])
    with pytest.raises(ValueError, match="summary_rule"):
        rsa.block_summary(table, rule="blocks")
