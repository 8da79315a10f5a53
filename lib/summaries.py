"""Layer summaries as the original analysis drew them (``summary_rule: original``).

The original summarised each network per residual bottleneck / transformer block: the mean
(± SEM over the layers inside it; pandas' ``sem``, ddof 1) of the layers *inside* a block,
leaving out the stem and the head; ΔRSA figures showed |mean ΔRSA| per block; extra panels
kept only some layer types (ResNets: every conv plus the last ReLU of each bottleneck; ViTs:
attention plus the last four layers of each block, its MLP end); brain values carried an
SEM over subjects with ddof 0 (``np.std`` / √n); the cross-layer link pools the layers of all
models into one correlation. ``summary_rule: all_layers`` (this project) shows every layer
instead. Functions take long tables with columns ``model, condition, layer, reference, rsa``
(as :func:`lib.published.layer_rsa` and this project's layer tables).
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd

RULES = ("original", "all_layers")
# a layer inside a block: torchvision / CLIP ResNets (layer3.4.), torchvision ViTs
# (encoder_layer_7.), CLIP ViTs (resblocks.7.), timm ViTs (blocks.7.)
_BLOCK = re.compile(r"^(.*?(?:layer\d+\.\d+|encoder_layer_\d+|resblocks\.\d+|blocks\.\d+))\.")
ATTENTION_TYPES = ("self_attention", "attn")
VIT_BLOCK_TAIL = 4  # the original's ViT panels: the last four layers of each block (the MLP end)


def block_of(layer: str) -> str | None:
    """The bottleneck / transformer block a layer lies inside, None for stem and head layers."""
    m = _BLOCK.match(layer)
    return m.group(1) if m else None


def layer_type(layer: str) -> str:
    """The original's layer type: last name part without trailing digits (relu3 -> relu)."""
    return layer.split(".")[-1].rstrip("0123456789")


def _ordered(table: pd.DataFrame) -> pd.DataFrame:
    """The table in layer order (``layer_index`` when present) with a ``block`` column."""
    t = table.sort_values("layer_index", kind="stable") if "layer_index" in table.columns else table
    return t.assign(block=t["layer"].map(block_of))


def block_summary(table: pd.DataFrame, value: str = "rsa",
                  by: Sequence[str] = ("model", "condition", "reference"), ddof: int = 1) -> pd.DataFrame:
    """Mean and SEM of ``value`` over the layers inside each block (stem and head left out),
    blocks in network order; ``block_index`` counts them from 0 per group."""
    t = _ordered(table)
    t = t[t["block"].notna()]
    rows = []
    for keys, g in t.groupby(list(by), sort=False):
        for k, (block, b) in enumerate(g.groupby("block", sort=False)):
            v = b[value].to_numpy(float)
            sem = float(np.std(v, ddof=ddof) / np.sqrt(len(v))) if len(v) > ddof else float("nan")
            rows.append({**dict(zip(by, keys if isinstance(keys, tuple) else (keys,))), "block": block,
                         "block_index": k, "mean": float(v.mean()), "sem": sem, "n_layers": len(v)})
    return pd.DataFrame(rows, columns=[*by, "block", "block_index", "mean", "sem", "n_layers"])


def delta_rsa(table: pd.DataFrame) -> pd.DataFrame:
    """ΔRSA per layer: each edited condition's RSA minus the Baseline RSA of the same layer."""
    keys = ["model", "reference", "layer"]
    base = table[table["condition"] == "Baseline"].set_index(keys)["rsa"]
    edited = table[table["condition"] != "Baseline"].copy()
    edited["rsa"] = edited["rsa"].to_numpy() - base.reindex(pd.MultiIndex.from_frame(edited[keys])).to_numpy()
    return edited


def delta_block_summary(table: pd.DataFrame, ddof: int = 1) -> pd.DataFrame:
    """The original's ΔRSA figures: |mean ΔRSA| over the layers of each block (the SEM of the
    ΔRSA values beside it)."""
    out = block_summary(delta_rsa(table), ddof=ddof)
    out["mean"] = out["mean"].abs()
    return out


def is_resnet(layers: Sequence[str]) -> bool:
    return any(re.search(r"(^|\.)layer\d+\.\d+\.", name) for name in layers)


def panel_mask(model_table: pd.DataFrame) -> np.ndarray:
    """The original's layer-filtered panels for one model (rows of one condition and reference):
    ResNets keep every conv inside a bottleneck and the last ReLU of each bottleneck; ViTs keep
    the attention layers and the last four layers of each block."""
    t = _ordered(model_table)
    inside = t["block"].notna().to_numpy()
    types = t["layer"].map(layer_type).to_numpy()
    keep = np.zeros(len(t), bool)
    if is_resnet(list(t["layer"])):
        keep |= inside & (types == "conv")
        relu = pd.Series(inside & (types == "relu"), index=t.index)
        last_relu = t[relu.to_numpy()].groupby("block", sort=False).tail(1).index
        keep |= t.index.isin(last_relu)
    else:
        keep |= inside & np.isin(types, ATTENTION_TYPES)
        tail = t[inside].groupby("block", sort=False).tail(VIT_BLOCK_TAIL).index
        keep |= t.index.isin(tail)
    return pd.Series(keep, index=t.index).reindex(model_table.index).to_numpy()


def subject_sem(values: np.ndarray, axis: int = 0, ddof: int = 0) -> np.ndarray:
    """SEM over subjects as the original's brain figures: ``np.std`` (ddof 0) / √n."""
    v = np.asarray(values, float)
    return np.std(v, axis=axis, ddof=ddof) / np.sqrt(v.shape[axis])


def pooled_layer_correlation(x: pd.Series, y: pd.Series) -> tuple[float, int]:
    """Pearson r between two per-layer quantities over the layers of all models pooled (the
    original's cross-layer link), layers aligned on the index; (r, number of layers)."""
    from scipy.stats import pearsonr

    both = pd.concat([x, y], axis=1, join="inner").dropna()
    if len(both) < 3:
        raise ValueError(f"a pooled correlation needs at least 3 layers with both values, got {len(both)}")
    return float(pearsonr(both.iloc[:, 0], both.iloc[:, 1])[0]), len(both)
