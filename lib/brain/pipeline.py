"""The brain chapter's steps, each cached: image set, reference RDMs, ROI RDMs, model RSA.

Data flow: subjects (Algonauts release, or synthetic subjects written for the stimulus
set's Baseline images) -> the images every subject saw, in NSD-id order -> saliency maps
(Itti-Koch on *those* images, i.e. the NSD crops the subjects saw; the original used the
uncropped COCO images here) and caption embeddings -> reference RDMs; ROI RDMs; every
model layer's RDM on the same images (the extraction engine) -> RSA tables.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lib.brain.algonauts import AlgonautsError, BrainData, fmri_path, load_algonauts, load_images, mapping_path
from lib.brain.analysis import (best_layers, cross_layer_link, model_brain_rsa, noise_ceilings, planted_recovery,
                                reference_rsa, summarise_layers)
from lib.brain.rois import RoiRdms, roi_rdms
from lib.brain.synthetic import planted_table, write_synthetic_algonauts

VERSION = "1"
SYNTHETIC_SCALE = 0.05  # vertex counts relative to the release (demo: ~1,000 per hemisphere)
NSD_TABLE = "nsd_stim_info_merged.csv"


@dataclass
class BrainSet:
    """The fMRI subjects and the images all of them saw (NSD-id order)."""

    data: BrainData
    cache_key: str
    synthetic: bool
    captions: dict[str, list[str]]
    planted: pd.DataFrame | None = None
    _images: list[np.ndarray] | None = field(default=None, repr=False)

    @property
    def nsd_ids(self) -> np.ndarray:
        return self.data.nsd_ids

    @property
    def ids(self) -> list[str]:
        return [f"nsd-{int(v):05d}" for v in self.data.nsd_ids]

    def images(self) -> list[np.ndarray]:
        """The PNGs the subjects saw (the release's images are NSD's crops)."""
        if self._images is None:
            self._images = load_images(self.data.image_paths)
        return self._images


def _folder_key(root: Path, subjects: list[int]) -> str:
    """Identity of a release folder: paths, sizes and modification times of its files."""
    h = hashlib.sha256(str(root.resolve()).encode())
    for s in subjects:
        for hemi in ("lh", "rh"):
            p = fmri_path(root, s, hemi)
            if p.is_file():
                st = p.stat()
                h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
        m = mapping_path(root, s, "streams").parent
        if m.is_dir():
            for q in sorted(m.iterdir()):
                st = q.stat()
                h.update(f"{q.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def synthetic_root(params: dict[str, Any], store=None, progress: bool = True) -> tuple[Path, dict[str, list[str]]]:
    """Write (once, atomically) synthetic subjects for the stimulus set's Baseline images."""
    from lib.stimuli import build_stimulus_set
    from lib.store import make_key, store_for

    store = store if store is not None else store_for(params)
    ss = build_stimulus_set(params, store=store, progress=progress)
    n = len(ss.ids)
    nsd = np.sort(np.random.default_rng(params["seed"]).choice(73000, n, replace=False))
    inputs = {"stimuli": ss, "subjects": list(params["subjects"]), "noise": params["synthetic_noise"],
              "seed": params["seed"], "scale": SYNTHETIC_SCALE}
    key = make_key("brain-synthetic", VERSION, inputs)
    root = store.root / "brain-synthetic" / key
    captions = {f"nsd-{int(v):05d}": list(ss.captions[i]) for v, i in zip(nsd, ss.ids)}
    if not (root / "synthetic.json").is_file() or store.force_before is not None and not root.exists():
        tmp = root.parent / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        try:
            structures = {k: ss.reference_rdm(k).get_matrices()[0] for k in ("saliency", "semantic")}
            write_synthetic_algonauts(tmp, ss.images("Baseline"), nsd, structures, subjects=params["subjects"],
                                      noise=params["synthetic_noise"], seed=params["seed"], scale=SYNTHETIC_SCALE,
                                      coco_ids=None)
            with open(tmp / "captions.json", "w") as fh:
                json.dump({"stimulus_ids": list(ss.ids), "nsd_ids": nsd.tolist()}, fh)
            if root.exists():
                shutil.rmtree(root)
            tmp.rename(root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return root, captions


def nsd_table_path(params: dict[str, Any]) -> Path:
    """Where the NSD stimulus table is looked for: the stimuli's place (data_dir/nsd/), then
    the Algonauts folder."""
    from lib.config import resolve_path
    from lib.stimuli.sources import NSD_TABLE

    candidates = [resolve_path(params["data_dir"]) / NSD_TABLE,
                  resolve_path(params["algonauts_dir"]) / Path(NSD_TABLE).name]
    for c in candidates:
        if c.is_file():
            return c
    raise AlgonautsError(
        f"the NSD stimulus table {Path(NSD_TABLE).name} was not found (looked in {', '.join(map(str, candidates))}). "
        "It maps NSD ids to COCO ids; get it with `python -m lib fetch coco-nsd --profile paper` or from the NSD "
        "release (nsddata/experiments/nsd/nsd_stim_info_merged.csv)")


def coco_captions(params: dict[str, Any], nsd_ids: np.ndarray) -> dict[str, list[str]]:
    """Captions of the COCO images behind NSD ids (NSD table -> COCO id -> COCO captions),
    read with the stimulus module's readers."""
    from lib.config import resolve_path
    from lib.stimuli.sources import COCO_CAPTIONS, read_nsd_stim_info
    from lib.stimuli.sources import coco_captions as read_coco_captions

    path = nsd_table_path(params)
    table = read_nsd_stim_info(path).set_index("nsdId")
    absent = [int(v) for v in nsd_ids if int(v) not in table.index]
    if absent:
        raise AlgonautsError(f"NSD ids {absent[:10]} ({len(absent)} in all) of the Algonauts images are not in {path}; "
                             "use the complete nsd_stim_info_merged.csv of the NSD release")
    rows = table.loc[[int(v) for v in nsd_ids]]
    by_coco: dict[int, list[str]] = {}
    for split in sorted(rows["cocoSplit"].unique()):
        f = resolve_path(params["data_dir"]) / COCO_CAPTIONS.format(split=split)
        if not f.is_file():
            raise AlgonautsError(f"COCO caption file {f} not found; python -m lib fetch coco-nsd --profile paper")
        by_coco.update(read_coco_captions(f))
    out = {}
    for v, cid in zip(nsd_ids, rows["cocoId"]):
        if int(cid) not in by_coco:
            raise AlgonautsError(f"no COCO captions for COCO id {int(cid)} (NSD id {int(v)}) in the COCO caption files")
        out[f"nsd-{int(v):05d}"] = by_coco[int(cid)]
    return out


def brain_set(params: dict[str, Any], store=None, progress: bool = True) -> BrainSet:
    """Subjects and images for ``params['brain_source']`` (synthetic or algonauts)."""
    from lib.config import resolve_path

    if len(set(params["subjects"])) < 2:
        raise ValueError(f"the brain analysis needs at least 2 subjects (noise ceilings, group statistics); got "
                         f"subjects={params['subjects']}. Set e.g. -p subjects=[1,2,3,4,5,6,8]")
    if params["brain_source"] == "synthetic":
        root, captions = synthetic_root(params, store, progress)
        data = load_algonauts(root, params["subjects"])
        return BrainSet(data, f"synthetic/{root.name}", True, captions, planted_table(root))
    root = resolve_path(params["algonauts_dir"])
    data = load_algonauts(root, params["subjects"])
    return BrainSet(data, f"algonauts/{_folder_key(root, params['subjects'])}", False,
                    coco_captions(params, data.nsd_ids))


def brain_references(bs: BrainSet, params: dict[str, Any], store=None, progress: bool = True) -> dict[str, np.ndarray]:
    """Saliency and semantic RDM vectors of the brain image set (NSD-id order)."""
    from lib.config import pick_device
    from lib.store import store_for
    from lib.stimuli.captions import embed_captions
    from lib.stimuli.references import saliency_rdm, semantic_rdm
    from lib.stimuli.saliency import itti_koch

    store = store if store is not None else store_for(params)

    def compute() -> dict[str, Any]:
        maps = itti_koch(bs.images(), swap_rb=params["swap_rb"], device=pick_device(params["device"]),
                         batch_size=params["saliency_batch_size"], progress=progress)
        emb = embed_captions(bs.captions, params["caption_model"], store=store)
        return {"saliency": saliency_rdm(list(maps), bs.ids).dissimilarities[0],
                "semantic": semantic_rdm(emb, bs.ids).dissimilarities[0]}

    inputs = {"set": bs.cache_key, "swap_rb": params["swap_rb"], "caption_model": params["caption_model"]}
    out = store.get_or_compute("brain-references", VERSION, inputs, compute)
    return {"saliency": np.asarray(out["saliency"]), "semantic": np.asarray(out["semantic"])}


def brain_roi_rdms(bs: BrainSet, params: dict[str, Any], store=None, progress: bool = True,
                   executor=None) -> RoiRdms:
    from lib.store import store_for

    store = store if store is not None else store_for(params)
    inputs = {"set": bs.cache_key, "subjects": list(params["subjects"]), "mode": params["roi_rdm_mode"]}
    out = store.get_or_compute("brain-roi-rdms", VERSION, inputs,
                               lambda: roi_rdms(bs.data, params["roi_rdm_mode"], progress=progress,
                                                executor=executor).to_store())
    return RoiRdms.from_store(out)


def model_tables(bs: BrainSet, roi: RoiRdms, refs: dict[str, np.ndarray], params: dict[str, Any], store=None,
                 progress: bool = True, executor=None) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Every model layer x ROI x subject RSA, each layer's saliency/semantic RSA, and the
    weights each model ran with. On a Dask executor the extractions run on the workers first."""
    from functools import partial

    from lib.extract import ExtractionTask, extract_rdms, precompute, release_models
    from lib.store import store_for

    store = store if store is not None else store_for(params)
    key = f"brain/{bs.cache_key}"
    precompute([ExtractionTask(m, partial(load_images, list(bs.data.image_paths)), key, tuple(bs.ids))
                for m in params["models"]], params, store=store, executor=executor,
               progress=progress)
    brains, layer_refs, weights = [], [], {}
    for model in params["models"]:
        rdms = extract_rdms(model, bs.images, images_key=key, params=params, store=store,
                            progress=progress, ids=bs.ids)
        weights[model] = rdms.descriptors["engine"]["weights"]
        release_models()
        inputs = {"layers": np.ascontiguousarray(rdms.dissimilarities), "set": bs.cache_key,
                  "subjects": list(params["subjects"]), "mode": params["roi_rdm_mode"],
                  "refs": {k: np.asarray(v) for k, v in refs.items()}}

        def compute(rdms=rdms) -> dict[str, Any]:
            b, lr = model_brain_rsa(rdms, roi, refs)
            return {"brain": b, "layer_ref": lr}

        out = store.get_or_compute("brain-model-rsa", VERSION, inputs, compute)
        brains.append(out["brain"].assign(model=model))
        layer_refs.append(out["layer_ref"].assign(model=model))
    return pd.concat(brains, ignore_index=True), pd.concat(layer_refs, ignore_index=True), weights


@dataclass
class BrainResults:
    """Everything the brain chapter shows."""

    bs: BrainSet
    roi: RoiRdms
    refs: dict[str, np.ndarray]
    nc: pd.DataFrame
    ref_per_subject: pd.DataFrame
    ref_summary: pd.DataFrame
    brain: pd.DataFrame          # layer x ROI x subject
    layer_summary: pd.DataFrame  # layer x ROI: mean, sem, noise ceiling
    best: pd.DataFrame
    layer_ref: pd.DataFrame      # per layer: saliency and semantic RSA on the brain images
    layer_brain: pd.Series       # per layer: mean brain RSA over ROIs (All vertices excluded) and subjects
    link: pd.DataFrame
    fits: dict
    recovery: pd.DataFrame | None
    weights: dict[str, str] = field(default_factory=dict)  # model -> weights the engine used


def run(params: dict[str, Any], store=None, progress: bool = True) -> BrainResults:
    """The whole brain analysis for a profile."""
    from lib.store import store_for

    from lib.executor import executor_for

    store = store if store is not None else store_for(params)
    bs = brain_set(params, store, progress)
    refs = brain_references(bs, params, store, progress)
    with executor_for(params) as executor:
        roi = brain_roi_rdms(bs, params, store, progress, executor=executor)
        nc = noise_ceilings(roi, params["noise_ceiling"])
        per, summary = reference_rsa(roi, refs, nc)
        brain, layer_ref, weights = model_tables(bs, roi, refs, params, store, progress, executor=executor)
    lsum = summarise_layers(brain, nc)
    best = best_layers(lsum)
    keys = [c for c in ("model", "layer", "call_index", "depth") if c in brain.columns]
    per_layer = (lsum[lsum.roi != "All vertices"].groupby(keys, sort=False)["mean"].mean()
                 .reindex(pd.MultiIndex.from_frame(layer_ref[keys])))
    link, fits = cross_layer_link(layer_ref, per_layer.to_numpy(), n_bootstrap=params["n_bootstrap"],
                                  alpha=params["alpha"], seed=params["seed"])
    recovery = planted_recovery(roi, refs, bs.planted) if bs.planted is not None else None
    return BrainResults(bs, roi, refs, nc, per, summary, brain, lsum, best, layer_ref,
                        pd.Series(per_layer.to_numpy(), index=layer_ref.index), link, fits, recovery, weights)


__all__ = ["BrainSet", "BrainResults", "brain_set", "brain_references", "brain_roi_rdms", "model_tables", "run",
           "synthetic_root", "coco_captions", "nsd_table_path"]
