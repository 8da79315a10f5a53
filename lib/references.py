"""The reference registry: every representation layers are compared with, in one place.

A reference is a name, how to compute per-image features from an :class:`ImageSet`, the
RDM metric, a label and a colour. Stimulus sets, RSA tables, synthetic subjects, the brain
chapter and the plots iterate :func:`enabled` instead of naming "saliency" and "semantic",
so adding a representation is one :func:`register` call here.

Registered:
- ``saliency``: Itti–Koch maps resized to 224×224, flattened (the paper's saliency RDM).
- ``semantic``: mean sentence embedding of each image's captions (the paper's semantic RDM).
- ``clip_text`` (optional): mean CLIP text-tower embedding of the captions, semantics in
  CLIP's own space. Pretrained weights when ``lib.models``' weights policy finds them,
  otherwise seeded random weights (then it measures an untrained text tower, and says so).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import rsatoolbox

from lib.image_set import ImageSet

DEFAULT_REFERENCES = ("saliency", "semantic")


@dataclass(frozen=True)
class Reference:
    """One reference representation.

    ``features(image_set, params, store)`` -> (n, p) array, one row per image (ids order).
    ``identity(params)`` -> what beyond the image set determines the features (weights of
    a network it runs); it enters cache keys through :class:`lib.specs.ReferenceSpec`.
    ``family``: which of the paper's questions it answers ("saliency" or "semantic").
    """

    name: str
    label: str
    colour: str
    family: str
    description: str
    features: Callable[[ImageSet, dict[str, Any], Any], np.ndarray]
    metric: str = "cosine"
    identity: Callable[[dict[str, Any]], str] = lambda params: ""


REGISTRY: dict[str, Reference] = {}


def register(ref: Reference) -> Reference:
    """Add a reference (a name may be registered once)."""
    if ref.name in REGISTRY:
        raise ValueError(f"reference {ref.name!r} is already registered")
    REGISTRY[ref.name] = ref
    return ref


def enabled(params: dict[str, Any]) -> list[str]:
    """The references a run uses (``params['references']``, default saliency + semantic),
    checked against the registry."""
    from lib.config import ConfigError

    names = list(params.get("references") or DEFAULT_REFERENCES)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ConfigError(f"parameter 'references': unknown reference(s) {unknown}; registered: {list(REGISTRY)} "
                          f"(e.g. -p references='[saliency, semantic, clip_text]')")
    if len(set(names)) != len(names):
        raise ConfigError(f"parameter 'references' lists a reference twice: {names}")
    return names


def palette(names: Sequence[str] | None = None) -> dict[str, str]:
    """Reference name -> colour (the one palette of every plot)."""
    return {n: REGISTRY[n].colour for n in (names if names is not None else REGISTRY)}


def label(name: str) -> str:
    return REGISTRY[name].label if name in REGISTRY else name


def of_family(family: str, names: Sequence[str]) -> list[str]:
    """The names among ``names`` that answer ``family``'s question (e.g. every semantic one)."""
    return [n for n in names if REGISTRY[n].family == family]


def partial_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """The (saliency-family, semantic-family) pairs among ``names`` whose unique variance the
    partial RSA separates (the paper's question: saliency beyond semantics and vice versa)."""
    return [(a, b) for a in of_family("saliency", names) for b in of_family("semantic", names)]


def table(names: Sequence[str] | None = None, params: dict[str, Any] | None = None) -> "Any":
    """A DataFrame describing the references (for the chapters); with ``params``, also what
    each one runs (e.g. whether the CLIP text tower had pretrained or random weights)."""
    import pandas as pd

    names = list(names if names is not None else REGISTRY)
    rows = [{"reference": n, "label": REGISTRY[n].label, "question": REGISTRY[n].family,
             "metric": REGISTRY[n].metric, "features": REGISTRY[n].description} for n in names]
    if params is not None:
        for row in rows:
            row["runs"] = REGISTRY[row["reference"]].identity(params) or "(no network)"
    return pd.DataFrame(rows)


def reference_rdm(name: str, image_set: ImageSet, params: dict[str, Any], store=None) -> rsatoolbox.rdm.RDMs:
    """One reference's RDM over ``image_set`` (image ids as pattern descriptors)."""
    from lib.stimuli.references import features_rdm

    ref = REGISTRY[name]
    feats = np.asarray(ref.features(image_set, params, store))
    return features_rdm(feats, image_set.ids, name, metric=ref.metric)


def reference_rdms(image_set: ImageSet, params: dict[str, Any], store=None,
                   names: Sequence[str] | None = None) -> dict[str, rsatoolbox.rdm.RDMs]:
    """Every enabled reference's RDM over ``image_set``, registry order."""
    names = list(names) if names is not None else enabled(params)
    return {n: reference_rdm(n, image_set, params, store) for n in names}


# ----------------------------------------------------------------------------- saliency, semantic


def _saliency_features(image_set: ImageSet, params: dict[str, Any], store) -> np.ndarray:
    from lib.stimuli.references import saliency_features

    return saliency_features(image_set.saliency_maps())


def _semantic_features(image_set: ImageSet, params: dict[str, Any], store) -> np.ndarray:
    return np.asarray(image_set.caption_embeddings(), np.float64)


register(Reference("saliency", "Saliency (Itti–Koch)", "#D55E00", "saliency",
                   "Itti–Koch map resized to 224×224, flattened", _saliency_features))
register(Reference("semantic", "Semantics (caption embedding)", "#0072B2", "semantic",
                   "mean sentence embedding of the captions", _semantic_features))


# ----------------------------------------------------------------------------- clip_text

CLIP_TEXT_MODEL = "clip_vit_b32"  # lib.models name: its weights policy and cache decide the weights


@contextlib.contextmanager
def _quiet_root_logger():
    """open_clip logs on the root logger; silence it for the call and restore the level."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def clip_text_identity(params: dict[str, Any]) -> str:
    """Weights identity of the CLIP text tower (same rule as the image networks)."""
    from lib.specs import weights_identity

    return f"{CLIP_TEXT_MODEL}:{weights_identity(CLIP_TEXT_MODEL, params)}"


def build_clip_text(weights: str = "auto", seed: int = 0):
    """(text tower, tokenizer, weights used) of CLIP under ``lib.models``' weights policy.

    Only the text tower is built (a quarter of the network): pretrained weights are the
    full checkpoint's non-visual tensors, loaded strictly; random weights are seeded
    without touching the global torch RNG."""
    import open_clip
    import torch
    from open_clip.model import _build_text_tower

    from lib import models

    s = models.spec(CLIP_TEXT_MODEL)
    used, path = models.resolve_weights(CLIP_TEXT_MODEL, weights, allow_download=False)
    cfg = open_clip.get_model_config(s.name)
    pcfg = open_clip.get_pretrained_cfg(s.name, s.tag) if s.tag else {}
    with _quiet_root_logger(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tower = _build_text_tower(cfg["embed_dim"], cfg["text_cfg"], quick_gelu=bool(pcfg.get("quick_gelu", False)))
    if used == "pretrained":
        from lib.checkpoints import load_state_dict

        state = {k: v for k, v in load_state_dict(path).items()
                 if not k.startswith("visual.") and k not in ("logit_scale", "logit_bias")}
        try:
            tower.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(f"CLIP text tower: the weights file {path} does not match {s.name}'s text tower "
                             f"({err}); delete it and fetch again (python -m lib fetch weights)") from None
    tower.eval()
    return tower, open_clip.get_tokenizer(s.name), used


def clip_text_embeddings(captions: Sequence[Sequence[str]], weights: str = "auto", seed: int = 0,
                         batch_size: int = 64) -> np.ndarray:
    """(n, d) float32: per image, the mean of its captions' L2-normalised CLIP text embeddings
    (CLIP compares normalised embeddings)."""
    import torch

    model, tokenizer, _ = build_clip_text(weights, seed)
    flat = [str(c) for caps in captions for c in caps]
    out = []
    with torch.inference_mode():
        for s in range(0, len(flat), batch_size):
            e = model(tokenizer(flat[s:s + batch_size])).float()
            out.append(torch.nn.functional.normalize(e, dim=-1).numpy())
    emb = np.concatenate(out) if out else np.zeros((0, 1), np.float32)
    rows, pos = [], 0
    for caps in captions:
        rows.append(emb[pos:pos + len(caps)].mean(axis=0))
        pos += len(caps)
    return np.stack(rows).astype(np.float32)


def _clip_text_features(image_set: ImageSet, params: dict[str, Any], store) -> np.ndarray:
    caps = image_set.caption_lists()

    def compute() -> dict[str, Any]:
        return {"embeddings": clip_text_embeddings(caps, params["weights"], params["seed"])}

    if store is None:
        return compute()["embeddings"]
    from lib.specs import ReferenceSpec

    spec = ReferenceSpec(("clip_text",), (("clip_text", clip_text_identity(params)),))
    inputs = {"ids": image_set.ids, "captions": caps}
    return np.asarray(spec.get_or_compute(store, inputs, compute)["embeddings"])


register(Reference("clip_text", "Semantics (CLIP text tower)", "#CC79A7", "semantic",
                   "mean CLIP text embedding of the captions", _clip_text_features, identity=clip_text_identity))


__all__ = ["Reference", "REGISTRY", "DEFAULT_REFERENCES", "register", "enabled", "palette", "label", "of_family",
           "partial_pairs", "table", "reference_rdm", "reference_rdms", "clip_text_embeddings", "build_clip_text"]
