"""Figures of the Stimuli chapter: the condition grid with saliency overlays, the
manipulation check, and the two reference RDMs."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

CONDITION_COLOURS = {"Baseline": "#2ca02c", "Control": "#7f7f7f", "Salient": "#d62728", "Semantic": "#1f77b4",
                     "Semantic_Salient": "#9467bd"}


def _overlay(image: np.ndarray, saliency: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    heat = plt.get_cmap("inferno")(np.clip(saliency, 0, 1))[..., :3]
    return np.clip((1 - alpha) * image / 255.0 + alpha * heat, 0, 1)


def condition_grid(ss, image_ids: list[str] | None = None, n_rows: int = 4, overlay: bool = True):
    """Rows = base images, columns = the five conditions; saliency maps overlaid and the
    pasted distractor outlined."""
    from lib.stimuli import CONDITIONS

    ids = image_ids or ss.ids[:n_rows]
    rows = [ss.ids.index(i) for i in ids]
    meta = ss.metadata.set_index(["image_id", "condition"])
    fig, axes = plt.subplots(len(rows), len(CONDITIONS), figsize=(2.3 * len(CONDITIONS), 2.35 * len(rows)),
                             squeeze=False)
    for c, cond in enumerate(CONDITIONS):
        imgs, maps = ss.images(cond), ss.saliency(cond)
        for r, k in enumerate(rows):
            ax = axes[r, c]
            ax.imshow(_overlay(imgs[k], maps[k]) if overlay else imgs[k])
            ax.set_xticks([])
            ax.set_yticks([])
            if cond != "Baseline":
                m = meta.loc[(ss.ids[k], cond)]
                ax.add_patch(plt.Rectangle((m["left"] - 0.5, m["top"] - 0.5), m["width"], m["height"], fill=False,
                                           ec=CONDITION_COLOURS[cond], lw=2))
                ax.set_xlabel(f"{m['distractor_id']}\nsem {m['sem_distance']:.2f} · Δsal {m['sal_change']:.2f}",
                              fontsize=7)
            if r == 0:
                ax.set_title(cond.replace("_", "\n"), fontsize=9, color=CONDITION_COLOURS[cond])
            if c == 0:
                ax.set_ylabel(ss.ids[k], fontsize=8)
    fig.tight_layout()
    return fig


def manipulation_check(ss):
    """Semantic distance and saliency change of the chosen distractors per condition (dots)
    over the distribution of all evaluated candidates (grey), thresholds dashed."""
    from lib.stimuli import EDITED

    meta = ss.metadata[ss.metadata["condition"] != "Baseline"]
    cand = ss.candidates
    th = ss.thresholds
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    pool = ss.pool_semantic[np.triu_indices(len(ss.pool_semantic), 1)]
    for ax, col, data, lines, label in [
        (axes[0], "sem_distance", pool, (th["sem_similar_max"], th["sem_dissimilar_min"]),
         "semantic distance (cosine, captions)"),
        (axes[1], "sal_change", cand["sal_change"].to_numpy(), (th["sal_little_max"], th["sal_alot_min"]),
         "saliency change (cosine, maps)"),
    ]:
        ax.hist(data, bins=30, color="0.85", density=True, label="all pairs" if col == "sem_distance" else
                "all evaluated candidates")
        ymax = ax.get_ylim()[1]
        rng = np.random.default_rng(0)
        for i, cond in enumerate(EDITED):
            v = meta.loc[meta["condition"] == cond, col].to_numpy(float)
            y = ymax * (0.15 + 0.2 * i) + rng.uniform(-0.04, 0.04, len(v)) * ymax
            ax.scatter(v, y, s=14, color=CONDITION_COLOURS[cond], label=cond, zorder=3)
        for x in lines:
            if np.isfinite(x):
                ax.axvline(x, ls="--", color="k", lw=1)
        ax.set_xlabel(label)
        ax.set_yticks([])
    axes[0].legend(fontsize=7, loc="upper left")
    mode = th["mode"]
    fig.suptitle(f"Manipulation check ({mode} mode; dashed: "
                 f"{'thresholds' if mode == 'threshold' else 'median of the per-image quantile thresholds'})",
                 fontsize=10)
    fig.tight_layout()
    return fig


def reference_rdms(ss):
    """The saliency and semantic reference RDMs (same image order) and their relation."""
    from scipy.stats import rankdata

    sal, sem = ss.reference_rdm("saliency"), ss.reference_rdm("semantic")
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.1))
    for ax, r, name in [(axes[0], sal, "saliency RDM"), (axes[1], sem, "semantic RDM")]:
        m = r.get_matrices()[0]
        v = rankdata(r.get_vectors()[0]) / r.get_vectors().shape[1]  # rank-transformed for display
        mm = np.zeros_like(m)
        mm[np.triu_indices(len(m), 1)] = v
        mm = mm + mm.T
        im = ax.imshow(mm, cmap="viridis")
        ax.set_title(f"{name} (ranks)", fontsize=10)
        ax.set_xticks(range(len(ss.ids)))
        ax.set_yticks(range(len(ss.ids)))
        ax.set_xticklabels(ss.ids, rotation=90, fontsize=6)
        ax.set_yticklabels(ss.ids, fontsize=6)
        fig.colorbar(im, ax=ax, fraction=0.046)
    axes[2].scatter(rankdata(sem.get_vectors()[0]), rankdata(sal.get_vectors()[0]), s=10, color="0.3")
    axes[2].set_xlabel("semantic distance (rank)")
    axes[2].set_ylabel("saliency distance (rank)")
    axes[2].set_title("pairs of images", fontsize=10)
    fig.tight_layout()
    return fig


def condition_summary(ss) -> pd.DataFrame:
    """Mean ± SD of semantic distance and saliency change per edited condition."""
    meta = ss.metadata[ss.metadata["condition"] != "Baseline"]
    g = meta.groupby("condition", sort=False)[["sem_distance", "sal_change"]].agg(["mean", "std"])
    out = pd.DataFrame({
        "semantic distance": [f"{a:.3f} ± {b:.3f}" for a, b in g["sem_distance"].to_numpy()],
        "saliency change": [f"{a:.3f} ± {b:.3f}" for a, b in g["sal_change"].to_numpy()],
    }, index=g.index)
    out.index.name = "condition"
    return out
