"""Figures of the brain chapter (functions returning matplotlib Figures), in the book style,
with the original study's published values (pretrained networks, original stimuli,
measured NSD fMRI) drawn beside this run's."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lib.plots.style import PUBLISHED_LABEL, REFERENCE_COLOURS, TEXT_WIDTH_IN, model_colours

REF_COLOURS = REFERENCE_COLOURS  # one palette for the references in every chapter
RSA_UNIT = "Spearman ρ"
FAMILY_NAMES = {"prf-visualrois": "early visual (pRF)", "floc-bodies": "bodies", "floc-faces": "faces",
                "floc-places": "places", "floc-words": "words", "streams": "streams",
                "All vertices": "all"}


def model_label(model: str) -> str:
    """A network's readable label (the registry's), its name when the registry does not know it."""
    try:
        from lib.models import describe

        return describe(model)["label"]
    except Exception:  # noqa: BLE001 - a label is cosmetic; never fail a figure over it
        return model


def _published_roi_means() -> pd.DataFrame:
    from lib import published

    r = published.roi_rsa().groupby("roi", sort=False)[["saliency", "semantic"]].mean()
    return r.join(published.roi_noise_ceilings().set_index("roi"))


def roi_reference_rsa(summary: pd.DataFrame, show_published: bool = True) -> plt.Figure:
    """Saliency and semantic RSA per ROI (bars: this run, mean ± SEM over subjects), the
    published means (black ticks) and ceilings (hatched), and this run's noise ceiling (grey
    band), ROIs in file order with their families named."""
    rois = list(dict.fromkeys(summary["roi"]))
    fam = summary.drop_duplicates("roi").set_index("roi")["family"]
    refs = [r for r in ("saliency", "semantic") if r in set(summary["reference"])]
    pub = _published_roi_means().reindex(rois) if show_published else None
    x = np.arange(len(rois))
    width = 0.8 / max(len(refs), 1)
    fig, axes = plt.subplots(2, 1, figsize=(TEXT_WIDTH_IN, 6.4), sharex=True, layout="constrained",
                             height_ratios=[1, 1])
    nc = summary.drop_duplicates("roi").set_index("roi").loc[rois]
    for ax, source in zip(axes, ("this run", "published")):
        ceiling = nc if source == "this run" else (pub.rename(columns={"lower": "nc_lower", "upper": "nc_upper"})
                                                    if pub is not None else None)
        if ceiling is not None:
            for i in x:
                lo, hi = ceiling["nc_lower"].iloc[i], ceiling["nc_upper"].iloc[i]
                if np.isfinite(lo) and np.isfinite(hi):
                    ax.fill_between([i - 0.45, i + 0.45], lo, hi, color="0.88", lw=0,
                                    label="noise ceiling (lower–upper)" if i == 0 else None)
        for k, ref in enumerate(refs):
            pos = x - 0.4 + width * (k + 0.5)
            if source == "this run":
                d = summary[summary.reference == ref].set_index("roi").reindex(rois)
                ax.bar(pos, d["mean"], width, yerr=d["sem"], color=REF_COLOURS[ref], label=f"{ref} (mean ± SEM)",
                       capsize=1.5, error_kw={"lw": 0.8})
            elif pub is not None:
                ax.bar(pos, pub[ref], width, color=REF_COLOURS[ref], alpha=0.55, label=ref)
        for i in range(1, len(rois)):
            if fam[rois[i]] != fam[rois[i - 1]]:
                ax.axvline(i - 0.5, color="0.5", lw=0.7, ls=":")
        ax.axhline(0, color="k", lw=0.6)
        ax.set_ylabel(f"ROI RDM vs reference\n({RSA_UNIT})")
        ax.set_xlim(-0.6, len(rois) - 0.4)
    axes[0].set_title("this run (mean over subjects)")
    axes[1].set_title(PUBLISHED_LABEL + ", mean over subjects" if pub is not None else "no published values")
    # family names above the top panel
    starts = [0] + [i for i in range(1, len(rois)) if fam[rois[i]] != fam[rois[i - 1]]] + [len(rois)]
    for a, b in zip(starts[:-1], starts[1:]):
        axes[0].annotate(FAMILY_NAMES.get(fam[rois[a]], fam[rois[a]]), xy=((a + b - 1) / 2, 1.0),
                         xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=9, color="0.25",
                         xytext=(0, 14), textcoords="offset points")
    axes[1].set_xticks(x, rois, rotation=90, fontsize=9)
    axes[1].set_xlabel("ROI (dotted lines separate ROI families)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3)
    return fig


def model_brain_heatmaps(layer_summary: pd.DataFrame, value: str = "mean", max_cols: int = 2,
                         labels: dict[str, str] | None = None) -> plt.Figure:
    """Per model: ROI (rows) × relative depth (columns) mean RSA over subjects, layers
    placed at their relative depth; panel titles are the networks' labels."""
    models = list(dict.fromkeys(layer_summary["model"]))
    ncols = min(max_cols, len(models))
    nrows = int(np.ceil(len(models) / ncols))
    rois = list(dict.fromkeys(layer_summary["roi"]))
    vmax = np.nanmax(np.abs(layer_summary[value])) or 1.0
    fig, axes = plt.subplots(nrows, ncols, figsize=(TEXT_WIDTH_IN, (0.16 * len(rois) + 1.3) * nrows + 0.5),
                             squeeze=False, layout="constrained", sharey=True)
    im = None
    for ax, model in zip(axes.flat, models):
        d = layer_summary[layer_summary.model == model]
        layers = d.drop_duplicates("layer").sort_values("depth") if "depth" in d else d.drop_duplicates("layer")
        order = layers["layer"]
        grid = d.pivot_table(index="roi", columns="layer", values=value, sort=False).reindex(index=rois, columns=order)
        half = 0.5 / max(len(order) - 1, 1)
        im = ax.imshow(grid.to_numpy(), aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest",
                       extent=(-half, 1 + half, len(rois) - 0.5, -0.5))
        ax.set_yticks(range(len(rois)), rois, fontsize=9 if len(rois) <= 34 else 7)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.set_xlabel("relative depth")
        title = (labels or {}).get(model) or model_label(model)
        ax.set_title(title)
    for ax in list(axes.flat)[len(models):]:
        ax.axis("off")
    if im is not None:
        fig.colorbar(im, ax=axes, shrink=0.6, location="bottom", aspect=40,
                     label=f"layer RDM vs ROI RDM ({RSA_UNIT}, mean over subjects)")
    return fig


def _published_layer_link(reference: str) -> pd.DataFrame:
    """Per published layer: its reference RSA (Baseline) and its mean brain RSA (ROIs except
    'All vertices', subjects), as the original computed them."""
    from lib import published

    b = published.model_roi_rsa()
    brain = b[b["roi"] != "All vertices"].groupby(["model", "layer_index"])["rsa"].mean().rename("brain")
    t = published.layer_rsa()
    t = t[(t["condition"] == "Baseline") & (t["reference"] == reference)].set_index(["model", "layer_index"])["rsa"]
    return pd.concat([t.rename("x"), brain], axis=1, join="inner").dropna().reset_index()


def cross_layer_link(layer_ref: pd.DataFrame, layer_brain: np.ndarray, fits: dict, link: pd.DataFrame,
                     show_published: bool = True) -> plt.Figure:
    """Each layer of each model: semantic / saliency RSA (x) against brain RSA (y), with
    linear and quadratic fits; the published layers (original networks and fMRI) in a panel
    of their own below, on their own scale."""
    refs = [r for r in ("semantic", "saliency") if r in fits]
    rows = 2 if show_published else 1
    fig, axes = plt.subplots(rows, len(refs), figsize=(TEXT_WIDTH_IN, 3.0 * rows + 0.6), squeeze=False,
                             layout="constrained")
    y = np.asarray(layer_brain, dtype=float)
    models = list(dict.fromkeys(layer_ref["model"]))
    colours = model_colours(models)
    for ax, ref in zip(axes[0], refs):
        for m in models:
            sel = (layer_ref["model"] == m).to_numpy()
            ax.scatter(layer_ref.loc[sel, ref], y[sel], s=9, alpha=0.7, color=colours[m], label=m)
        f = fits[ref]
        xs = np.linspace(np.min(f["x"]), np.max(f["x"]), 100)
        ax.plot(xs, np.polyval(f["linear"], xs), "k-", lw=1.2, label="linear fit")
        ax.plot(xs, np.polyval(f["quadratic"], xs), "k--", lw=1.2, label="quadratic fit")
        row = link.set_index("reference").loc[ref]
        ax.set_title(f"this run, {ref}: r = {row['r']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}]")
        ax.set_xlabel(f"layer {ref} RSA ({RSA_UNIT})")
        ax.axvline(0, color="0.7", lw=0.6)
    axes[0][0].set_ylabel(f"layer brain RSA\n({RSA_UNIT}, mean over ROIs)")
    if show_published:
        for ax, ref in zip(axes[1], refs):
            p = _published_layer_link(ref)
            ax.scatter(p["x"], p["brain"], s=5, alpha=0.5, color="0.3", label="published layers (10 networks)")
            r = np.corrcoef(p["x"], p["brain"])[0, 1]
            ax.set_title(f"published, {ref}: r = {r:.2f} ({len(p)} layers)")
            ax.set_xlabel(f"layer {ref} RSA ({RSA_UNIT})")
            ax.axvline(0, color="0.7", lw=0.6)
        axes[1][0].set_ylabel(f"layer brain RSA\n({RSA_UNIT}, mean over ROIs)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if show_published:
        h2, l2 = axes[1][0].get_legend_handles_labels()
        handles, labels = handles + h2, labels + [f"{PUBLISHED_LABEL}: every layer"]
    fig.legend(handles, labels, loc="outside lower center", ncol=2)
    return fig


def planted_vs_recovered(recovery: pd.DataFrame) -> plt.Figure:
    """Synthetic subjects: planted saliency share of each ROI vs the share recovered by
    regressing the ROI RDM on the saliency and semantic RDMs."""
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN * 0.75, 3.8), layout="constrained")
    fams = list(dict.fromkeys(recovery["family"]))
    for k, fam in enumerate(fams):
        d = recovery[recovery.family == fam]
        ax.scatter(d["planted_sal_share"], d["recovered_sal_share"], color=f"C{k}",
                   label=FAMILY_NAMES.get(fam, fam), s=22)
    ax.plot([0, 1], [0, 1], color="0.5", lw=0.8, ls="--", label="perfect recovery")
    ax.set_xlabel("planted saliency share")
    ax.set_ylabel("recovered saliency share")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.set_aspect("equal")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), title="ROI family")
    return fig


def best_layer_depth(best: pd.DataFrame) -> plt.Figure:
    """Relative depth of the best layer per ROI and model."""
    rois = list(dict.fromkeys(best["roi"]))
    models = list(dict.fromkeys(best["model"]))
    colours = model_colours(models)
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH_IN, 3.6), layout="constrained")
    for m in models:
        d = best[best.model == m].set_index("roi").reindex(rois)
        ax.plot(range(len(rois)), d["rel_depth"], "o-", ms=4, lw=0.8, color=colours[m], label=m)
    ax.set_xticks(range(len(rois)), rois, rotation=90, fontsize=9)
    ax.set_ylabel("relative depth of\nthe best layer")
    ax.set_xlabel("ROI")
    ax.set_ylim(-0.05, 1.05)
    fig.legend(loc="outside lower center", ncol=4)
    return fig
