"""Figures of the Saliency and Semantics chapters (functions returning matplotlib Figures).

Depth is shown as *relative* depth (0 = first hooked layer, 1 = last) so networks of
different length share an axis; per-layer values carry their bootstrap 95 % CI as a band,
block means ± SEM (the paper's view) are drawn on top, and the original study's published
curve of the corresponding network (pretrained, original stimuli) is drawn dashed beside
this run's. All in the book style of :mod:`lib.plots.style`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lib.plots.style import CONDITION_COLOURS, PUBLISHED_LABEL, PUBLISHED_STYLE, REFERENCE_COLOURS, TEXT_WIDTH_IN
from lib.rsa import block_summary

RSA_UNIT = "Spearman ρ"


def _label(table: pd.DataFrame, model: str) -> str:
    if "label" in table and (table["model"] == model).any():
        lab = table.loc[table["model"] == model, "label"].iloc[0]
        w = table.loc[table["model"] == model, "weights"].iloc[0] if "weights" in table else ""
        return f"{lab}{' (random weights)' if w and w != 'pretrained' else ''}"
    return model


def run_label(table: pd.DataFrame) -> str:
    """'this run (…)': what the run's curves are, in a legend."""
    w = set(table["weights"]) if "weights" in table else set()
    if not w:
        return "this run"
    if w == {"pretrained"}:
        return "this run (pretrained)"
    return "this run (random weights)" if "pretrained" not in w else "this run (some random weights)"


def _grid(n: int, height: float = 2.6, sharey: bool = True):
    cols = 1 if n == 1 else 2
    rows = int(np.ceil(n / cols))
    width = TEXT_WIDTH_IN if cols == 2 else TEXT_WIDTH_IN * 0.6
    fig, axes = plt.subplots(rows, cols, figsize=(width, height * rows + 0.6), squeeze=False, sharey=sharey,
                             layout="constrained")
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()


def published_curve(model: str, reference: str, arch: str | None = None, training: str | None = None,
                    condition: str = "Baseline") -> tuple[str | None, pd.DataFrame]:
    """The original's layer RSA of the network corresponding to ``model`` (itself if the
    original ran it, else one of the same architecture and training): (its name, table with
    ``rel_depth, rsa, layer``); (None, empty) when there is none."""
    from lib import published

    name = published.corresponding_model(model, arch, training)
    if name is None:
        return None, pd.DataFrame(columns=["rel_depth", "rsa", "layer"])
    t = published.with_rel_depth(published.layer_rsa())
    t = t[(t["model"] == name) & (t["reference"] == reference) & (t["condition"] == condition)]
    return name, t.sort_values("layer_index")[["rel_depth", "rsa", "layer"]]


def _info(table: pd.DataFrame, model: str, col: str) -> str | None:
    if col in table and (table["model"] == model).any():
        return table.loc[table["model"] == model, col].iloc[0]
    return None


def layer_profiles(table: pd.DataFrame, reference: str, alpha: float = 0.05, value_label: str | None = None,
                   show_published: bool = True):
    """One panel per model: RSA of every layer with ``reference`` (line, CI band), layers
    significant after FDR (dots), block mean ± SEM (black squares) and, dashed, the
    published curve of the corresponding network."""
    t = table[table["reference"] == reference]
    models = list(dict.fromkeys(t["model"]))
    fig, axes = _grid(len(models))
    colour = REFERENCE_COLOURS.get(reference, "C0")
    for ax, m in zip(axes, models):
        g = t[t["model"] == m].sort_values("depth")
        ax.axhline(0, color="0.6", lw=0.8)
        ax.fill_between(g["rel_depth"], g["ci_low"], g["ci_high"], color=colour, alpha=0.2, lw=0,
                        label="95 % CI (bootstrap)")
        ax.plot(g["rel_depth"], g["rho"], color=colour, lw=1.2, label=run_label(t))
        sig = g["q"] < alpha
        ax.plot(g.loc[sig, "rel_depth"], g.loc[sig, "rho"], "o", ms=3, color=colour, label=f"layer with q < {alpha}")
        b = block_summary(g)
        ax.errorbar(b["rel_depth"], b["mean"], yerr=b["sem"].fillna(0), fmt="s", ms=3, color="k", lw=0.8,
                    capsize=2, label="block mean ± SEM")
        title = _label(t, m)
        if show_published:
            name, pub = published_curve(m, reference, _info(t, m, "arch"), _info(t, m, "training"))
            if name is not None:
                ax.plot(pub["rel_depth"], pub["rsa"], label=PUBLISHED_LABEL, **PUBLISHED_STYLE)
                if name != m:
                    title += f"\npublished: {name}"
        ax.set_title(title)
        ax.set_xlabel("relative depth (0 = first layer, 1 = last)")
        ax.set_xlim(0, 1)
    for ax in axes[::2 if len(models) > 1 else 1][: int(np.ceil(len(models) / 2))]:
        ax.set_ylabel(value_label or f"{reference} RSA ({RSA_UNIT})")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3)
    return fig


def contrast_plot(contrast: pd.DataFrame, reference: str, alpha: float = 0.05):
    """Difference between model groups at matched relative depth, with paired-bootstrap CIs:
    one panel per contrast (so bands never overlap), significant bins as filled markers."""
    c = contrast[contrast["reference"] == reference]
    if "span" in c:  # depth bins only; the claim-level span rows have no depth
        c = c[c["span"] == ""]
    groups = list(c.groupby(["contrast", "matched_on"], sort=False))
    fig, axes = _grid(max(len(groups), 1), height=2.4)
    for ax, ((name, matched), g) in zip(axes, groups):
        g = g.astype({k: float for k in ("rel_depth", "diff", "ci_low", "ci_high", "q")})
        g = g.dropna(subset=["diff"]).sort_values("rel_depth")
        col = REFERENCE_COLOURS.get(reference, "C0")
        ax.axhline(0, color="0.6", lw=0.8)
        ax.fill_between(g["rel_depth"], g["ci_low"], g["ci_high"], color=col, alpha=0.25, lw=0,
                        label="95 % CI (paired bootstrap)")
        ax.plot(g["rel_depth"], g["diff"], "-o", color=col, ms=3, mfc="white", lw=1.2, label="difference, q ≥ α")
        sig = g["q"] < alpha
        ax.plot(g.loc[sig, "rel_depth"], g.loc[sig, "diff"], "o", color=col, ms=4, label=f"difference, q < {alpha}")
        ax.set_title(f"{g['group_a'].iloc[0]} − {g['group_b'].iloc[0]}" if len(g) else f"{name} ({matched})")
        ax.set_xlabel("relative depth (bin centre)")
        ax.set_xlim(0, 1)
    axes[0].set_ylabel(f"Δ {reference} RSA ({RSA_UNIT})")
    if groups:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=3)
    return fig


def delta_profiles(delta: pd.DataFrame, reference: str, absolute: bool = False):
    """ΔRSA (signed, or |ΔRSA|) through depth per condition, one panel per model, block
    means ± SEM."""
    d = delta[delta["reference"] == reference].copy()
    if absolute:
        d["rho"] = d["rho"].abs()
    models = list(dict.fromkeys(d["model"]))
    fig, axes = _grid(max(len(models), 1))
    for ax, m in zip(axes, models):
        g = d[d["model"] == m]
        if not absolute:
            ax.axhline(0, color="0.6", lw=0.8)
        for cond, gc in g.groupby("condition", sort=False):
            b = block_summary(gc)
            ax.errorbar(b["rel_depth"], b["mean"], yerr=b["sem"].fillna(0), fmt="-o", ms=2.5, lw=1, capsize=1.5,
                        color=CONDITION_COLOURS.get(cond), label=cond.replace("_", " + "))
        ax.set_title(_label(d, m))
        ax.set_xlabel("relative depth")
        ax.set_xlim(0, 1)
    axes[0].set_ylabel(f"{'|ΔRSA|' if absolute else 'ΔRSA'} {reference} ({RSA_UNIT})")
    if models:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=4, title="distractor condition (block mean ± SEM)")
    return fig


def saliency_vs_semantic(table: pd.DataFrame):
    """Each layer as a point: saliency RSA against semantic RSA, coloured by relative depth."""
    wide = table.pivot_table(index=["model", "layer", "rel_depth"], columns="reference", values="rho").reset_index()
    models = list(dict.fromkeys(wide["model"]))
    fig, axes = _grid(len(models), height=2.8, sharey=True)
    sc = None
    for ax, m in zip(axes, models):
        g = wide[wide["model"] == m]
        ax.axhline(0, color="0.7", lw=0.6)
        ax.axvline(0, color="0.7", lw=0.6)
        sc = ax.scatter(g.get("saliency"), g.get("semantic"), c=g["rel_depth"], cmap="viridis", s=12, vmin=0, vmax=1)
        ax.set_title(_label(table, m))
        ax.set_xlabel(f"saliency RSA ({RSA_UNIT})")
    axes[0].set_ylabel(f"semantic RSA ({RSA_UNIT})")
    if sc is not None:
        fig.colorbar(sc, ax=[a for a in axes if a.get_visible()], label="relative depth", shrink=0.8)
    return fig


def partial_profiles(partial: pd.DataFrame, alpha: float = 0.05):
    """Unique RSA (each reference controlling for the other) through depth, per model."""
    models = list(dict.fromkeys(partial["model"]))
    fig, axes = _grid(len(models))
    for ax, m in zip(axes, models):
        ax.axhline(0, color="0.6", lw=0.8)
        for ref, g in partial[partial["model"] == m].groupby("reference", sort=False):
            g = g.sort_values("depth")
            col = REFERENCE_COLOURS.get(ref)
            ax.fill_between(g["rel_depth"], g["ci_low"], g["ci_high"], color=col, alpha=0.2, lw=0)
            ax.plot(g["rel_depth"], g["rho"], color=col, lw=1.2, label=f"{ref}, controlling for {g['control'].iloc[0]}")
            sig = g["q"] < alpha
            ax.plot(g.loc[sig, "rel_depth"], g.loc[sig, "rho"], "o", ms=2.5, color=col)
        ax.set_title(_label(partial, m))
        ax.set_xlabel("relative depth")
        ax.set_xlim(0, 1)
    axes[0].set_ylabel(f"partial {RSA_UNIT}")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, title=f"bands: 95 % CI; dots: q < {alpha}")
    return fig
