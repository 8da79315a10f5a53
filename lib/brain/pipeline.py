"""The brain chapter's steps, each cached: image set, reference RDMs, ROI RDMs, model RSA.

Data flow: subjects (Algonauts release, or synthetic subjects written for the stimulus
set's Baseline images) -> the images every subject saw, in NSD-id order -> saliency maps
(Itti-Koch on *those* images, i.e. the NSD crops the subjects saw; the original used the
uncropped COCO images here) and caption embeddings -> reference RDMs; ROI RDMs; every
model layer's RDM on the same images (the extraction engine) -> RSA tables.

Each step's key is its spec in :mod:`lib.specs` plus the keys of its inputs; the release
folder enters by content (fMRI, masks, images, NSD table, captions). Images are named
``nsd-00013`` on both sides, ids travel with the RDMs, and every comparison checks that
they line up (:func:`lib.image_set.check_aligned`), never just that the lengths agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lib.brain.algonauts import (AlgonautsError, BrainData, fmri_path, images_dir, load_algonauts, load_images,
                                 mapping_path)
from lib.brain.analysis import (best_layers, cross_layer_link, model_brain_rsa, noise_ceilings, planted_recovery,
                                reference_rsa, summarise_layers)
from lib.brain.rois import RoiRdms, roi_rdms
from lib.brain.synthetic import STRUCTURES, planted_table, write_synthetic_algonauts
from lib.image_set import ImageSet, check_aligned, nsd_image_id, rdm_ids
from lib.specs import (BrainModelRsaSpec, BrainReferencesSpec, BrainRoiSpec, BrainSetSpec, SyntheticSpec,
                       files_digest)

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
        return [nsd_image_id(v) for v in self.data.nsd_ids]

    def images(self) -> list[np.ndarray]:
        """The PNGs the subjects saw (the release's images are NSD's crops)."""
        if self._images is None:
            self._images = load_images(self.data.image_paths)
        return self._images

    def image_set(self, params: dict[str, Any], store=None, progress: bool = False) -> ImageSet:
        """The images as an :class:`ImageSet`: saliency maps (Itti–Koch on these very crops,
        with the profile's device; on the uncropped COCO images where ``brain_saliency_crop``
        asks for the original's choice) and caption embeddings computed on demand."""
        from lib.config import pick_device
        from lib.stimuli.captions import embed_captions
        from lib.stimuli.saliency import itti_koch
        from lib.stimuli.sources import uncropped_nsd_images

        def maps() -> list[np.ndarray]:
            uncropped = params["brain_saliency_crop"] == "uncropped" and not self.synthetic
            images = uncropped_nsd_images(params, self.nsd_ids) if uncropped else self.images()
            return list(itti_koch(images, swap_rb=params["swap_rb"], device=pick_device(params["device"]),
                                  batch_size=params["saliency_batch_size"], progress=progress))

        def embeddings() -> np.ndarray:
            return embed_captions({i: self.captions[i] for i in self.ids}, params["caption_model"], store=store)

        return ImageSet(self.ids, f"brain/{self.cache_key}", self.captions, self.images, maps, embeddings)


def _folder_key(root: Path, subjects: list[int], memo_dir: Path | None = None) -> dict[str, Any]:
    """Identity of a release folder's content for these subjects: every fMRI, mask and
    mapping file and every training image, by content hash (memoised by path, size and
    mtime, so a warm run reads nothing)."""
    out: dict[str, Any] = {}
    for s in subjects:
        files = [p for hemi in ("lh", "rh") for p in [fmri_path(root, s, hemi)] if p.is_file()]
        m = mapping_path(root, s, "streams").parent
        if m.is_dir():
            files += sorted(q for q in m.iterdir() if q.is_file())
        images = sorted(images_dir(root, s).glob("*.png")) if images_dir(root, s).is_dir() else []
        out[f"subj{s:02d}"] = files_digest(files + images, root, memo_dir)
    return out


SYNTHETIC_HOWTO = ("These are synthetic subjects written by this project (brain_source=synthetic); rerun with "
                   "-p force=true to rebuild them.")


def synthetic_root(params: dict[str, Any], store=None, progress: bool = True) -> tuple[Path, dict[str, list[str]]]:
    """Synthetic subjects for the stimulus set's Baseline images, written once into the
    artifact store (checksummed, verified on every use, rebuilt when damaged or forced)."""
    from lib.references import REGISTRY
    from lib.stimuli import build_stimulus_set
    from lib.store import store_for

    store = store if store is not None else store_for(params)
    ss = build_stimulus_set(params, store=store, progress=progress)
    n = len(ss.ids)
    nsd = np.sort(np.random.default_rng(params["seed"]).choice(73000, n, replace=False))
    spec = SyntheticSpec.from_params(params)
    planted = [k for k in STRUCTURES if k in REGISTRY]  # the registered references the generator plants
    captions = {nsd_image_id(v): list(ss.captions[i]) for v, i in zip(nsd, ss.ids)}

    def write(folder: Path) -> None:
        structures = {k: ss.reference_rdm(k).get_matrices()[0] for k in planted}
        write_synthetic_algonauts(folder, ss.images("Baseline"), nsd, structures, subjects=list(spec.subjects),
                                  noise=spec.noise, seed=spec.seed, scale=spec.scale, coco_ids=None)
        with open(folder / "captions.json", "w") as fh:
            json.dump({"stimulus_ids": list(ss.ids), "nsd_ids": nsd.tolist()}, fh)

    root = spec.get_or_compute_folder(store, {"stimuli": ss.cache_key, "planted": planted}, write)
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
        out[nsd_image_id(v)] = by_coco[int(cid)]
    return out


def captions_fingerprint(params: dict[str, Any], nsd_ids: np.ndarray, memo_dir: Path | None = None) -> dict:
    """Content hashes of the NSD table and the COCO caption files the brain captions come from."""
    from lib.config import resolve_path
    from lib.stimuli.sources import COCO_CAPTIONS, read_nsd_stim_info

    table = nsd_table_path(params)
    rows = read_nsd_stim_info(table).set_index("nsdId")
    splits = sorted(rows.loc[[int(v) for v in nsd_ids if int(v) in rows.index], "cocoSplit"].unique())
    files = [resolve_path(params["data_dir"]) / COCO_CAPTIONS.format(split=s) for s in splits]
    return {"table": files_digest([table], memo_dir=memo_dir),
            "captions": files_digest([f for f in files if f.is_file()], memo_dir=memo_dir)}


def brain_set(params: dict[str, Any], store=None, progress: bool = True) -> BrainSet:
    """Subjects and images for ``params['brain_source']`` (synthetic or algonauts)."""
    from lib.config import resolve_path

    if len(set(params["subjects"])) < 2:
        raise ValueError(f"the brain analysis needs at least 2 subjects (noise ceilings, group statistics); got "
                         f"subjects={params['subjects']}. Set e.g. -p subjects=[1,2,3,4,5,6,8]")
    from lib.store import store_for

    spec = BrainSetSpec.from_params(params)
    if params["brain_source"] == "synthetic":
        root, captions = synthetic_root(params, store, progress)
        data = load_algonauts(root, params["subjects"], howto=SYNTHETIC_HOWTO)
        return BrainSet(data, spec.key(synthetic=root.name), True, captions, planted_table(root))
    store = store if store is not None else store_for(params)
    root = resolve_path(params["algonauts_dir"])
    data = load_algonauts(root, params["subjects"])
    captions = coco_captions(params, data.nsd_ids)
    key = spec.key(release=_folder_key(root, params["subjects"], store.root),
                   captions=captions_fingerprint(params, data.nsd_ids, store.root))
    return BrainSet(data, key, False, captions)


def brain_references(bs: BrainSet, params: dict[str, Any], store=None, progress: bool = True) -> dict[str, np.ndarray]:
    """RDM vectors of every enabled reference on the brain image set (NSD-id order).
    The stored ids are checked against the set's, so a vector can never be used for
    other images than it was computed on."""
    from lib.references import reference_rdms
    from lib.store import store_for

    store = store if store is not None else store_for(params)
    spec = BrainReferencesSpec.from_params(params)
    names = list(spec.references.names)

    def compute() -> dict[str, Any]:
        rdms = reference_rdms(bs.image_set(params, store, progress), params, store, names)
        return {"ids": bs.ids, **{k: r.dissimilarities[0] for k, r in rdms.items()}}

    out = spec.get_or_compute(store, {"set": bs.cache_key}, compute)
    check_aligned(out["ids"], bs.ids, "the cached brain reference RDMs", "the brain image set")
    return {k: np.asarray(out[k]) for k in names}


def brain_roi_rdms(bs: BrainSet, params: dict[str, Any], store=None, progress: bool = True,
                   executor=None) -> RoiRdms:
    from lib.store import store_for

    store = store if store is not None else store_for(params)
    spec = BrainRoiSpec.from_params(params)
    out = spec.get_or_compute(store, {"set": bs.cache_key},
                              lambda: roi_rdms(bs.data, params["roi_rdm_mode"], progress=progress,
                                               policy=params["roi_policy"], executor=executor).to_store())
    roi = RoiRdms.from_store(out)
    check_aligned([nsd_image_id(v) for v in roi.nsd_ids], bs.ids, "the ROI RDMs", "the brain image set")
    return roi


def model_tables(bs: BrainSet, roi: RoiRdms, refs: dict[str, np.ndarray], params: dict[str, Any], store=None,
                 progress: bool = True, executor=None) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Every model layer x ROI x subject RSA, each layer's RSA with every reference, and the
    weights each model ran with. On a Dask executor the extractions run on the workers first."""
    from functools import partial

    from lib.extract import ExtractionTask, extract_rdms, precompute, release_models, weights_used
    from lib.store import store_for

    store = store if store is not None else store_for(params)
    spec = BrainModelRsaSpec.from_params(params)
    images = bs.image_set(params, store, progress)
    roi_ids = [nsd_image_id(v) for v in roi.nsd_ids]
    precompute([ExtractionTask(m, partial(load_images, list(bs.data.image_paths)), images.cache_key,
                               tuple(images.ids)) for m in params["models"]],
               params, store=store, executor=executor, progress=progress)
    brains, layer_refs, weights = [], [], {}
    for model in params["models"]:
        rdms = extract_rdms(model, images.images, images_key=images.cache_key, params=params, store=store,
                            progress=progress, ids=images.ids)
        weights.update(weights_used([rdms]))
        release_models()
        check_aligned(rdm_ids(rdms), roi_ids, f"the layer RDMs of {model}", "the ROI RDMs")
        inputs = {"layers": np.ascontiguousarray(rdms.dissimilarities), "ids": images.ids, "set": bs.cache_key,
                  "refs": {k: np.asarray(v) for k, v in refs.items()}}

        def compute(rdms=rdms) -> dict[str, Any]:
            b, lr = model_brain_rsa(rdms, roi, refs)
            return {"brain": b, "layer_ref": lr}

        out = spec.get_or_compute(store, inputs, compute)
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
           "synthetic_root", "coco_captions", "captions_fingerprint", "nsd_table_path"]
