"""timm networks: ``timm:<name>[.<tag>]``, weights from the Hugging Face hub cache
(``model.safetensors`` / ``pytorch_model.bin``) or timm's legacy url in the torch hub cache."""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from lib.models.base import (ModelError, ModelSource, ModelSpec, WeightFile, cached_hub_file, existing, family,
                             register, torch_hub_checkpoint)
from lib.models.registry import name_help, unknown_tag

HF_FILES = ("model.safetensors", "pytorch_model.bin")


@register
class TimmSource(ModelSource):
    prefix = "timm"
    library = "timm"

    def parse(self, rest: str, full: str) -> ModelSpec:
        import timm
        from timm.models import get_arch_pretrained_cfgs, get_pretrained_cfg

        if not rest:
            raise ModelError(f"model {full!r} names no timm model; {name_help()}")
        arch_name, _, tag = rest.partition(".")
        if not timm.is_model(arch_name):
            raise ModelError(f"timm has no model {arch_name!r}; {name_help()}")
        valid = [n.partition(".")[2] for n in get_arch_pretrained_cfgs(arch_name)]
        if tag and tag not in valid:
            raise unknown_tag("timm", arch_name, tag, valid)
        if not tag and valid:
            tag = get_pretrained_cfg(arch_name).tag  # timm's default today, written out
        return ModelSpec(rest, family(arch_name), "supervised", "timm", arch_name, tag)

    def _cfg(self, s: ModelSpec):
        from timm.models import get_pretrained_cfg

        return get_pretrained_cfg(f"{s.name}.{s.tag}") if s.tag else None

    def weight_file(self, s: ModelSpec) -> WeightFile:
        cfg = self._cfg(s)
        if cfg is None:
            return WeightFile(None, (), None, None, None)
        repo = cfg.hf_hub_id or None
        names = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else HF_FILES
        url = cfg.url or None
        url_path = torch_hub_checkpoint(url) if url else None
        local = (cached_hub_file(repo, names) if repo else None) or existing(url_path)
        return WeightFile(repo, names, url, url_path, local)

    def build(self, s: ModelSpec, path: str | None, dtype: str = "float32") -> tuple[nn.Module, Callable]:
        import timm

        if path is None:
            model = timm.create_model(s.name, pretrained=False)
        else:
            model = timm.create_model(f"{s.name}.{s.tag}", pretrained=True, pretrained_cfg_overlay={"file": path})
        cfg = timm.data.resolve_data_config({}, model=model)
        native = timm.data.create_transform(**cfg)
        return (model.half() if dtype == "float16" else model), native

    def settings(self) -> dict[str, Any]:
        """timm's ViT attention is one hooked module with fused attention and several
        (q/k/v norms, softmax dropout, ...) without: ViT-B/16 has 113 vs 125 layers."""
        from timm.layers import use_fused_attn

        return {"timm_fused_attn": bool(use_fused_attn())}
