"""The original study's published numbers (``data/published/``), read as tidy tables.

Why a module: every chapter that shows "published (pretrained, original stimuli)" beside
this run's values reads these files the same way. They are facts to compare against and
never inputs of a computation. Source: Opiełka, Loke & Scholte (2024), the data released
with their analysis code (see ``data/published/README.md``).
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from lib.config import DATA_DIR

PUBLISHED_DIR = DATA_DIR / "published"
CITATION = ("Opiełka, Loke & Scholte (2024), Saliency Suppressed, Semantics Surfaced, "
            "arXiv:2404.18772")

# This project's registry names for the original's model keys.
MODEL_KEYS: dict[str, str] = {
    "rn50": "resnet50", "rn101": "resnet101", "vit_b16": "vit_b16", "vit_b32": "vit_b32",
    "vit_l14": "vit_l16",  # the original's key for torchvision's ViT-L/16
    "clip_rn50": "clip_rn50", "clip_rn101": "clip_rn101", "clip_vit_b16": "clip_vit_b16",
    "clip_vit_b32": "clip_vit_b32", "clip_vit_l14": "clip_vit_l14",
}


class PublishedDataError(FileNotFoundError):
    """A published table is missing from ``data/published/``."""


def _read(name: str, **kw) -> pd.DataFrame:
    path = PUBLISHED_DIR / name
    if not path.is_file():
        raise PublishedDataError(
            f"{path} is missing; it ships with the repository (git checkout -- data/published)")
    return pd.read_csv(path, **kw)


@lru_cache(maxsize=None)
def _cached(name: str) -> pd.DataFrame:
    table = _read(name)
    if "model" in table.columns:
        table["model"] = table["model"].map(MODEL_KEYS).fillna(table["model"])
    return table


def layer_rsa() -> pd.DataFrame:
    """``model, condition, layer_index, layer, reference, rsa``: raw RSA of each layer RDM on
    a condition's images with the Baseline reference RDM (ΔRSA = condition − Baseline)."""
    return _cached("layer_rsa.csv").copy()


def roi_rsa() -> pd.DataFrame:
    """``subject, roi, saliency, semantic``: reference RSA per subject and ROI (NaN where the
    original dropped the ROI)."""
    return _cached("roi_rsa.csv").copy()


def roi_noise_ceilings() -> pd.DataFrame:
    """``roi, lower, upper``: leave-one-subject-out noise ceilings."""
    return _cached("roi_noise_ceilings.csv").copy()


def model_roi_rsa() -> pd.DataFrame:
    """``model, subject, layer_index, roi, rsa``: every layer RDM with every ROI RDM."""
    return _cached("model_roi_rsa.csv.gz").copy()


def training_dynamics() -> pd.DataFrame:
    """``checkpoint, epoch, batch, layer_index, layer, reference, rsa``: a ResNet-50's RSA at
    41 checkpoints through training."""
    return _cached("training_dynamics.csv").copy()


def model_group(model: str) -> tuple[str, str]:
    """(architecture, training) of a published model: ('ResNet'|'ViT', 'supervised'|'CLIP')."""
    if model not in MODEL_KEYS.values():
        raise KeyError(f"{model!r} is not a published model; published: {sorted(MODEL_KEYS.values())}")
    return ("ViT" if "vit" in model else "ResNet", "CLIP" if model.startswith("clip_") else "supervised")


def with_rel_depth(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``rel_depth`` = layer_index / (n_layers − 1) per model, as this project
    defines relative depth (0 = first hooked layer, 1 = last)."""
    last = table.groupby("model")["layer_index"].transform("max")
    return table.assign(rel_depth=table["layer_index"] / last.where(last > 0, 1))


def corresponding_model(model: str, arch: str | None = None, training: str | None = None) -> str | None:
    """The published model to show beside ``model``: itself when the original ran it, else
    the first published model of the same architecture and training (None if neither is known)."""
    if model in MODEL_KEYS.values():
        return model
    for candidate in MODEL_KEYS.values():
        if arch and training and model_group(candidate) == (arch, training):
            return candidate
    return None
