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
over bases left most bases of a small pool with no "little" or no "a lot" change. Within a
base the "little" and "a lot" ranges therefore never overlap; across bases they may, and the
manipulation check (:func:`lib.stimuli.checks.manipulation_violations`) counts by how much.
``max_distractor_reuse`` caps how many base images one distractor serves within a condition:
the images of a condition that share a pasted patch are pulled together in that condition's
RDM, which is what ΔRSA reads.

The candidate distractors form a :class:`DistractorPool`: the other base images (``bases``),
or, as the original ran, every COCO train2017 image, uncropped, in COCO's order
(``coco_train2017``, built in :mod:`lib.stimuli.sources`). The search is one independent task
per base image (:func:`search_one_base`), mapped over a thread pool and cached per base in the
artifact store, so an interrupted search resumes where it stopped.
"""

from __future__ import annotations

import functools
import math
import os
import zlib
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
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


def _place(H: int, W: int, h: int, w: int, rng: np.random.Generator) -> Box:
    """Flush to a random edge, at a random offset along it."""
    edge = EDGES[int(rng.integers(4))]
    if edge in ("left", "right"):
        top = int(rng.integers(0, H - h + 1))
        left = 0 if edge == "left" else W - w
    else:
        left = int(rng.integers(0, W - w + 1))
        top = 0 if edge == "top" else H - h
    return Box(top, left, h, w, edge)


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
    return _place(H, W, h, w, rng)


def paste_box_original(base_hw: tuple[int, int], distractor_hw: tuple[int, int], rng: np.random.Generator,
                       area_fraction: float = AREA_FRACTION) -> Box | None:
    """The original's arithmetic: h = int(sqrt(int(fraction * area) / aspect)), w = int(h * aspect),
    both floored; None when the distractor does not fit the base (the original skipped it)."""
    H, W = base_hw
    dh, dw = distractor_hw
    aspect = dw / dh
    h = int((int(H * W * area_fraction) / aspect) ** 0.5)
    w = int(h * aspect)
    if h < 1 or w < 1 or h > H or w > W:
        return None
    return _place(H, W, h, w, rng)


def paste(base: np.ndarray, distractor: np.ndarray, box: Box, geometry: str = "fitted") -> np.ndarray:
    """A copy of ``base`` with ``distractor`` resized into ``box`` (``original``: INTER_LINEAR,
    as cv2.resize's default; ``fitted``: area when shrinking, cubic when enlarging)."""
    out = base.copy()
    if geometry == "original":
        interp = cv2.INTER_LINEAR
    else:
        interp = cv2.INTER_AREA if distractor.shape[0] >= box.height else cv2.INTER_CUBIC
    out[box.top : box.top + box.height, box.left : box.left + box.width] = cv2.resize(
        distractor, (box.width, box.height), interpolation=interp)
    return out


def make_box(geometry: str, base_hw: tuple[int, int], distractor_hw: tuple[int, int],
             rng: np.random.Generator) -> Box | None:
    if geometry == "original":
        return paste_box_original(base_hw, distractor_hw, rng)
    if geometry == "fitted":
        return paste_box(base_hw, distractor_hw, rng)
    raise ValueError(f"paste_geometry must be 'original' or 'fitted', got {geometry!r}")


def candidate_rng(seed: int, base_id: str, distractor_id: str, placement: int) -> np.random.Generator:
    """The generator of one candidate placement: depends only on who and which, never on the
    order candidates are evaluated in (so lazy and exhaustive searches agree)."""
    return np.random.default_rng([seed, zlib.crc32(base_id.encode()), zlib.crc32(distractor_id.encode()), placement])


def cosine_distance_matrix(x: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, n) cosine distances (via lib.gram, the project's one RDM arithmetic)."""
    from lib.gram import features_gram, rdm_from_gram

    gram, _, _ = features_gram(x)
    return rdm_from_gram(gram, "cosine")


def cosine_distances_to(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine distance between the flattened ``a`` and each flattened row of ``b`` (k,)."""
    a = np.asarray(a).reshape(-1).astype(np.float64)
    b = np.asarray(b).reshape(len(b), -1).astype(np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (1.0 - (b @ a) / (nb * na)).astype(np.float64)


def saliency_change(base_map: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """Cosine distance between the flattened base map and each edited map (k,)."""
    return cosine_distances_to(base_map, np.asarray(maps))


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


# --- the pool of candidate distractors ---------------------------------------------------


@dataclass
class DistractorPool:
    """Candidate distractors in the order they are tried.

    ``load(j)`` gives pool image j's pixels, or None when it cannot be pasted (the original's
    paste failed on grayscale files); ``own_index[i]`` is base i's own place in the pool, never
    its own distractor. ``cache_key`` identifies the pool's content for the per-base caches."""

    ids: list[str]
    embeddings: np.ndarray
    load: Callable[[int], np.ndarray | None]
    own_index: list[int | None]
    cache_key: str
    semantic: np.ndarray | None = field(default=None, repr=False)  # (n_bases, n_pool), when precomputed

    def __len__(self) -> int:
        return len(self.ids)

    def distances(self, base: int, embedding: np.ndarray) -> np.ndarray:
        """Semantic distance of base ``base`` to every pool entry."""
        if self.semantic is not None:
            return self.semantic[base]
        return cosine_distances_to(embedding, self.embeddings)


def pool_of_bases(images: Sequence[np.ndarray], ids: Sequence[str], embeddings: np.ndarray) -> DistractorPool:
    """The other base images as candidates, in dataset order (this project's small-pool rule)."""
    from lib.store import make_key

    emb = np.asarray(embeddings)
    key = make_key("pool_of_bases", "1", {"ids": list(ids), "embeddings": emb,
                                          "images": [np.asarray(im) for im in images]})
    return DistractorPool(list(ids), emb, list(images).__getitem__, list(range(len(ids))), key,
                          semantic=cosine_distance_matrix(emb))


# --- thresholds and the space they belong to ---------------------------------------------


def check_threshold_space(params: dict[str, Any]) -> None:
    """Absolute thresholds belong to the space they were set in; refuse to apply them elsewhere.

    The paper's 0.32 / 0.92 are USE-v4 distances and its 0.019 / 0.24 are changes of
    R/B-swapped maps: applied to another caption model or colour order they select other
    images. Missing keys (a bare parameter dict) count as matching."""
    if params["selection_mode"] != "threshold":
        return
    if params["sal_little_max"] > params["sal_alot_min"] or params["sem_similar_max"] > params["sem_dissimilar_min"]:
        raise ValueError("threshold mode: sal_little_max must not exceed sal_alot_min, nor sem_similar_max "
                         "sem_dissimilar_min (the condition ranges would overlap)")
    model = params.get("caption_model")
    set_in = params.get("thresholds_caption_model", model)
    if model != set_in:
        raise ValueError(
            f"selection_mode=threshold: the semantic thresholds were set on {set_in} distances, but "
            f"caption_model={model}. Either choose thresholds per base from this model's distances "
            f"(-p selection_mode=quantile) or embed with the thresholds' model (-p caption_model={set_in})")
    swap, swap_set = params.get("swap_rb"), params.get("thresholds_swap_rb", params.get("swap_rb"))
    if swap != swap_set and params.get("saliency_threshold_transfer", "none") == "none":
        order = "R/B-swapped" if swap_set else "correct-colour"
        raise ValueError(
            f"selection_mode=threshold: the saliency thresholds were set on {order} maps, but "
            f"swap_rb={str(swap).lower()}. Either use -p selection_mode=quantile, or the thresholds' colour "
            f"order (-p swap_rb={str(swap_set).lower()}), or carry the thresholds over by quantile "
            "(-p saliency_threshold_transfer=quantile)")


def needs_transfer(params: dict[str, Any]) -> bool:
    return (params["selection_mode"] == "threshold" and params.get("saliency_threshold_transfer") == "quantile"
            and params.get("thresholds_swap_rb", params.get("swap_rb")) != params.get("swap_rb"))


def transfer_thresholds(change_source: np.ndarray, change_target: np.ndarray, low: float,
                        high: float) -> tuple[float, float]:
    """Carry absolute cuts from one measure to another over the same candidates: the fraction
    of candidates below ``low`` / above ``high`` on the source measure sets the quantiles
    that become the cuts on the target measure."""
    src, tgt = np.asarray(change_source, float), np.asarray(change_target, float)
    if src.shape != tgt.shape or src.size == 0:
        raise ValueError("threshold transfer needs the same, non-empty set of candidates in both measures")
    below, above = float(np.mean(src < low)), float(np.mean(src > high))
    return float(np.quantile(tgt, below)), float(np.quantile(tgt, 1.0 - above))


def semantic_thresholds(params: dict[str, Any], d: np.ndarray) -> tuple[float, float]:
    """(similar below, dissimilar above) for one base's distractor distances ``d``."""
    if params["selection_mode"] == "threshold":
        return params["sem_similar_max"], params["sem_dissimilar_min"]
    return float(np.quantile(d, params["quantile_low"])), float(np.quantile(d, params["quantile_high"]))


def _saliency_quantiles(params: dict[str, Any], change: np.ndarray) -> tuple[float, float]:
    if len(change) == 0:
        return math.nan, math.nan
    return float(np.quantile(change, params["quantile_low"])), float(np.quantile(change, params["quantile_high"]))


def _classify(d: float, low: float, high: float, names: tuple[str, str]) -> str:
    return names[0] if d < low else names[1] if d > high else ""


CANDIDATE_COLUMNS = ["image_id", "distractor_id", "placement", "edge", "top", "left", "height", "width",
                     "sem_distance", "sem_similar_max", "sem_dissimilar_min", "sem_class",
                     "sal_change", "sal_little_max", "sal_alot_min", "sal_class", "distractor_index"]
# hits kept per condition by the lazy search when distractor reuse is capped: the reserve the
# selection falls back on when a base's first hit is a distractor used up in that condition
RESERVE_HITS = 8
CALIBRATION_PER_BASE = 16  # candidates per base evaluated in both colour orders for a transfer


@dataclass
class BaseImage:
    """One base image as the search needs it (a picklable unit of work)."""

    index: int
    id: str
    image: np.ndarray
    saliency: np.ndarray
    embedding: np.ndarray


def _eligible(base: BaseImage, pool: DistractorPool, params: dict[str, Any]):
    """(semantic thresholds, [(pool index, class)] in pool order) of one base."""
    own = pool.own_index[base.index]
    js = np.array([j for j in range(len(pool)) if j != own][: params.get("n_distractors") or None], dtype=int)
    d = pool.distances(base.index, base.embedding)
    if len(js) == 0:
        return (math.nan, math.nan), [], d
    sim_max, dis_min = semantic_thresholds(params, d[js])
    cls = [(int(j), "similar" if d[j] < sim_max else "dissimilar") for j in js
           if d[j] < sim_max or d[j] > dis_min]
    return (sim_max, dis_min), cls, d


def _evaluate(base: BaseImage, pool: DistractorPool, chunk: list[tuple[int, int, str]], params: dict[str, Any],
              saliency_fn: Callable, loaded: dict[int, np.ndarray | None]):
    """Paste each (pool index, placement, class) of ``chunk``; skip what cannot be pasted.
    Returns [(j, p, sclass, box)], saliency changes."""
    geometry = params.get("paste_geometry", "fitted")
    todo, edited = [], []
    for j, p, sclass in chunk:
        if j not in loaded:
            if len(loaded) > 64:  # a small memo: the placements of one distractor come together
                loaded.clear()
            loaded[j] = pool.load(j)
        img = loaded[j]
        if img is None:
            continue
        box = make_box(geometry, base.image.shape[:2], img.shape[:2],
                       candidate_rng(params["seed"], base.id, pool.ids[j], p))
        if box is None:
            continue
        todo.append((j, p, sclass, box))
        edited.append(paste(base.image, img, box, geometry))
    if not edited:
        return [], np.zeros(0)
    return todo, saliency_change(base.saliency, np.stack(saliency_fn(edited)))


def search_one_base(base: BaseImage, pool: DistractorPool, params: dict[str, Any], saliency_fn: Callable,
                    sal_cuts: tuple[float, float] | None = None) -> pd.DataFrame:
    """Evaluate one base image's candidates; rows in candidate order with classes.

    Threshold mode (``sal_cuts`` = the absolute or transferred saliency cuts): candidates in
    order, in batches, only those that could still fill a condition, until every condition
    has its first hit (``RESERVE_HITS`` hits when reuse is capped). Quantile mode: every
    semantically eligible candidate, then the base's own saliency quantiles."""
    lazy = params["selection_mode"] == "threshold"
    (sim_max, dis_min), eligible, d = _eligible(base, pool, params)
    reserve = 1 if params.get("max_distractor_reuse") is None else RESERVE_HITS
    batch = max(1, params.get("saliency_batch_size", 32))
    n_place = params["n_placements"]
    cands = [(j, p, sclass) for j, sclass in eligible for p in range(n_place)]
    hits = {c: 0 for c in EDITED}
    rows: list[dict[str, Any]] = []
    loaded: dict[int, np.ndarray | None] = {}
    pos = 0
    while pos < len(cands):
        if lazy:
            needed = {RULES[c][0] for c in EDITED if hits[c] < reserve}
            if not needed:
                break
            chunk = []
            while pos < len(cands) and len(chunk) < batch:
                if cands[pos][2] in needed:
                    chunk.append(cands[pos])
                pos += 1
        else:
            chunk, pos = cands[pos : pos + batch], pos + batch
        if not chunk:
            break
        done, change = _evaluate(base, pool, chunk, params, saliency_fn, loaded)
        for (j, p, sclass, box), ch in zip(done, change):
            rows.append({"image_id": base.id, "distractor_id": pool.ids[j], "placement": p, "edge": box.edge,
                         "top": box.top, "left": box.left, "height": box.height, "width": box.width,
                         "sem_distance": float(d[j]), "sem_similar_max": sim_max, "sem_dissimilar_min": dis_min,
                         "sem_class": sclass, "sal_change": float(ch), "distractor_index": j})
            if lazy:
                sal = _classify(ch, sal_cuts[0], sal_cuts[1], ("little", "alot"))
                for c, rule in RULES.items():
                    if rule == (sclass, sal):
                        hits[c] += 1
    low, high = sal_cuts if lazy else _saliency_quantiles(params, np.array([r["sal_change"] for r in rows]))
    for r in rows:
        r.update(sal_little_max=low, sal_alot_min=high,
                 sal_class=_classify(r["sal_change"], low, high, ("little", "alot")))
    return pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)


STEP = "distractor_search_base"


def _cached(store, base: BaseImage, pool: DistractorPool, params: dict[str, Any], sal_cuts, compute) -> pd.DataFrame:
    """One base's search result through the artifact store (what makes a search resumable),
    keyed by the stimulus-set spec (saliency implementation included) and its code version."""
    if store is None:
        return compute()
    from lib.specs import StimulusSpec

    spec = StimulusSpec.from_params(params)
    inputs = {"base": base.id, "image": base.image, "saliency": base.saliency, "embedding": base.embedding,
              "pool": pool.cache_key, "sal_cuts": list(sal_cuts) if sal_cuts else None,
              "spec": spec.ingredients()}
    return store.get_or_compute(STEP, spec.version(), inputs, lambda: {"candidates": compute()})["candidates"]


def _search_cached(base: BaseImage, shared: tuple) -> pd.DataFrame:
    """One base image's search through the store (one task of :func:`search`; picklable)."""
    store, pool, params, saliency_fn, cuts = shared
    return _cached(store, base, pool, params, cuts, lambda: search_one_base(base, pool, params, saliency_fn, cuts))


def map_bases(fn: Callable[[BaseImage], pd.DataFrame], bases: Sequence[BaseImage], workers: int | None,
              progress: bool = False) -> list[pd.DataFrame]:
    """``fn`` over the base images, in a thread pool of ``workers`` (None = all cores); results
    in base order. Threads suffice: the saliency model (torch) and OpenCV release the GIL."""
    workers = max(1, min(len(bases) or 1, workers or os.cpu_count() or 1))
    bar = None
    if progress:
        from lib.progress import tqdm

        bar = tqdm(total=len(bases), desc="distractor search", unit="base image")
    out: list[pd.DataFrame | None] = [None] * len(bases)
    try:
        if workers == 1:
            for k, b in enumerate(bases):
                out[k] = fn(b)
                if bar is not None:
                    bar.update(1)
        else:
            with ThreadPoolExecutor(workers) as ex:
                futures = {ex.submit(fn, b): k for k, b in enumerate(bases)}
                for f in as_completed(futures):
                    out[futures[f]] = f.result()
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return out  # type: ignore[return-value]


def calibrate_transfer(bases: Sequence[BaseImage], pool: DistractorPool, params: dict[str, Any],
                       saliency_fn: Callable, source_fn: Callable) -> tuple[float, float]:
    """Saliency cuts for this run's colour order, carried over from the thresholds' colour
    order (``source_fn``) on the first ``CALIBRATION_PER_BASE`` eligible candidates of each base."""
    src_all, tgt_all = [], []
    for base in bases:
        _, eligible, _ = _eligible(base, pool, params)
        chunk = [(j, 0, sclass) for j, sclass in eligible[:CALIBRATION_PER_BASE]]
        done, tgt = _evaluate(base, pool, chunk, params, saliency_fn, {})
        if not done:
            continue
        src_base = BaseImage(base.index, base.id, base.image, source_fn([base.image])[0], base.embedding)
        _, src = _evaluate(src_base, pool, [(j, p, s) for j, p, s, _ in done], params, source_fn, {})
        src_all.append(src)
        tgt_all.append(tgt)
    if not src_all:
        raise ValueError("saliency_threshold_transfer=quantile: no candidate could be evaluated to calibrate on")
    return transfer_thresholds(np.concatenate(src_all), np.concatenate(tgt_all),
                               params["sal_little_max"], params["sal_alot_min"])


def search(
    images: Sequence[np.ndarray],
    ids: Sequence[str],
    embeddings: np.ndarray,
    base_maps: Sequence[np.ndarray],
    params: dict[str, Any],
    saliency_fn: Callable[[list[np.ndarray]], list[np.ndarray]],
    progress: bool = False,
    *,
    pool: DistractorPool | None = None,
    store=None,
    source_saliency_fn: Callable | None = None,
    executor=None,
) -> tuple[pd.DataFrame, Thresholds]:
    """Evaluate candidates; return (candidates table with per-row thresholds and classes,
    summary thresholds: the constants, or in quantile mode the medians over bases).

    ``pool``: the candidate distractors (default: the other base images). ``store``: cache each
    base's result (resumable). ``source_saliency_fn``: maps in the thresholds' colour order,
    needed when ``saliency_threshold_transfer=quantile`` carries the thresholds over.
    ``executor``: a Dask executor (lib.executor) runs one task per base image; otherwise a
    thread pool of ``search_workers`` does."""
    check_threshold_space(params)
    pool = pool if pool is not None else pool_of_bases(images, ids, embeddings)
    emb = np.asarray(embeddings)
    bases = [BaseImage(i, ids[i], images[i], np.asarray(base_maps[i]), emb[i]) for i in range(len(ids))]
    lazy = params["selection_mode"] == "threshold"
    cuts = (params["sal_little_max"], params["sal_alot_min"]) if lazy else None
    if needs_transfer(params):
        if source_saliency_fn is None:
            raise ValueError("saliency_threshold_transfer=quantile needs maps in the thresholds' colour order "
                             "(source_saliency_fn)")
        cuts = calibrate_transfer(bases, pool, params, saliency_fn, source_saliency_fn)
    shared = (store, pool, dict(params), saliency_fn, cuts)
    if executor is not None and executor.distributed:  # one task per base image on Dask
        frames = executor.map(_search_cached, bases, desc="distractor search", progress=progress, shared=shared)
    else:
        frames = map_bases(functools.partial(_search_cached, shared=shared), bases,
                           params.get("search_workers", 1), progress)
    frames = [f for f in frames if len(f)]
    cand = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CANDIDATE_COLUMNS)
    if lazy:
        th = Thresholds("threshold", params["sem_similar_max"], params["sem_dissimilar_min"], *cuts)
    else:
        med = cand[["sem_similar_max", "sem_dissimilar_min", "sal_little_max", "sal_alot_min"]].median()
        th = Thresholds("quantile", *(float(med[k]) for k in ("sem_similar_max", "sem_dissimilar_min",
                                                               "sal_little_max", "sal_alot_min")))
    return cand, th


def select(candidates: pd.DataFrame, ids: Sequence[str],
           max_reuse: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """First candidate per (base, condition) meeting both criteria (the ``sem_class`` and
    ``sal_class`` columns), in candidate order; bases in ``ids`` order.

    ``max_reuse``: a distractor already chosen for that many base images in a condition is
    passed over there (the next hit is taken); a base missing a condition is dropped and its
    picks do not count. Returns (chosen rows with a ``condition`` column, dropped bases with
    the reason)."""
    cand = candidates
    chosen, dropped = [], []
    used: dict[tuple[str, str], int] = {}
    groups = dict(tuple(cand.groupby("image_id", sort=False))) if len(cand) else {}
    for base in ids:
        g = groups.get(base)
        picks, missing, capped = {}, [], []
        for cond, (sclass, salclass) in RULES.items():
            hit = None if g is None else g[(g["sem_class"] == sclass) & (g["sal_class"] == salclass)]
            if hit is not None and max_reuse is not None and not hit.empty:
                free = hit[[used.get((cond, d), 0) < max_reuse for d in hit["distractor_id"]]]
                if free.empty:
                    capped.append(cond)
                hit = free
            if hit is None or hit.empty:
                missing.append(cond)
            else:
                picks[cond] = hit.iloc[0]
        if missing:
            reason = "no candidate met the criteria of " + ", ".join(c for c in missing if c not in capped)
            if capped:
                reason = (reason + "; " if len(capped) < len(missing) else "") + (
                    f"every hit of {', '.join(capped)} uses a distractor already chosen "
                    f"{max_reuse} times in that condition (max_distractor_reuse)")
            dropped.append({"image_id": base, "missing": ", ".join(missing),
                            "n_candidates": 0 if g is None else len(g), "reason": reason})
            continue
        for cond, row in picks.items():
            used[(cond, row["distractor_id"])] = used.get((cond, row["distractor_id"]), 0) + 1
            chosen.append({**row.to_dict(), "condition": cond})
    chosen_df = pd.DataFrame(chosen)
    dropped_df = pd.DataFrame(dropped, columns=["image_id", "missing", "n_candidates", "reason"])
    return chosen_df, dropped_df
