"""Figures of the Training-dynamics chapter (functions returning matplotlib Figures).

Text stays at matplotlib's defaults (10 pt; titles 12 pt). ``plt.rc_context`` is avoided on
purpose: leaving it stops the notebook's inline backend from showing later figures.

Training time is the optimizer step on a symmetric-log axis (linear below one step, so
the initial checkpoint, step 0, sits at the left edge; logarithmic above, because the
checkpoints are log-spaced and span orders of magnitude). Depth is relative depth
(0 = first hooked layer, 1 = last), so networks of different length share an axis.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.scale import SymmetricalLogTransform

from lib.training.analysis import EARLY, LAST, MEASURES

LINTHRESH = 1.0
COLOURS = {"saliency": "#d62728", "semantic": "#1f77b4"}
STEP_LABEL = "training step (symlog)"


def _symlog(ax) -> None:
    ax.set_xscale("symlog", linthresh=LINTHRESH, linscale=0.6)


def _edges(values: np.ndarray, transform=None, low: float | None = None) -> np.ndarray:
    """Cell edges halfway between sorted centres (in the transformed space when given);
    the first edge is kept at or above ``low``."""
    v = np.asarray(values, float)
    t = transform.transform(v) if transform is not None else v
    if len(t) == 1:
        e = np.array([t[0] - 0.5, t[0] + 0.5])
    else:
        mid = (t[1:] + t[:-1]) / 2
        e = np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]])
    e = transform.inverted().transform(e) if transform is not None else e
    if low is not None:
        e[0] = max(e[0], low)
    return e


def _step_axis(ax, steps: np.ndarray) -> None:
    """Symlog step axis from just left of step 0 to just right of the last step."""
    _symlog(ax)
    ax.set_xlim(-0.4 if np.min(steps) <= 0 else np.min(steps) / 1.5, np.max(steps) * 1.5)
    ax.set_xlabel(STEP_LABEL)


def heatmaps(tables: dict[str, pd.DataFrame], reference: str) -> plt.Figure:
    """RSA with ``reference`` over relative depth (y) × training step (x), one panel per
    series (``tables``: label -> per-layer table), each with its own colour scale centred
    on 0 (the series differ in range; a shared scale would wash one out)."""
    fig, axes = plt.subplots(1, len(tables), figsize=(5.6 * len(tables), 3.8), squeeze=False,
                             constrained_layout=True)
    tr = SymmetricalLogTransform(10, LINTHRESH, 0.6)
    for ax, (label, table) in zip(axes[0], tables.items()):
        t = table[table["reference"] == reference]
        grid = t.pivot_table(index="rel_depth", columns="step", values="rho", aggfunc="mean")
        steps = grid.columns.to_numpy(float)
        depths = grid.index.to_numpy(float)
        vmax = float(np.nanmax(np.abs(grid.to_numpy()))) or 1.0
        x_edges = _edges(steps, tr, low=-0.4)
        mesh = ax.pcolormesh(x_edges, _edges(depths, low=0.0), grid.to_numpy(), cmap="RdBu_r",
                             vmin=-vmax, vmax=vmax, shading="flat")
        _symlog(ax)
        ax.set_xlim(x_edges[0], x_edges[-1])
        ax.set_ylim(0, 1)
        ax.set_xlabel(STEP_LABEL)
        ax.set_ylabel("relative depth")
        ax.set_title(_wrap(label), loc="left", fontsize=10)
        cb = fig.colorbar(mesh, ax=ax, shrink=0.9)
        cb.set_label(f"{reference} RSA (Spearman ρ)")
    fig.suptitle(f"{reference.capitalize()} RSA through depth and training", fontsize=11, x=0.01,
                 ha="left")
    return fig


def _wrap(label: str, width: int = 48) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(label, width))


def trajectories(series: dict[str, pd.DataFrame]) -> plt.Figure:
    """Early-layer saliency (left) and last-layer semantic (right) RSA per checkpoint.

    ``series``: label -> measures table (rho, ci_low, ci_high per checkpoint and measure).
    One row of panels per series (the runs' step axes differ by orders of magnitude); a
    band is a stimulus-bootstrap 95 % CI where the series has one.
    """
    fig, axes = plt.subplots(len(series), 2, figsize=(10.5, 3.1 * len(series)), squeeze=False,
                             constrained_layout=True)
    for row, (label, table) in enumerate(series.items()):
        for col, measure in enumerate((EARLY, LAST)):
            ax = axes[row, col]
            t = table[table["measure"] == measure].sort_values("order")
            colour = COLOURS[MEASURES[measure]]
            x = t["step"].to_numpy(float)
            ax.plot(x, t["rho"], "-o", color=colour, ms=3.5, lw=1.5)
            if t["ci_low"].notna().any():
                ax.fill_between(x, t["ci_low"], t["ci_high"], color=colour, alpha=0.2, lw=0)
            ax.axhline(0, color="0.4", lw=0.8)
            _epoch_marks(ax, t)
            _step_axis(ax, x)
            ax.set_ylabel("Spearman ρ")
            ax.set_title(f"{measure}\n{_wrap(label, 60)}", loc="left", fontsize=10)
    handles = [Line2D([], [], color="0.3", marker="o", ms=3.5, label="Spearman ρ per checkpoint"),
               Patch(color="0.3", alpha=0.2, label="95 % stimulus-bootstrap CI (published: point values only)"),
               Line2D([], [], color="0.5", ls=":", label="end of the first epoch")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False, fontsize=9)
    return fig


def _epoch_marks(ax, t: pd.DataFrame) -> None:
    """A dotted line at the end of the first epoch, when the series has later checkpoints."""
    first = t[(t["epochs"] > 0) & (t["epochs"] <= 1.0 + 1e-9)]
    if len(first) and (t["epochs"] > 1).any():
        ax.axvline(first["step"].iloc[-1], color="0.5", ls=":", lw=1)


def loss_curve(losses: list[float]) -> plt.Figure:
    """Training loss of the demo series per step (InfoNCE; chance = log(batch size))."""
    fig, ax = plt.subplots(figsize=(5.2, 2.8), constrained_layout=True)
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, color="0.25", lw=1.2)
    _step_axis(ax, steps)
    ax.set_ylabel("contrastive loss")
    return fig
