"""Figures of the brain chapter (functions returning matplotlib Figures)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

REF_COLOURS = {"saliency": "#d95f02", "semantic": "#1b9e77"}


def roi_reference_rsa(summary: pd.DataFrame) -> plt.Figure:
    """Saliency and semantic RSA per ROI (mean ± SEM over subjects) with the noise ceiling
    (grey band from lower to upper bound), ROIs in file order, families separated."""
    rois = list(dict.fromkeys(summary["roi"]))
    fam = summary.drop_duplicates("roi").set_index("roi")["family"]
    refs = list(dict.fromkeys(summary["reference"]))
    x = np.arange(len(rois))
    width = 0.8 / len(refs)
    fig, ax = plt.subplots(figsize=(max(8, 0.36 * len(rois) + 2), 4.2))
    nc = summary.drop_duplicates("roi").set_index("roi").loc[rois]
    for i in x:
        ax.fill_between([i - 0.45, i + 0.45], nc["nc_lower"].iloc[i], nc["nc_upper"].iloc[i], color="0.85",
                        lw=0, label="noise ceiling" if i == 0 else None)
    for k, ref in enumerate(refs):
        d = summary[summary.reference == ref].set_index("roi").loc[rois]
        ax.bar(x - 0.4 + width * (k + 0.5), d["mean"], width, yerr=d["sem"], color=REF_COLOURS.get(ref, f"C{k}"),
               label=ref, capsize=1.5, error_kw={"lw": 0.8})
    for i in range(1, len(rois)):
        if fam[rois[i]] != fam[rois[i - 1]]:
            ax.axvline(i - 0.5, color="0.6", lw=0.6, ls=":")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(x, rois, rotation=70, fontsize=8)
    ax.set_ylabel("Spearman ρ (ROI RDM vs reference)")
    ax.set_xlim(-0.6, len(rois) - 0.4)
    ax.legend(frameon=False, fontsize=8, ncol=3)
    ax.set_title("Saliency and semantic RSA per ROI (mean ± SEM over subjects)")
    fig.tight_layout()
    return fig


def model_brain_heatmaps(layer_summary: pd.DataFrame, value: str = "mean", max_cols: int = 2) -> plt.Figure:
    """Per model: ROI (rows) x layer depth (columns) mean RSA over subjects."""
    models = list(dict.fromkeys(layer_summary["model"]))
    ncols = min(max_cols, len(models))
    nrows = int(np.ceil(len(models) / ncols))
    rois = list(dict.fromkeys(layer_summary["roi"]))
    vmax = np.nanmax(np.abs(layer_summary[value])) or 1.0
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.2 * ncols, 0.2 * len(rois) * nrows + 1.5 * nrows),
                             squeeze=False, constrained_layout=True)
    im = None
    for ax, model in zip(axes.flat, models):
        d = layer_summary[layer_summary.model == model]
        order = d.drop_duplicates("layer").sort_values("depth")["layer"] if "depth" in d else d["layer"].unique()
        grid = d.pivot_table(index="roi", columns="layer", values=value, sort=False).reindex(index=rois, columns=order)
        im = ax.imshow(grid.to_numpy(), aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_yticks(range(len(rois)), rois, fontsize=6)
        ax.set_xlabel("layer (network depth →)")
        ax.set_xticks([])
        ax.set_title(model, fontsize=9)
    for ax in list(axes.flat)[len(models):]:
        ax.axis("off")
    if im is not None:
        fig.colorbar(im, ax=axes, shrink=0.6, label="Spearman ρ (layer RDM vs ROI RDM)")
    return fig


def cross_layer_link(layer_ref: pd.DataFrame, layer_brain: np.ndarray, fits: dict, link: pd.DataFrame) -> plt.Figure:
    """Each layer of each model: semantic / saliency RSA (x) against brain RSA (y), with
    linear and quadratic fits."""
    refs = [r for r in ("semantic", "saliency") if r in fits]
    fig, axes = plt.subplots(1, len(refs), figsize=(5.2 * len(refs), 4.2), squeeze=False)
    y = np.asarray(layer_brain, dtype=float)
    models = list(dict.fromkeys(layer_ref["model"]))
    for ax, ref in zip(axes[0], refs):
        for k, m in enumerate(models):
            sel = (layer_ref["model"] == m).to_numpy()
            ax.scatter(layer_ref.loc[sel, ref], y[sel], s=9, alpha=0.7, color=f"C{k}", label=m)
        f = fits[ref]
        xs = np.linspace(np.min(f["x"]), np.max(f["x"]), 100)
        ax.plot(xs, np.polyval(f["linear"], xs), "k-", lw=1.2, label="linear fit")
        ax.plot(xs, np.polyval(f["quadratic"], xs), "k--", lw=1.2, label="quadratic fit")
        row = link.set_index("reference").loc[ref]
        ax.set_title(f"{ref}: r = {row['r']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}]", fontsize=10)
        ax.set_xlabel(f"layer {ref} RSA")
        ax.set_ylabel("layer brain RSA (mean over ROIs, subjects)")
        ax.axvline(0, color="0.7", lw=0.6)
    axes[0][0].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def planted_vs_recovered(recovery: pd.DataFrame) -> plt.Figure:
    """Synthetic subjects: planted saliency share of each ROI vs the share recovered by
    regressing the ROI RDM on the saliency and semantic RDMs."""
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    fams = list(dict.fromkeys(recovery["family"]))
    for k, fam in enumerate(fams):
        d = recovery[recovery.family == fam]
        ax.scatter(d["planted_sal_share"], d["recovered_sal_share"], color=f"C{k}", label=fam, s=22)
    ax.plot([0, 1], [0, 1], color="0.5", lw=0.8, ls="--")
    ax.set_xlabel("planted saliency share")
    ax.set_ylabel("recovered saliency share")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def best_layer_depth(best: pd.DataFrame) -> plt.Figure:
    """Relative depth of the best layer per ROI and model."""
    rois = list(dict.fromkeys(best["roi"]))
    fig, ax = plt.subplots(figsize=(max(7, 0.3 * len(rois) + 2), 3.6))
    for k, m in enumerate(dict.fromkeys(best["model"])):
        d = best[best.model == m].set_index("roi").reindex(rois)
        ax.plot(range(len(rois)), d["rel_depth"], "o-", ms=4, lw=0.8, color=f"C{k}", label=m)
    ax.set_xticks(range(len(rois)), rois, rotation=70, fontsize=8)
    ax.set_ylabel("relative depth of best layer")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig
