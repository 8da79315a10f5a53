"""The paper's ten networks by short name, and the parser for every other model name.

Short names build what the original study ran (PAPER.md, "What the original code actually
ran"): torchvision's supervised networks with ``IMAGENET1K_V1`` weights and OpenAI's CLIP
image towers (open_clip ``openai`` tags), the CLIP ViTs in float16 on a GPU. Any other
network is reachable by a source-prefixed name:

- ``timm:<name>[.<tag>]`` (e.g. ``timm:vit_base_patch16_224.augreg_in21k_ft_in1k``),
- ``open_clip:<arch>:<tag>`` (``none`` = the architecture without weights),
- ``torchvision:<name>[:<weights>]`` (e.g. ``torchvision:resnet50:IMAGENET1K_V2``),
- ``file:<model name>@<checkpoint path>`` (an architecture given by any name above, with
  the weights of a local checkpoint, e.g. ``file:torchvision:resnet50@runs/epoch10.pt``).
"""

from __future__ import annotations

import difflib

from lib.models.base import SOURCES, ModelError, ModelSpec

_TV = "IMAGENET1K_V1"
REGISTRY: dict[str, ModelSpec] = {
    "resnet50": ModelSpec("ResNet-50", "ResNet", "supervised", "torchvision", "resnet50", _TV),
    "resnet101": ModelSpec("ResNet-101", "ResNet", "supervised", "torchvision", "resnet101", _TV),
    "vit_b16": ModelSpec("ViT-B/16", "ViT", "supervised", "torchvision", "vit_b_16", _TV),
    "vit_b32": ModelSpec("ViT-B/32", "ViT", "supervised", "torchvision", "vit_b_32", _TV),
    "vit_l16": ModelSpec("ViT-L/16", "ViT", "supervised", "torchvision", "vit_l_16", _TV),
    "clip_rn50": ModelSpec("CLIP RN50", "ResNet", "CLIP", "open_clip", "RN50", "openai"),
    "clip_rn101": ModelSpec("CLIP RN101", "ResNet", "CLIP", "open_clip", "RN101", "openai"),
    "clip_vit_b16": ModelSpec("CLIP ViT-B/16", "ViT", "CLIP", "open_clip", "ViT-B-16", "openai",
                              cuda_dtype="float16"),
    "clip_vit_b32": ModelSpec("CLIP ViT-B/32", "ViT", "CLIP", "open_clip", "ViT-B-32", "openai",
                              cuda_dtype="float16"),
    "clip_vit_l14": ModelSpec("CLIP ViT-L/14", "ViT", "CLIP", "open_clip", "ViT-L-14", "openai",
                              cuda_dtype="float16"),
}
MODEL_NAMES: tuple[str, ...] = tuple(REGISTRY)


def name_help() -> str:
    return (f"registry names: {', '.join(MODEL_NAMES)}; or 'timm:<name>' (e.g. timm:resnet18) "
            f"or 'open_clip:<arch>:<pretrained>' (e.g. open_clip:RN50:openai) "
            f"or 'torchvision:<name>[:<weights>]' (e.g. torchvision:resnet50) "
            f"or 'file:<model name>@<checkpoint>' (e.g. file:torchvision:resnet50@ckpt.pt)")


def spec(name: str) -> ModelSpec:
    """Resolve a short name or a source-prefixed name into a :class:`ModelSpec`.

    Unknown architectures and unknown pretrained tags are errors that list what is valid.
    """
    if name in REGISTRY:
        return REGISTRY[name]
    prefix, sep, rest = name.partition(":")
    if sep and prefix in SOURCES:
        return SOURCES[prefix].parse(rest, name)
    close = difflib.get_close_matches(name, MODEL_NAMES, n=2)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ModelError(f"unknown model {name!r}.{hint} Valid: {name_help()}")


def describe(name: str) -> dict[str, str]:
    """Label, architecture family and training regime of a model name (for plots/tables)."""
    s = spec(name)
    return {"label": s.label, "arch": s.arch, "training": s.training}


def unknown_tag(source: str, arch: str, tag: str, valid: list[str]) -> ModelError:
    """The error for a pretrained tag the library does not know (never random weights)."""
    close = difflib.get_close_matches(tag, valid, n=2, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    shown = ", ".join(valid) if valid else "(none: this architecture has no pretrained weights)"
    return ModelError(f"{source} has no pretrained tag {tag!r} for {arch!r}.{hint} Valid tags: {shown}")
