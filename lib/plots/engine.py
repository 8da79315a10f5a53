"""Figures of the engine appendix: what each network's layers hold, and what extraction cost."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

TYPE_COLOURS = {
    "Conv2d": "#1f77b4", "BatchNorm2d": "#ff7f0e", "ReLU": "#2ca02c", "MaxPool2d": "#8c564b",
    "AvgPool2d": "#e377c2", "Linear": "#d62728", "LayerNorm": "#9467bd", "Dropout": "#7f7f7f",
    "MultiheadAttention": "#17becf",
}


def activation_sizes(tables: dict[str, pd.DataFrame], labels: dict[str, str] | None = None):
    """One panel per model: per-image activation size of every layer (log scale) against
    relative depth, coloured by module type. Why: it shows where the memory goes (early
    convolutional maps) and why the engine never holds all layers at once."""
    n = len(tables)
    cols = min(n, 2)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.0 * rows), squeeze=False, sharey=True)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    seen = {}
    for ax, (model, t) in zip(axes.ravel(), tables.items()):
        for typ, sub in t.groupby("type"):
            h = ax.scatter(sub["rel_depth"], sub["bytes"] / 1e6, s=9, color=TYPE_COLOURS.get(typ, "k"), label=typ)
            seen.setdefault(typ, h)
        ax.set_yscale("log")
        ax.set_title(f"{(labels or {}).get(model, model)}: {len(t)} layers, {t['bytes'].sum() / 1e6:.0f} MB/image",
                     fontsize=9)
        ax.set_xlabel("relative depth")
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("MB per image")
    fig.legend(seen.values(), seen.keys(), loc="lower center", ncol=min(len(seen), 5), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08 if len(seen) > 5 else 0.05, 1, 1))
    return fig


def timings(reports: pd.DataFrame):
    """Seconds (load, preprocessing, extraction) and peak memory of each extraction."""
    r = reports.copy()
    r["run"] = r["model"] + " · " + r["condition"].astype(str)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 0.32 * len(r) + 1.4), sharey=True)
    y = np.arange(len(r))
    left = np.zeros(len(r))
    for col, colour, lab in (("seconds_load", "#bbbbbb", "load model"), ("seconds_preprocess", "#ff7f0e", "preprocess"),
                             ("seconds_extract", "#1f77b4", "forward + Grams")):
        vals = r[col].fillna(0).to_numpy()
        ax1.barh(y, vals, left=left, color=colour, label=lab)
        left += vals
    ax1.set_yticks(y, r["run"], fontsize=8)
    ax1.invert_yaxis()
    ax1.set_xlabel("seconds (when computed)")
    ax1.legend(fontsize=8, frameon=False)
    ax2.barh(y, r["peak_rss_gb"], color="#2ca02c", label="peak RSS")
    ax2.barh(y, r["all_layers_gb"], color="none", edgecolor="k", linestyle="--", label="all layers' activations")
    ax2.set_xlabel("GB")
    ax2.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig
