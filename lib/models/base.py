"""The pieces every model source shares: the spec of a model, where its weights live, the
error type, and the protocol a source implements.

Why a protocol: a model source (timm, open_clip, torchvision, a local checkpoint file) is
one module that knows how to parse its names, where its library caches weights, how to
build the network and its native transform. Everything else (weights policy, identity,
preprocessing, layer tables) is shared, so adding a source is adding one file.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

DTYPES = ("float32", "float16")


class ModelError(ValueError):
    """A model name, weight or layer request that cannot be served; says how to fix it."""


@dataclass(frozen=True)
class ModelSpec:
    """How to build one network: source library, architecture and pretrained tag.

    ``tag`` is the pretrained tag as the source spells it, resolved (a tag-less timm name
    gets timm's default tag written out). ``path`` is set only for ``file:`` models.
    ``cuda_dtype`` is the precision the original study ran the network in on a GPU.
    """

    label: str
    arch: str  # "ResNet" | "ViT" | "other"
    training: str  # "supervised" | "CLIP"
    source: str  # a key of SOURCES
    name: str  # the source's architecture name (for file: the architecture's model name)
    tag: str  # pretrained tag; "" = the architecture has none
    path: str | None = None
    cuda_dtype: str = "float32"


@dataclass(frozen=True)
class WeightFile:
    """Where a model's pretrained weights live (or would live) in the library's cache.

    ``repo_id`` + ``filenames``: a Hugging Face hub repository, files tried in order.
    ``url`` + ``url_path``: a plain download and the cache path it is stored under.
    ``local``: the cached copy found now (None if absent).
    """

    repo_id: str | None
    filenames: tuple[str, ...]
    url: str | None
    url_path: str | None
    local: str | None

    @property
    def remote(self) -> bool:
        return self.repo_id is not None or self.url is not None


class ModelSource:
    """One library of networks. Subclasses set ``prefix``/``library`` and implement the
    four methods; :func:`register` makes the source reachable as ``<prefix>:...`` names."""

    prefix: str = ""
    library: str = ""  # the python package whose version identifies the built network

    def parse(self, rest: str, full: str) -> ModelSpec:
        """``rest`` is the name after ``<prefix>:``; validate it (unknown tags are errors)."""
        raise NotImplementedError

    def weight_file(self, s: ModelSpec) -> WeightFile:
        """Locate the pretrained weights in the library's cache, without network."""
        raise NotImplementedError

    def build(self, s: ModelSpec, path: str | None, dtype: str = "float32") -> tuple[nn.Module, Callable]:
        """The network (image tower) and its native transform; ``path`` None = random
        weights (the caller seeds torch first). Builds on torch's default device."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """Environment settings of the library that change a layer table (recorded in the
        model's identity)."""
        return {}

    def code_source(self, s: ModelSpec) -> "ModelSource":
        """The source whose library code builds ``s`` (its version and settings identify
        the network); another source for ``file:`` models."""
        return self

    def original_layout(self, module: nn.Module) -> dict[str, str]:
        """Module name -> the name the original study's code gave it, in the registration
        order of that code (``layer_rule=original``); by default the module's own."""
        return {q: q for q, _ in module.named_modules() if q}

    def version(self) -> str:
        return importlib.import_module(self.library).__version__


SOURCES: dict[str, ModelSource] = {}


def register(source_cls: type[ModelSource]) -> type[ModelSource]:
    """Class decorator: make a source reachable by its prefix."""
    SOURCES[source_cls.prefix] = source_cls()
    return source_cls


def source_of(s: ModelSpec) -> ModelSource:
    return SOURCES[s.source]


def family(name: str) -> str:
    """"ViT", "ResNet" or "other" from an architecture name (for plots and tables)."""
    low = name.lower()
    if "vit" in low:
        return "ViT"
    return "ResNet" if "resnet" in low or low.startswith("rn") else "other"


# ----------------------------------------------------------------------------- caches

def hf_cache_dir() -> str:
    """The Hugging Face hub cache, read from the environment at call time (so HF_HUB_CACHE
    / HF_HOME set after import are honoured), else huggingface_hub's default."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def cached_hub_file(repo: str, names: tuple[str, ...]) -> str | None:
    """The first of ``names`` already in the local Hugging Face cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    for fn in names:
        hit = try_to_load_from_cache(repo, fn, cache_dir=hf_cache_dir())
        if isinstance(hit, str) and os.path.isfile(hit):
            return hit
    return None


def torch_hub_checkpoint(url: str) -> str:
    """Where torch.hub stores a downloaded checkpoint ($TORCH_HOME/hub/checkpoints/<file>)."""
    import torch

    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))


def existing(path: str | None) -> str | None:
    return path if path and os.path.isfile(path) else None
