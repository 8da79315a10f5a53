"""torchvision networks: ``torchvision:<name>[:<weights>]`` (weights = a member of the
model's Weights enum, default ``DEFAULT`` written out), checkpoints in torch hub's cache
(``$TORCH_HOME/hub/checkpoints/<file named by the enum's url>``)."""

from __future__ import annotations

from typing import Callable

from torch import nn

from lib.models.base import (ModelError, ModelSource, ModelSpec, WeightFile, existing, family, register,
                             torch_hub_checkpoint)
from lib.models.registry import name_help, unknown_tag


def _weights_enum(name: str):
    import torchvision

    try:
        return torchvision.models.get_model_weights(name)
    except ValueError:  # an architecture without pretrained weights
        return None


@register
class TorchvisionSource(ModelSource):
    prefix = "torchvision"
    library = "torchvision"

    def parse(self, rest: str, full: str) -> ModelSpec:
        import torchvision

        arch_name, _, tag = rest.partition(":")
        if arch_name not in torchvision.models.list_models():
            raise ModelError(f"torchvision has no model {arch_name!r}; {name_help()}")
        enum = _weights_enum(arch_name)
        valid = [w.name for w in enum] if enum is not None else []
        if tag and tag != "DEFAULT" and tag not in valid:
            raise unknown_tag("torchvision", arch_name, tag, valid)
        if valid and tag in ("", "DEFAULT"):
            tag = enum.DEFAULT.name  # torchvision's default today, written out
        return ModelSpec(f"torchvision {arch_name}", family(arch_name), "supervised", "torchvision", arch_name, tag)

    def _weights(self, s: ModelSpec):
        return _weights_enum(s.name)[s.tag] if s.tag else None

    def weight_file(self, s: ModelSpec) -> WeightFile:
        w = self._weights(s)
        if w is None:
            return WeightFile(None, (), None, None, None)
        path = torch_hub_checkpoint(w.url)
        return WeightFile(None, (), w.url, path, existing(path))

    def build(self, s: ModelSpec, path: str | None, dtype: str = "float32") -> tuple[nn.Module, Callable]:
        import torchvision

        from lib.checkpoints import load_into
        from lib.models.preprocess import clip_transform

        model = torchvision.models.get_model(s.name, weights=None)
        if path is not None:
            load_into(model, path)
        w = self._weights(s)
        native = w.transforms() if w is not None else clip_transform()
        return (model.half() if dtype == "float16" else model), native
