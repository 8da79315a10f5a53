"""A checkpoint series as a model source: RDMs of every checkpoint through the engine.

Why build once: a series is one architecture with many weight files, so the network is
built, probed for its layer table and fed the preprocessed images once; each checkpoint
then costs one ``load_state_dict`` plus one engine pass (``lib.extract.compute_grams``),
which is what one single-model extraction costs without the model construction. Each
checkpoint's RDMs are cached under its file's content hash (a retrained file with the
same name is a new key), the architecture, the images, the layer set and the metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import rsatoolbox
import torch
from torch import nn

from lib.checkpoints import Checkpoint, load_into
from lib.training import demo

STEP = "checkpoint_rdms"
VERSION = "1"


@dataclass
class Architecture:
    """A network to load checkpoints into, with the preprocessing its series expects."""

    name: str
    module: nn.Module
    preprocess: Callable[[Sequence[np.ndarray]], torch.Tensor]
    input_size: int


def build_architecture(name: str, params: dict[str, Any]) -> Architecture:
    """The network a series' checkpoints belong to, by name (weights are overwritten).

    ``demo_resnet`` is the demo's own network; every other name goes through
    ``lib.models`` (the one call into the model registry, so a registry change meets
    this function only).
    """
    if name == demo.ARCHITECTURE:
        module = demo.build(params["seed"])
        return Architecture(name, module.eval(), demo.DemoPreprocess(), demo.IMAGE_SIZE)
    from lib.models import IMAGE_SIZE, load_model

    lm = load_model(name, weights="random", seed=params["seed"], preprocessing=params["preprocessing"])
    return Architecture(name, lm.module, lm.preprocess, IMAGE_SIZE)


def layer_table(arch: Architecture, layer_set: str) -> pd.DataFrame:
    """The engine's layer table of the architecture, probed at its own input size."""
    from lib.models import probe_layers, select_layers

    return select_layers(probe_layers(arch.module, size=arch.input_size), layer_set, model=arch.name)


@dataclass
class SeriesRDMs:
    """Layer RDMs of every checkpoint of a series, in training order."""

    architecture: str
    checkpoints: list[Checkpoint]
    rdms: list[rsatoolbox.rdm.RDMs]
    reports: list[dict[str, Any]]

    def frame(self) -> pd.DataFrame:
        """One row per checkpoint: name, training time, step, content hash (short)."""
        return pd.DataFrame([{"checkpoint": c.name, "time": c.time.label(), "step": c.step,
                              "epochs": c.epochs, "sha256": c.sha256[:12], "file": str(c.path)}
                             for c in self.checkpoints])


def _layer_rdms(grams: list[np.ndarray], table: pd.DataFrame, metric: str, name: str,
                ids: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """RDM vectors per layer; a layer whose activations have zero norm gets NaN.

    Why not an error, as in a single-model extraction: in a series it is a fact about one
    checkpoint (timm and torchvision can zero-initialise the last BatchNorm of each residual
    block, so at ``pre_training`` that layer outputs zeros and has no RDM); the tables show
    such layers as undefined. NaN/Inf activations still raise.
    """
    from lib.extract import ExtractionError, grams_to_rdms

    n = grams[0].shape[0]
    out = np.full((len(grams), n * (n - 1) // 2), np.nan)
    undefined = []
    for i, g in enumerate(grams):
        try:
            out[i] = grams_to_rdms([g], table.iloc[[i]].reset_index(drop=True), metric, name, ids)[0]
        except ExtractionError:
            if not np.isfinite(np.diag(g)).all():
                raise
            undefined.append(str(table.layer.iat[i]))
    return out, undefined


def series_rdms(architecture: str, checkpoints: Sequence[Checkpoint], images: Sequence[np.ndarray], *,
                images_key: str, ids: Sequence[str], params: dict[str, Any], store=None,
                progress: bool = False) -> SeriesRDMs:
    """One RDM per layer for every checkpoint (cached per checkpoint content hash).

    The network is built on the first cache miss only; a checkpoint that does not fit the
    architecture raises :class:`lib.checkpoints.CheckpointError` naming the file and keys.
    """
    import time

    from lib.extract import _PeakRSS, compute_grams, to_rdms
    from lib.gram import check_metric
    from lib.models import LoadedModel
    from lib.progress import tqdm
    from lib.store import store_for

    from lib.config import pick_device

    check_metric(params["metric"])
    store = store if store is not None else store_for(params)
    device = pick_device(params["device"])
    state: dict[str, Any] = {}

    def ready() -> dict[str, Any]:
        if not state:
            arch = build_architecture(architecture, params)
            for p in arch.module.parameters():
                p.requires_grad_(False)
            arch.module.to(device)
            state["arch"] = arch
            state["table"] = layer_table(arch, params["layers"])
            state["x"] = arch.preprocess(list(images))
        return state

    out_rdms, reports = [], []
    for ck in tqdm(list(checkpoints), desc=f"{architecture} checkpoints", disable=not progress, leave=False):
        inputs = {"architecture": architecture, "checkpoint_sha256": ck.sha256, "images": images_key,
                  "layers": params["layers"], "metric": params["metric"],
                  "preprocessing": "demo" if architecture == demo.ARCHITECTURE else params["preprocessing"]}

        def compute(ck=ck) -> dict[str, Any]:
            t0 = time.perf_counter()
            with _PeakRSS() as meter:
                s = ready()
                arch, table = s["arch"], s["table"]
                load_into(arch.module, ck.path)
                arch.module.eval()
                lm = LoadedModel(architecture, arch.module, arch.preprocess, "checkpoint", ck.sha256[:16],
                                 device, params["seed"])
                report: dict[str, Any] = {}
                grams = compute_grams(lm, s["x"], table, metric=params["metric"], progress=False,
                                      budget_bytes=params["memory_budget_gb"] * 1e9,
                                      batch_size=params["batch_size"], report=report)
                diss, undefined = _layer_rdms(grams, table, params["metric"], f"{architecture} @ {ck.path}", ids)
            report.update(seconds=time.perf_counter() - t0, peak_rss_gb=meter.peak / 1e9, undefined_layers=undefined)
            return {"dissimilarities": diss, "layers": table, "report": report}

        out = store.get_or_compute(STEP, VERSION, inputs, compute)
        out_rdms.append(to_rdms(out["dissimilarities"], out["layers"], params["metric"], ids))
        reports.append(dict(out["report"], checkpoint=ck.name))
    return SeriesRDMs(architecture, list(checkpoints), out_rdms, reports)
