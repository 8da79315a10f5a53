"""Distractor pasting and the search for the four edited conditions.

For each base image, candidates are (distractor image, placement) pairs in dataset order.
A candidate's *semantic distance* is the cosine distance between the base's and the
distractor's mean caption embeddings; its *saliency change* is the cosine distance between
the flattened saliency maps of the base and the edited image. Each condition takes the
first candidate meeting both of its criteria (the original's rule); a base image missing
any condition is dropped.

Modes: ``threshold`` uses absolute thresholds (the paper's belong to the Universal Sentence
Encoder's space); ``quantile`` sets them at quantiles of the observed distributions, for
small pools and other embedding models. Quantiles are taken *per base image* (semantic:
over its distractors' distances; saliency: over the changes of all its candidates),
because how much a paste changes a map depends mostly on the base image: quantiles pooled
over bases left most bases of a small pool with no "little" or no "a lot" change.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import pandas as pd

CONDITIONS = ("Baseline", "Control", "Salient", "Semantic", "Semantic_Salient")
EDITED = CONDITIONS[1:]
# condition -> (semantic class of the distractor, size of the saliency change)
RULES = {
    "Control": ("similar", "little"),
    "Salient": ("similar", "alot"),
    "Semantic": ("dissimilar", "little"),
    "Semantic_Salient": ("dissimilar", "alot"),
}
AREA_FRACTION = 0.10
EDGES = ("left", "right", "top", "bottom")


@dataclass(frozen=True)
class Box:
    """Where a distractor goes: top-left corner, size, and the edge it is flush against."""

    top: int
    left: int
    height: int
    width: int
    edge: str


def paste_box(base_hw: tuple[int, int], distractor_hw: tuple[int, int], rng: np.random.Generator,
              area_fraction: float = AREA_FRACTION) -> Box:
    """Size: area = ``area_fraction`` of the base, distractor's aspect kept (shrunk to fit
    if it is longer than the base's side). Place: flush to a random edge, random offset."""
    H, W = base_hw
    dh, dw = distractor_hw
    aspect = dw / dh
    area = area_fraction * H * W
    w, h = math.sqrt(area * aspect), math.sqrt(area / aspect)
    if w > W:
        w, h = W, W / aspect
    if h > H:
        w, h = H * aspect, H
    w, h = max(1, min(W, int(round(w)))), max(1, min(H, int(round(h))))
    edge = EDGES[int(rng.integers(4))]
    if edge in ("left", "right"):
        top = int(rng.integers(0, H - h + 1))
        left = 0 if edge == "left" else W - w
    else:
        left = int(rng.integers(0, W - w + 1))
        top = 0 if edge == "top" else H - h
    return Box(top, left, h, w, edge)


def paste(base: np.ndarray, distractor: np.ndarray, box: Box) -> np.ndarray:
    """A copy of ``base`` with ``distractor`` resized into ``box``."""
    out = base.copy()
    interp = cv2.INTER_AREA if distractor.shape[0] >= box.height else cv2.INTER_CUBIC
    out[box.top : box.top + box.height, box.left : box.left + box.width] = cv2.resize(
        distractor, (box.width, box.height), interpolation=interp)
    return out


def candidate_rng(seed: int, base_id: str, distractor_id: str, placement: int) -> np.random.Generator:
    """The generator of one candidate placement: depends only on who and which, never on the
    order candidates are evaluated in (so lazy and exhaustive searches agree)."""
    return np.random.default_rng([seed, zlib.crc32(base_id.encode()), zlib.crc32(distractor_id.encode()), placement])


def cosine_distance_matrix(x: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, n) cosine distances (via lib.gram, the project's one RDM arithmetic)."""
    from lib.gram import features_gram, rdm_from_gram

    gram, _, _ = features_gram(x)
    return rdm_from_gram(gram, "cosine")


def saliency_change(base_map: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """Cosine distance between the flattened base map and each edited map (k,)."""
    a = base_map.reshape(-1).astype(np.float64)
    b = np.asarray(maps).reshape(len(maps), -1).astype(np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (1.0 - (b @ a) / (nb * na)).astype(np.float64)


@dataclass
class Thresholds:
    """Selection thresholds, whichever mode produced them."""

    mode: str
    sem_similar_max: float
    sem_dissimilar_min: float
    sal_little_max: float
    sal_alot_min: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pairs(ids: Sequence[str], n_distractors: int | None) -> dict[int, list[int]]:
    """Per base index, its candidate distractors (the other images, dataset order)."""
    n = len(ids)
    return {i: [j for j in range(n) if j != i][: n_distractors or None] for i in range(n)}


def semantic_thresholds(params: dict[str, Any], d: np.ndarray) -> tuple[float, float]:
    """(similar below, dissimilar above) for one base's distractor distances ``d``."""
    if params["selection_mode"] == "threshold":
        return params["sem_similar_max"], params["sem_dissimilar_min"]
    return float(np.quantile(d, params["quantile_low"])), float(np.quantile(d, params["quantile_high"]))


def _saliency_thresholds(params: dict[str, Any], change: np.ndarray) -> tuple[float, float]:
    if params["selection_mode"] == "threshold":
        return params["sal_little_max"], params["sal_alot_min"]
    if len(change) == 0:
        return math.nan, math.nan
    return float(np.quantile(change, params["quantile_low"])), float(np.quantile(change, params["quantile_high"]))


def _classify(d: float, low: float, high: float, names: tuple[str, str]) -> str:
    return names[0] if d < low else names[1] if d > high else ""


CANDIDATE_COLUMNS = ["image_id", "distractor_id", "placement", "edge", "top", "left", "height", "width",
                     "sem_distance", "sem_similar_max", "sem_dissimilar_min", "sem_class",
                     "sal_change", "sal_little_max", "sal_alot_min", "sal_class"]


@dataclass(frozen=True)
class _SearchInputs:
    """What every base image's search reads (sent to Dask workers once, not per base)."""

    images: Sequence[np.ndarray]
    ids: Sequence[str]
    base_maps: Sequence[np.ndarray]
    sem: np.ndarray
    pairs: dict[int, list[int]]
    params: dict[str, Any]
    saliency_fn: Callable[[list[np.ndarray]], list[np.ndarray]]


def _search_base(i: int, inp: _SearchInputs) -> list[dict[str, Any]]:
    """Candidate rows of base image ``i`` (one task of :func:`search`)."""
    images, ids, base_maps, sem, params, saliency_fn = (inp.images, inp.ids, inp.base_maps, inp.sem, inp.params,
                                                        inp.saliency_fn)
    seed, n_place = params["seed"], params["n_placements"]
    lazy = params["selection_mode"] == "threshold"
    batch = max(1, params.get("saliency_batch_size", 32))
    js = inp.pairs[i]
    sim_max, dis_min = semantic_thresholds(params, sem[i, js]) if js else (math.nan, math.nan)
    cands = []
    for j in js:
        sclass = _classify(sem[i, j], sim_max, dis_min, ("similar", "dissimilar"))
        if not sclass:
            continue
        for p in range(n_place):
            box = paste_box(images[i].shape[:2], images[j].shape[:2], candidate_rng(seed, ids[i], ids[j], p))
            cands.append((j, p, box, sclass))
    found: set[str] = set()
    base_rows: list[dict[str, Any]] = []
    pos = 0
    while pos < len(cands):
        if lazy:
            needed = {RULES[c][0] for c in EDITED if c not in found}
            if not needed:
                break
            chunk = []
            while pos < len(cands) and len(chunk) < batch:
                if cands[pos][3] in needed:
                    chunk.append(cands[pos])
                pos += 1
        else:
            chunk, pos = cands[pos : pos + batch], pos + batch
        if not chunk:
            break
        edited = [paste(images[i], images[j], box) for j, _, box, _ in chunk]
        change = saliency_change(base_maps[i], np.stack(saliency_fn(edited)))
        for (j, p, box, sclass), d in zip(chunk, change):
            base_rows.append({"image_id": ids[i], "distractor_id": ids[j], "placement": p, "edge": box.edge,
                              "top": box.top, "left": box.left, "height": box.height, "width": box.width,
                              "sem_distance": float(sem[i, j]), "sem_similar_max": sim_max,
                              "sem_dissimilar_min": dis_min, "sem_class": sclass, "sal_change": float(d)})
            if lazy:
                sal = _classify(d, params["sal_little_max"], params["sal_alot_min"], ("little", "alot"))
                found.update(c for c, rule in RULES.items() if rule == (sclass, sal))
    low, high = _saliency_thresholds(params, np.array([r["sal_change"] for r in base_rows]))
    for r in base_rows:
        r.update(sal_little_max=low, sal_alot_min=high,
                 sal_class=_classify(r["sal_change"], low, high, ("little", "alot")))
    return base_rows


def search(
    images: Sequence[np.ndarray],
    ids: Sequence[str],
    embeddings: np.ndarray,
    base_maps: Sequence[np.ndarray],
    params: dict[str, Any],
    saliency_fn: Callable[[list[np.ndarray]], list[np.ndarray]],
    progress: bool = False,
    executor=None,
) -> tuple[pd.DataFrame, Thresholds]:
    """Evaluate candidates; return (candidates table with per-row thresholds and classes,
    summary thresholds: the constants, or in quantile mode the medians over bases).

    quantile mode: every semantically eligible candidate gets a saliency map; threshold
    mode: candidates are evaluated in order, in batches, only those that could fill a
    still-missing condition, and a base stops once all four conditions are found.
    Each base image is one task of ``executor`` (lib.executor; default this process)."""
    from lib.executor import InProcessExecutor

    lazy = params["selection_mode"] == "threshold"
    inputs = _SearchInputs(list(images), list(ids), list(base_maps), cosine_distance_matrix(np.asarray(embeddings)),
                           _pairs(ids, params.get("n_distractors")), dict(params), saliency_fn)
    executor = executor if executor is not None else InProcessExecutor()
    per_base = executor.map(_search_base, range(len(ids)), desc="distractor search", progress=progress,
                            shared=inputs)
    rows: list[dict[str, Any]] = [r for base_rows in per_base for r in base_rows]
    cand = pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)
    if lazy:
        th = Thresholds("threshold", params["sem_similar_max"], params["sem_dissimilar_min"],
                        params["sal_little_max"], params["sal_alot_min"])
    else:
        med = cand[["sem_similar_max", "sem_dissimilar_min", "sal_little_max", "sal_alot_min"]].median()
        th = Thresholds("quantile", *(float(med[k]) for k in ("sem_similar_max", "sem_dissimilar_min",
                                                               "sal_little_max", "sal_alot_min")))
    return cand, th


def select(candidates: pd.DataFrame, ids: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """First candidate per (base, condition) meeting both criteria (the ``sem_class`` and
    ``sal_class`` columns), in candidate order.

    Returns (chosen rows with a ``condition`` column, dropped bases with the reason)."""
    cand = candidates
    chosen, dropped = [], []
    groups = dict(tuple(cand.groupby("image_id", sort=False))) if len(cand) else {}
    for base in ids:
        g = groups.get(base)
        picks, missing = {}, []
        for cond, (sclass, salclass) in RULES.items():
            hit = None if g is None else g[(g["sem_class"] == sclass) & (g["sal_class"] == salclass)]
            if hit is None or hit.empty:
                missing.append(cond)
            else:
                picks[cond] = hit.iloc[0]
        if missing:
            dropped.append({"image_id": base, "missing": ", ".join(missing),
                            "n_candidates": 0 if g is None else len(g),
                            "reason": "no candidate met the criteria of " + ", ".join(missing)})
            continue
        for cond, row in picks.items():
            chosen.append({**row.to_dict(), "condition": cond})
    chosen_df = pd.DataFrame(chosen)
    dropped_df = pd.DataFrame(dropped, columns=["image_id", "missing", "n_candidates", "reason"])
    return chosen_df, dropped_df
