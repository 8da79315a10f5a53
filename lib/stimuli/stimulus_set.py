"""The persisted stimulus set: base images, their four edited versions, metadata, saliency
maps, caption embeddings, and the two reference RDMs.

Built once per set of ingredients and kept in the artifact store; the key is the
:class:`lib.specs.StimulusSpec` (every selection parameter, the saliency implementation,
the caption model, the code version) plus the source's files by content hash (memoised by
path, size and mtime), so a cache hit does not even decode the images.
"""

from __future__ import annotations

import json
import time
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lib.stimuli.distractors import CONDITIONS, Box, paste, search, select

META_COLUMNS = ["image_id", "condition", "distractor_id", "placement", "edge", "top", "left", "height", "width",
                "sem_distance", "sal_change", "sem_similar_max", "sem_dissimilar_min", "sal_little_max",
                "sal_alot_min", "seed"]


def source_fingerprint(params: dict[str, Any]) -> dict[str, Any]:
    """What identifies the source's content without decoding it: every file it reads, by
    content hash (memoised by path + size + mtime, so warm runs read nothing)."""
    from lib.config import resolve_path
    from lib.specs import file_digest, files_digest
    from lib.stimuli import sources

    src = params["source"]
    memo = resolve_path(params["cache_dir"])
    fp: dict[str, Any] = {"source": src}
    if src == "demo":
        fp["captions"] = file_digest(sources.DEMO_CAPTIONS, memo)
        fp["size"] = sources.DEMO_SIZE
        fp["photos"] = list(sources.DEMO_PHOTOS)
        fp["packages"] = {p: importlib_metadata.version(p) for p in ("scikit-image", "scikit-learn", "matplotlib")}
    elif src == "folder":
        folder = resolve_path(params["folder_path"] or ".")
        fp["files"] = files_digest((p for p in sorted(folder.iterdir()) if p.is_file()), memo_dir=memo) \
            if folder.is_dir() else []
    else:
        root = resolve_path(params["data_dir"])
        table = root / sources.NSD_TABLE
        fp["table"] = file_digest(table, memo) if table.is_file() else None
        ann = root / "coco" / "annotations"
        fp["captions"] = files_digest(sorted(ann.glob("captions_*.json")), memo_dir=memo) if ann.is_dir() else []
        fp["images"] = _coco_image_digests(root, table, params, memo) if table.is_file() else []
    return fp


def _coco_image_digests(root: Path, table: Path, params: dict[str, Any], memo: Path) -> list:
    """Content hashes of the COCO images the profile selects (only those: COCO is 19 GB)."""
    from lib.specs import files_digest
    from lib.stimuli import sources

    rows = sources.select_nsd_rows(sources.read_nsd_stim_info(table), params["nsd_shared1000"], params["n_images"])
    paths = [root / sources.COCO_IMAGE.format(split=split, coco_id=int(coco_id))
             for split, coco_id in zip(rows["cocoSplit"], rows["cocoId"])]
    return files_digest([p for p in paths if p.is_file()], root, memo) + [[str(p), None] for p in paths
                                                                          if not p.is_file()]


class StimulusSet:
    """A built stimulus set. ``cache_key`` identifies its content for downstream caches.

    ``params`` / ``store``: what references that run a network (clip_text) need; the
    saliency and semantic references come from the stored maps and embeddings."""

    def __init__(self, values: dict[str, Any], cache_key: str, params: dict[str, Any] | None = None, store=None):
        self.cache_key = cache_key
        self.ids: list[str] = list(values["ids"])
        self.captions: dict[str, list[str]] = {k: list(values["captions"][k]) for k in self.ids}
        self.embeddings: np.ndarray = np.asarray(values["embeddings"], np.float32)
        self.metadata: pd.DataFrame = values["metadata"]
        self.dropped: pd.DataFrame = values["dropped"]
        self.candidates: pd.DataFrame = values["candidates"]
        self.thresholds: dict[str, Any] = values["thresholds"]
        self.info: dict[str, Any] = values["info"]
        self.pool_ids: list[str] = list(values["pool_ids"])
        self.pool_semantic: np.ndarray = np.asarray(values["pool_semantic"])
        self.params = dict(params or {})
        self.store = store
        self._values = values
        self._rdms: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"StimulusSet({len(self.ids)} base images x {len(CONDITIONS)} conditions, key={self.cache_key})"

    def _check(self, condition: str) -> None:
        if condition not in CONDITIONS:
            raise ValueError(f"unknown condition {condition!r}; one of {list(CONDITIONS)}")

    def images(self, condition: str) -> list[np.ndarray]:
        """uint8 (H, W, 3) images of a condition, one per id, ids order."""
        self._check(condition)
        v = self._values.get(f"images_{condition}") or []
        return list(v)

    def saliency(self, condition: str) -> list[np.ndarray]:
        """float32 (H, W) saliency maps in [0, 1] of a condition, ids order."""
        self._check(condition)
        v = self._values.get(f"saliency_{condition}") or []
        return [np.asarray(m, np.float32) for m in v]

    def image_set(self, condition: str = "Baseline"):
        """The images of one condition as an :class:`lib.image_set.ImageSet` (key
        ``<set key>/<condition>``). References are computed on Baseline images only."""
        from lib.image_set import ImageSet

        self._check(condition)
        return ImageSet(self.ids, f"{self.cache_key}/{condition}", self.captions, lambda: self.images(condition),
                        lambda: self.saliency(condition),
                        (lambda: self.embeddings) if condition == "Baseline" else None)

    def reference_rdm(self, kind: str):
        """A registered reference's RDM on the Baseline images (rsatoolbox RDMs, one RDM,
        ``image_id`` pattern descriptors)."""
        from lib.references import REGISTRY, reference_rdm

        if kind not in REGISTRY:
            raise ValueError(f"unknown reference {kind!r}; registered: {list(REGISTRY)}")
        if kind not in self._rdms:
            params = {"weights": "auto", "seed": 0, **self.params}
            self._rdms[kind] = reference_rdm(kind, self.image_set("Baseline"), params, self.store)
        return self._rdms[kind]

    def reference_rdms(self, names=None) -> dict[str, Any]:
        """The enabled references' RDMs (``params['references']``, default saliency + semantic)."""
        from lib.references import enabled

        return {k: self.reference_rdm(k) for k in (names if names is not None else enabled(self.params))}

    def confound(self, n_bootstrap: int = 1000, n_permutations: int = 1000, seed: int = 0,
                 alpha: float = 0.05, a: str = "saliency", b: str = "semantic") -> dict[str, float]:
        """Spearman ρ between two reference RDMs (the paper's confound: saliency vs
        semantics) with bootstrap CI and permutation p."""
        from lib.stimuli.references import rdm_confound

        return rdm_confound(self.reference_rdm(a), self.reference_rdm(b), n_bootstrap, n_permutations, seed, alpha)


def _saliency_fn(params: dict[str, Any]):
    from lib.config import pick_device
    from lib.stimuli.saliency import itti_koch

    device = pick_device(params.get("device", "auto"))

    def fn(images: list[np.ndarray]) -> list[np.ndarray]:
        return itti_koch(list(images), swap_rb=params["swap_rb"], device=device,
                         batch_size=params.get("saliency_batch_size", 32))

    return fn


def _build(params: dict[str, Any], store, progress: bool) -> dict[str, Any]:
    from lib.stimuli.captions import embed_captions
    from lib.stimuli.sources import distractor_pool, load_source

    t0 = time.perf_counter()
    items = load_source(params)
    if len(items) < 3:
        raise ValueError(f"the source gave {len(items)} base images; at least 3 are needed")
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        raise ValueError("the source has duplicate image ids")
    images = [it.image for it in items]
    captions = {it.id: it.captions for it in items}
    t_load = time.perf_counter() - t0
    emb = embed_captions(captions, params["caption_model"], store, device="cpu", progress=False)
    t_emb = time.perf_counter() - t0 - t_load
    sal = _saliency_fn(params)
    base_maps = sal(images)
    t1 = time.perf_counter()
    pool = distractor_pool(params, items, emb, store)
    source_sal = _saliency_fn({**params, "swap_rb": params.get("thresholds_swap_rb", params["swap_rb"])})
    from lib.executor import executor_for

    with executor_for(params) as executor:  # in process, or one task per base image on Dask
        cand, th = search(images, ids, emb, base_maps, params, sal, progress=progress, pool=pool, store=store,
                          source_saliency_fn=source_sal, executor=executor)
    t_search = time.perf_counter() - t1
    chosen, dropped = select(cand, ids, params.get("max_distractor_reuse"))
    index = {k: i for i, k in enumerate(ids)}
    kept = [k for k in ids if k not in set(dropped["image_id"])]
    values: dict[str, Any] = {}
    meta_rows = []
    for cond in CONDITIONS:
        imgs = []
        for k in kept:
            i = index[k]
            if cond == "Baseline":
                imgs.append(images[i])
                meta_rows.append({"image_id": k, "condition": cond, "distractor_id": None, "seed": params["seed"],
                                  "sal_change": 0.0})
                continue
            row = chosen[(chosen["image_id"] == k) & (chosen["condition"] == cond)].iloc[0]
            box = Box(int(row["top"]), int(row["left"]), int(row["height"]), int(row["width"]), row["edge"])
            imgs.append(paste(images[i], pool.load(int(row["distractor_index"])), box,
                              params.get("paste_geometry", "fitted")))
            meta_rows.append({**{c: row[c] for c in META_COLUMNS if c in row}, "seed": params["seed"]})
        maps = [base_maps[index[k]] for k in kept] if cond == "Baseline" else (sal(imgs) if imgs else [])
        values[f"images_{cond}"] = imgs
        # Baseline maps (the reference) kept in float32; edited ones in float16 to halve the store
        values[f"saliency_{cond}"] = [np.asarray(m, np.float32 if cond == "Baseline" else np.float16) for m in maps]
    meta = pd.DataFrame(meta_rows).reindex(columns=META_COLUMNS)
    for c in ("placement", "top", "left", "height", "width"):
        meta[c] = meta[c].astype("Int64")
    values.update({
        "ids": kept,
        "captions": {k: captions[k] for k in kept},
        "embeddings": emb[[index[k] for k in kept]] if kept else np.zeros((0, emb.shape[1]), np.float32),
        "metadata": meta,
        "dropped": dropped,
        "candidates": cand,
        "thresholds": th.as_dict(),
        "pool_ids": ids,
        "pool_semantic": _pool_semantic(emb),
        "info": {"n_pool": len(ids), "n_distractor_pool": len(pool), "n_kept": len(kept), "n_dropped": len(dropped),
                 "n_candidate_maps": int(len(cand)), "seconds_load": round(t_load, 2),
                 "seconds_embed": round(t_emb, 2), "seconds_search": round(t_search, 2),
                 "seconds_total": round(time.perf_counter() - t0, 2)},
    })
    return values


def _pool_semantic(emb: np.ndarray) -> np.ndarray:
    from lib.stimuli.distractors import cosine_distance_matrix

    return cosine_distance_matrix(emb).astype(np.float32)


def build_stimulus_set(params: dict[str, Any], store=None, progress: bool = True) -> StimulusSet:
    """Build (or load from the artifact store) the profile's stimulus set."""
    from lib.specs import StimulusSpec
    from lib.store import store_for

    store = store or store_for(params)
    spec = StimulusSpec.from_params(params)
    inputs = {"source": source_fingerprint(params)}
    values = spec.get_or_compute(store, inputs, lambda: _build(params, store, progress))
    if not values.get("ids"):
        raise ValueError("every base image was dropped (no candidate met the criteria); see the dropped table. "
                         "Try selection_mode=quantile, more n_placements or more images")
    return StimulusSet(values, spec.key(**inputs), params, store)


def describe_conditions() -> pd.DataFrame:
    """The design table of the five conditions."""
    from lib.stimuli.distractors import RULES

    rows = [{"condition": "Baseline", "distractor is semantically": "(no distractor)", "saliency change": "–"}]
    rows += [{"condition": c, "distractor is semantically": s, "saliency change": "a lot" if a == "alot" else a}
             for c, (s, a) in RULES.items()]
    return pd.DataFrame(rows)


def to_json(values: dict[str, Any]) -> str:  # pragma: no cover - debugging aid
    return json.dumps({k: v for k, v in values.items() if isinstance(v, (str, int, float, dict))}, default=str)
