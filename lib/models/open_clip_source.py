"""open_clip image towers: ``open_clip:<arch>:<tag>`` (``none`` = no weights). Weights from
the Hugging Face hub cache (``open_clip_model.safetensors`` / ``open_clip_pytorch_model.bin``)
or, for OpenAI tags, the original download in ``~/.cache/clip``."""

from __future__ import annotations

import logging
import os
import re
import warnings
from typing import Callable

import torch
from torch import nn

from lib.models.base import (ModelError, ModelSource, ModelSpec, WeightFile, cached_hub_file, existing, family,
                             register)
from lib.models.registry import name_help, unknown_tag

HF_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
CLIP_URL_CACHE = os.path.join("~", ".cache", "clip")
NO_WEIGHTS = "none"
OPENAI_BLOCK_ORDER = {"attn": 0, "ln_1": 1, "mlp": 2, "ln_2": 3}


@register
class OpenClipSource(ModelSource):
    prefix = "open_clip"
    library = "open_clip"

    def parse(self, rest: str, full: str) -> ModelSpec:
        import open_clip

        parts = rest.split(":")
        if len(parts) != 2 or not parts[0]:
            raise ModelError(f"model {full!r} is not of the form open_clip:<arch>:<pretrained>; {name_help()}")
        arch_name, tag = parts
        if arch_name not in open_clip.list_models():
            raise ModelError(f"open_clip has no architecture {arch_name!r}; {name_help()}")
        valid = open_clip.list_pretrained_tags_by_model(arch_name)
        if tag != NO_WEIGHTS and tag not in valid:
            raise unknown_tag("open_clip", arch_name, tag, [*valid, NO_WEIGHTS])
        return ModelSpec(f"open_clip {arch_name} ({tag})", family(arch_name), "CLIP", "open_clip", arch_name,
                         "" if tag == NO_WEIGHTS else tag)

    def _cfg(self, s: ModelSpec) -> dict:
        import open_clip

        return open_clip.get_pretrained_cfg(s.name, s.tag) if s.tag else {}

    def weight_file(self, s: ModelSpec) -> WeightFile:
        cfg = self._cfg(s)
        repo, names = None, ()
        if cfg.get("hf_hub"):
            # "org/name/" (default file names) or "org/name/file.bin"
            repo, fn = os.path.split(cfg["hf_hub"])
            names = (fn,) if fn else HF_FILES
        url = cfg.get("url") or None
        url_path = os.path.join(os.path.expanduser(CLIP_URL_CACHE), os.path.basename(url)) if url else None
        local = (cached_hub_file(repo, names) if repo else None) or existing(url_path)
        return WeightFile(repo, names, url, url_path, local)

    def build(self, s: ModelSpec, path: str | None, dtype: str = "float32") -> tuple[nn.Module, Callable]:
        import open_clip

        from lib.models.preprocess import CLIP_MEAN, CLIP_STD

        cfg = self._cfg(s)
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # open_clip logs "initialized randomly" on the root logger
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # precision fp16 = OpenAI's own fp16 model: conv/linear/attention weights in
                # float16, LayerNorms computed in float32 (as clip.load on a GPU)
                model = open_clip.create_model(s.name, pretrained=path, force_quick_gelu=bool(cfg.get("quick_gelu")),
                                               precision="fp16" if dtype == "float16" else "fp32",
                                               device=torch.get_default_device())
        finally:
            root.setLevel(level)
        native = open_clip.image_transform(model.visual.image_size, is_train=False,
                                           mean=cfg.get("mean", CLIP_MEAN), std=cfg.get("std", CLIP_STD))
        return model.visual, native

    def original_layout(self, module: nn.Module) -> dict[str, str]:
        """As OpenAI's CLIP code (which the original study ran) registers the image tower:
        a transformer block's children in the order attn, ln_1, mlp, ln_2 (open_clip: ln_1,
        attn, ln_2, mlp), and the ResNet activations named relu1-3 (open_clip: act1-3)."""
        from open_clip.transformer import ResidualAttentionBlock

        def walk(mod: nn.Module, prefix: str):
            children = list(mod.named_children())
            if isinstance(mod, ResidualAttentionBlock):
                children.sort(key=lambda kv: OPENAI_BLOCK_ORDER.get(kv[0], len(OPENAI_BLOCK_ORDER)))
            for child_name, child in children:
                q = f"{prefix}.{child_name}" if prefix else child_name
                yield q
                yield from walk(child, q)

        return {q: re.sub(r"(^|\.)act(\d)$", r"\1relu\2", q) for q in walk(module, "")}
