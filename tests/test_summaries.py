"""The original's summaries recomputed on the published layer RSA by independent pandas code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr

from lib import published, summaries


@pytest.fixture(scope="module")
def layers():
    return published.layer_rsa()


def _one(layers, model, condition="Baseline", reference="semantic"):
    t = layers
    return t[(t.model == model) & (t.condition == condition) & (t.reference == reference)].sort_values("layer_index")


def test_block_counts_follow_the_architectures(layers):
    counts = summaries.block_summary(layers[layers.condition == "Baseline"]).groupby(["model", "reference"]).size()
    expected = {"resnet50": 16, "clip_rn50": 16, "resnet101": 33, "clip_rn101": 33, "vit_b16": 12,
                "vit_b32": 12, "clip_vit_b16": 12, "clip_vit_b32": 12, "vit_l16": 24, "clip_vit_l14": 24}
    assert {m: counts[(m, "semantic")] for m in expected} == expected


def test_block_means_and_sems_match_an_independent_groupby(layers):
    for model, pattern in [("resnet50", r"^(layer\d+\.\d+)\."), ("vit_b16", r"^(encoder\.layers\.encoder_layer_\d+)\."),
                           ("clip_vit_l14", r"^(transformer\.resblocks\.\d+)\.")]:
        t = _one(layers, model).copy()
        t["blk"] = t["layer"].str.extract(pattern)[0]
        g = t.dropna(subset=["blk"]).groupby("blk", sort=False)["rsa"]
        mine = summaries.block_summary(t.drop(columns="blk"))
        np.testing.assert_allclose(mine["mean"], g.mean().to_numpy())
        np.testing.assert_allclose(mine["sem"], g.sem().to_numpy())  # pandas' sem: ddof 1, as the original
        assert list(mine["block"]) == list(g.mean().index)


def test_delta_blocks_are_absolute_mean_differences(layers):
    base = _one(layers, "clip_rn50", "Baseline", "saliency").set_index("layer")["rsa"]
    sal = _one(layers, "clip_rn50", "Salient", "saliency").set_index("layer")["rsa"]
    d = (sal - base).dropna().reset_index()
    d["blk"] = d["layer"].str.extract(r"^(layer\d+\.\d+)\.")[0]
    expected = d.dropna(subset=["blk"]).groupby("blk", sort=False)["rsa"].mean().abs()
    mine = summaries.delta_block_summary(layers[layers.model == "clip_rn50"])
    mine = mine[(mine.condition == "Salient") & (mine.reference == "saliency")].set_index("block")["mean"]
    pd.testing.assert_series_equal(mine.loc[expected.index], expected, check_names=False)
    assert (mine >= 0).all()


def test_panel_filters_keep_the_originals_layer_types(layers):
    # torchvision bottleneck: conv1-3 + the one (shared) relu; CLIP's: conv1-3 + relu3
    # torchvision ViT block: self_attention + mlp.0, mlp.2, mlp.3, mlp.4; CLIP ViT: attn + the last four
    expect = {"resnet50": (16 * 4, {"conv", "relu"}), "clip_rn50": (16 * 4, {"conv", "relu"}),
              "vit_b16": (12 * 5, {"self_attention", ""}), "clip_vit_b16": (12 * 5, {"attn", "ln_", "c_fc", "c_proj"})}
    for model, (n, types) in expect.items():
        t = _one(layers, model)
        kept = t[summaries.panel_mask(t)]
        assert len(kept) == n, model
        assert set(kept["layer"].map(summaries.layer_type)) == types, model
    vit = _one(layers, "vit_b16")
    others = vit[summaries.panel_mask(vit) & (vit["layer"].map(summaries.layer_type) == "")]["layer"]
    assert others.str.contains(r"\.mlp\.[0234]$").all()  # mlp.0, .2, .3, .4 of each block
    clip = _one(layers, "clip_rn50")
    kept = set(clip[summaries.panel_mask(clip)]["layer"])
    assert "layer2.1.relu3" in kept and "layer2.1.relu2" not in kept and "conv1" not in kept  # stem out


def test_subject_sem_is_numpy_std_over_root_n():
    v = np.array([[1.0, 2.0], [3.0, 5.0], [2.0, 8.0]])
    np.testing.assert_allclose(summaries.subject_sem(v), v.std(axis=0) / np.sqrt(3))
    assert summaries.subject_sem(v)[0] < pd.DataFrame(v).sem().to_numpy()[0]  # ddof 0 is the smaller


def test_pooled_layer_correlation_is_pearson_over_all_layers(layers):
    base = layers[layers.condition == "Baseline"]
    wide = base.pivot_table(index=["model", "layer_index"], columns="reference", values="rsa")
    r, n = summaries.pooled_layer_correlation(wide["saliency"], wide["semantic"])
    complete = wide.dropna()
    assert n == len(complete) > 1400  # every layer of the ten models with both values
    assert r == pytest.approx(pearsonr(complete["saliency"], complete["semantic"])[0])
    with pytest.raises(ValueError, match="at least 3"):
        summaries.pooled_layer_correlation(wide["saliency"].iloc[:2], wide["semantic"].iloc[:2])
