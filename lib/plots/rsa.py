"""Figures of the Saliency and Semantics chapters (functions returning matplotlib Figures).

Depth is shown as *relative* depth (0 = first hooked layer, 1 = last) so networks of
different length share an axis; per-layer values carry their bootstrap 95 % CI as a band,
block means ± SEM (the paper's view) are drawn on top.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lib.rsa import block_summary

CONDITION_COLOURS = {"Control": "#7f7f7f", "Salient": "#d62728", "Semantic": "#1f77b4", "Semantic_Salient": "#9467bd"}
REFERENCE_COLOURS = {"saliency": "#d62728", "semantic": "#1f77b4"}


def _label(table: pd.DataFrame, model: str) -> str:
    if "label" in table and (table["model"] == model).any():
        lab = table.loc[table["model"] == model, "label"].iloc[0]
        w = table.loc[table["model"] == model, "weights"].iloc[0] if "weights" in table else ""
        return f"{lab}{' (random weights)' if w and w != 'pretrained' else ''}"
    return model


def _grid(n: int, width: float = 4.2, height: float = 3.0):
    cols = min(n, 2) if n > 1 else 1
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, sharey=True)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()


def layer_profiles(table: pd.DataFrame, reference: str, alpha: float = 0.05, value_label: str | None = None):
    """One panel per model: RSA of every layer with ``reference`` (line, CI band), layers
    significant after FDR (filled dots), block mean ± SEM (black error bars)."""
    t = table[table["reference"] == reference]
    models = list(dict.fromkeys(t["model"]))
    fig, axes = _grid(len(models))
    colour = REFERENCE_COLOURS.get(reference, "C0")
    for ax, m in zip(axes, models):
        g = t[t["model"] == m].sort_values("depth")
        ax.axhline(0, color="0.6", lw=0.8)
        ax.fill_between(g["rel_depth"], g["ci_low"], g["ci_high"], color=colour, alpha=0.2, lw=0, label="95 % CI")
        ax.plot(g["rel_depth"], g["rho"], color=colour, lw=1, label="layer")
        sig = g["q"] < alpha
        ax.plot(g.loc[sig, "rel_depth"], g.loc[sig, "rho"], "o", ms=3, color=colour, label=f"q < {alpha}")
        b = block_summary(g)
        ax.errorbar(b["rel_depth"], b["mean"], yerr=b["sem"].fillna(0), fmt="s", ms=3, color="k", lw=0.8,
                    capsize=2, label="block mean ± SEM")
        ax.set_title(_label(t, m), fontsize=9)
        ax.set_xlabel("relative depth")
    axes[0].set_ylabel(value_label or f"{reference} RSA (Spearman ρ)")
    axes[0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def contrast_plot(contrast: pd.DataFrame, reference: str, alpha: float = 0.05):
    """Difference between model groups at matched relative depth, with paired-bootstrap CIs."""
    c = contrast[contrast["reference"] == reference]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.axhline(0, color="0.6", lw=0.8)
    for i, ((name, matched), g) in enumerate(c.groupby(["contrast", "matched_on"], sort=False)):
        g = g.astype({k: float for k in ("rel_depth", "diff", "ci_low", "ci_high", "q")})
        g = g.dropna(subset=["diff"]).sort_values("rel_depth")
        col = f"C{i}"
        ax.fill_between(g["rel_depth"], g["ci_low"], g["ci_high"], color=col, alpha=0.2, lw=0)
        ax.plot(g["rel_depth"], g["diff"], "-", color=col, label=f"{g['group_a'].iloc[0]} − {g['group_b'].iloc[0]}"
                if len(g) else name)
        sig = g["q"] < alpha
        ax.plot(g.loc[sig, "rel_depth"], g.loc[sig, "diff"], "o", color=col, ms=4)
    ax.set_xlabel("relative depth (bin centre)")
    ax.set_ylabel(f"Δ {reference} RSA")
    ax.set_xlim(0, 1)
    if len(c):
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def delta_profiles(delta: pd.DataFrame, reference: str, absolute: bool = True):
    """|ΔRSA| (or ΔRSA) through depth per condition, one panel per model, block means."""
    d = delta[delta["reference"] == reference].copy()
    if absolute:
        d["rho"] = d["rho"].abs()
    models = list(dict.fromkeys(d["model"]))
    fig, axes = _grid(max(len(models), 1))
    for ax, m in zip(axes, models):
        g = d[d["model"] == m]
        for cond, gc in g.groupby("condition", sort=False):
            b = block_summary(gc)
            ax.errorbar(b["rel_depth"], b["mean"], yerr=b["sem"].fillna(0), fmt="-o", ms=2.5, lw=1, capsize=1.5,
                        color=CONDITION_COLOURS.get(cond), label=cond)
        if not absolute:
            ax.axhline(0, color="0.6", lw=0.8)
        ax.set_title(_label(d, m), fontsize=9)
        ax.set_xlabel("relative depth")
    axes[0].set_ylabel(f"{'|ΔRSA|' if absolute else 'ΔRSA'} ({reference})")
    if models:
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def saliency_vs_semantic(table: pd.DataFrame):
    """Each layer as a point: saliency RSA against semantic RSA, coloured by relative depth."""
    wide = table.pivot_table(index=["model", "layer", "rel_depth"], columns="reference", values="rho").reset_index()
    models = list(dict.fromkeys(wide["model"]))
    fig, axes = _grid(len(models), width=3.8, height=3.4)
    sc = None
    for ax, m in zip(axes, models):
        g = wide[wide["model"] == m]
        ax.axhline(0, color="0.7", lw=0.6)
        ax.axvline(0, color="0.7", lw=0.6)
        sc = ax.scatter(g.get("saliency"), g.get("semantic"), c=g["rel_depth"], cmap="viridis", s=10, vmin=0, vmax=1)
        ax.set_title(_label(table, m), fontsize=9)
        ax.set_xlabel("saliency RSA")
    axes[0].set_ylabel("semantic RSA")
    if sc is not None:
        fig.colorbar(sc, ax=list(axes), label="relative depth", shrink=0.8)
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
            ax.plot(g["rel_depth"], g["rho"], color=col, lw=1, label=f"{ref} | {g['control'].iloc[0]}")
            sig = g["q"] < alpha
            ax.plot(g.loc[sig, "rel_depth"], g.loc[sig, "rho"], "o", ms=2.5, color=col)
        ax.set_title(_label(partial, m), fontsize=9)
        ax.set_xlabel("relative depth")
    axes[0].set_ylabel("partial Spearman ρ")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
