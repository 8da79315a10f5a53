"""Figure of the brain chapter's link section: one panel per network (issue 11).

Why per network: the networks, not the layers, are the independent units of the link
between a layer's reference RSA and its brain RSA, so the figure shows each network's own
scatter and r before any pooled number.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lib.plots.brain import REF_COLOURS
from lib.plots.style import TEXT_WIDTH_IN


def per_network_link(fits: dict, link: pd.DataFrame, max_cols: int = 3) -> plt.Figure:
    """Rows: references (semantic, saliency); panels: networks. Each panel scatters the
    network's layers (x: layer RSA with the reference, y: layer brain RSA) with its
    least-squares line and its Pearson r; the row title gives the pooled network-level
    estimate or why there is none."""
    refs = [r for r in ("semantic", "saliency") if r in fits]
    if not refs:
        fig, ax = plt.subplots(figsize=(4, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no layers with both a reference and a brain RSA", ha="center", va="center")
        return fig
    nets = list(dict.fromkeys(np.concatenate([fits[r]["network"] for r in refs])))
    ncols = min(max_cols, max(1, len(nets)))
    rows_per_ref = int(np.ceil(len(nets) / ncols))
    fig, axes = plt.subplots(len(refs) * rows_per_ref, ncols,
                             figsize=(min(TEXT_WIDTH_IN, max(2.4 * ncols, 4.0)), 2.4 * len(refs) * rows_per_ref + 0.6),
                             squeeze=False, sharey=True, layout="constrained")
    heads = []
    table = link.set_index("reference") if len(link) else pd.DataFrame()
    for i, ref in enumerate(refs):
        f = fits[ref]
        per = f["networks"].set_index("network")
        colour = REF_COLOURS.get(ref, "C0")
        for j, net in enumerate(nets):
            ax = axes[i * rows_per_ref + j // ncols][j % ncols]
            sel = f["network"] == net
            x, y = f["x"][sel], f["y"][sel]
            ax.scatter(x, y, s=8, alpha=0.7, color=colour)
            if len(x) > 1 and np.ptp(x) > 0:
                xs = np.linspace(x.min(), x.max(), 2)
                ax.plot(xs, np.polyval(np.polyfit(x, y, 1), xs), color="k", lw=1)
            r = per["r"].get(net, np.nan)
            ax.set_title(f"{net}\nr = {r:.2f} ({int(sel.sum())} layers)" if np.isfinite(r) else f"{net}\nr undefined",
                         fontsize=9)
            ax.set_xlabel(f"layer {ref} RSA", fontsize=9)
            ax.tick_params(labelsize=9)
            if j % ncols == 0:
                ax.set_ylabel("layer brain RSA", fontsize=9)
        for j in range(len(nets), rows_per_ref * ncols):
            axes[i * rows_per_ref + j // ncols][j % ncols].axis("off")
        if ref in table.index:
            row = table.loc[ref]
            heads.append(f"{ref}: {row['reason']}" if row["reason"] else
                         f"{ref}: pooled r = {row['r']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}] over "
                         f"{int(row['n_networks'])} networks")
    if heads:
        fig.suptitle("\n".join(heads), fontsize=9)
    return fig
