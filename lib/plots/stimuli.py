"""Figures of the Stimuli chapter: the condition grid (each image beside its saliency map,
with its captions), the manipulation check (each condition's range against the
thresholds) and the two reference RDMs."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lib.plots.style import CONDITION_COLOURS, TEXT_WIDTH_IN

SALIENCY_CMAP = "inferno"


def condition_grid(ss, image_ids: list[str] | None = None, n_rows: int = 3, n_captions: int = 2):
    """Per base image: a row of the five conditions' images (distractor outlined) and below
    it a row of their saliency maps (own colour scale, labelled), headed by the image's id and
    captions."""
    from lib.stimuli import CONDITIONS

    ids = image_ids or ss.ids[:n_rows]
    meta = ss.metadata.set_index(["image_id", "condition"])
    images = {c: ss.images(c) for c in CONDITIONS}
    maps = {c: ss.saliency(c) for c in CONDITIONS}
    fig = plt.figure(figsize=(TEXT_WIDTH_IN, 3.6 * len(ids) + 0.4), layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(len(ids), 1))
    im = None
    for sub, image_id in zip(subfigs, ids):
        k = ss.ids.index(image_id)
        captions = ss.captions.get(image_id, [])[:n_captions]
        text = "; ".join(f"“{c}”" for c in captions)
        sub.suptitle(textwrap.fill(f"{image_id} — {text}" if text else image_id, 95), fontsize=9, ha="left", x=0.01)
        axes = sub.subplots(2, len(CONDITIONS))
        for c, cond in enumerate(CONDITIONS):
            ax_img, ax_map = axes[0, c], axes[1, c]
            ax_img.imshow(images[cond][k])
            im = ax_map.imshow(maps[cond][k], cmap=SALIENCY_CMAP, vmin=0, vmax=1)
            for ax in (ax_img, ax_map):
                ax.set_xticks([])
                ax.set_yticks([])
            ax_img.set_title(cond.replace("_", "\n+ "), fontsize=9, color=CONDITION_COLOURS[cond])
            if cond != "Baseline":
                m = meta.loc[(image_id, cond)]
                for ax in (ax_img, ax_map):
                    ax.add_patch(plt.Rectangle((m["left"] - 0.5, m["top"] - 0.5), m["width"], m["height"],
                                               fill=False, ec=CONDITION_COLOURS[cond], lw=1.5))
                ax_map.set_xlabel(f"sem {m['sem_distance']:.2f}\nΔsal {m['sal_change']:.3f}", fontsize=9)
        axes[0, 0].set_ylabel("image", fontsize=9)
        axes[1, 0].set_ylabel("saliency map", fontsize=9)
    if im is not None:
        subfigs[-1].colorbar(im, ax=subfigs[-1].axes, location="bottom", shrink=0.5, aspect=40,
                             label="saliency (Itti–Koch, normalised 0–1)")
    return fig


def manipulation_check(ss):
    """Per measure (semantic distance, saliency change): one row per edited condition with
    each chosen distractor (dot) and the condition's range (bar, min–max), the pool of all
    evaluated candidates (grey box) and the thresholds (dashed), so overlap is visible."""
    from lib.stimuli import EDITED

    meta = ss.metadata[ss.metadata["condition"] != "Baseline"]
    cand = ss.candidates
    th = ss.thresholds
    pool = {"sem_distance": cand["sem_distance"].to_numpy(float) if "sem_distance" in cand else
            ss.pool_semantic[np.triu_indices(len(ss.pool_semantic), 1)],
            "sal_change": cand["sal_change"].to_numpy(float)}
    per_image = th["mode"] != "threshold"
    fig, axes = plt.subplots(1, 2, figsize=(TEXT_WIDTH_IN, 2.9), sharey=True, layout="constrained")
    conds = list(EDITED)
    rng = np.random.default_rng(0)
    for ax, col, lines, label in [
        (axes[0], "sem_distance", (("similar below", th["sem_similar_max"]), ("dissimilar above", th["sem_dissimilar_min"])),
         "semantic distance to base\n(cosine, caption embeddings)"),
        (axes[1], "sal_change", (("little below", th["sal_little_max"]), ("a lot above", th["sal_alot_min"])),
         "saliency change by the paste\n(cosine distance of maps)"),
    ]:
        data = pool[col][np.isfinite(pool[col])]
        ax.boxplot(data, positions=[len(conds)], vert=False, widths=0.5, showfliers=False,
                   patch_artist=True, boxprops={"facecolor": "0.9", "color": "0.5"},
                   medianprops={"color": "0.3"}, whiskerprops={"color": "0.5"}, capprops={"color": "0.5"})
        for i, cond in enumerate(conds):
            v = meta.loc[meta["condition"] == cond, col].to_numpy(float)
            if len(v):
                ax.plot([v.min(), v.max()], [i, i], color=CONDITION_COLOURS[cond], lw=6, alpha=0.35,
                        solid_capstyle="butt")
                ax.scatter(v, i + rng.uniform(-0.15, 0.15, len(v)), s=14, color=CONDITION_COLOURS[cond], zorder=3)
        for name, x in lines:
            if np.isfinite(x):
                ax.axvline(x, ls="--", color="k", lw=1)
        ax.set_xlabel(label)
    axes[0].set_yticks(range(len(conds) + 1), [c.replace("_", " + ") for c in conds] + ["all candidates"])
    axes[0].invert_yaxis()
    fig.suptitle("Chosen distractors (dots; bar = range) against the thresholds (dashed)"
                 + ("\ndashed: median of the per-image quantile thresholds" if per_image else ""), fontsize=10)
    return fig


def _rank_matrix(rdm) -> np.ndarray:
    from scipy.stats import rankdata

    m = rdm.get_matrices()[0]
    v = rankdata(rdm.get_vectors()[0]) / rdm.get_vectors().shape[1]
    out = np.zeros_like(m)
    out[np.triu_indices(len(m), 1)] = v
    return out + out.T


def reference_rdms(ss):
    """The saliency and semantic reference RDMs (same image order, as ranks) and, below, how
    the two distances relate over all pairs of images."""
    from scipy.stats import rankdata

    sal, sem = ss.reference_rdm("saliency"), ss.reference_rdm("semantic")
    n = len(ss.ids)
    fig = plt.figure(figsize=(TEXT_WIDTH_IN, 5.6 + 0.05 * n), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.5, 0.75])
    axes = top.subplots(1, 2)
    im = None
    for ax, r, name in [(axes[0], sal, "saliency RDM"), (axes[1], sem, "semantic RDM")]:
        im = ax.imshow(_rank_matrix(r), cmap="viridis", vmin=0, vmax=1)
        ax.set_title(name)
        step = max(1, int(np.ceil(n / 22)))
        ticks = list(range(0, n, step))
        ax.set_xticks(ticks, [ss.ids[i] for i in ticks], rotation=90, fontsize=9)
        ax.set_yticks(ticks, [ss.ids[i] for i in ticks] if ax is axes[0] else [], fontsize=9)
    top.colorbar(im, ax=axes, shrink=0.8, label="dissimilarity (rank, 0–1)")
    ax = bottom.subplots()
    ax.scatter(rankdata(sem.get_vectors()[0]), rankdata(sal.get_vectors()[0]), s=10, color="0.3")
    ax.set_xlabel("semantic distance (rank over pairs)")
    ax.set_ylabel("saliency distance\n(rank over pairs)")
    ax.set_title("every pair of images")
    return fig


def condition_summary(ss) -> pd.DataFrame:
    """Mean ± SD of semantic distance and saliency change per edited condition."""
    meta = ss.metadata[ss.metadata["condition"] != "Baseline"]
    g = meta.groupby("condition", sort=False)[["sem_distance", "sal_change"]].agg(["mean", "std"])
    return pd.DataFrame({
        "condition": g.index,
        "semantic distance (mean ± SD)": [f"{a:.3f} ± {b:.3f}" for a, b in g["sem_distance"].to_numpy()],
        "saliency change (mean ± SD)": [f"{a:.3f} ± {b:.3f}" for a, b in g["sal_change"].to_numpy()],
    })
