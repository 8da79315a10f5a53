"""A local checkpoint on a known architecture: ``file:<model name>@<checkpoint path>``.

The architecture is any other model name (``file:torchvision:resnet50@runs/epoch10.pt``,
``file:resnet50@ckpt.pt``, ``file:open_clip:RN50:openai@visual.safetensors``); its tag only
shapes the architecture (e.g. open_clip's QuickGELU for ``openai``), the weights all come
from the file. For CLIP models the checkpoint holds the image tower's state dict. The file
is loaded strictly by :func:`lib.checkpoints.load_into`, so a mismatch names the file and
the keys. Model names contain no ``@``, so the first ``@`` separates the path.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from lib.models.base import ModelError, ModelSource, ModelSpec, WeightFile, register, source_of


@register
class FileSource(ModelSource):
    prefix = "file"
    library = "torch"

    def parse(self, rest: str, full: str) -> ModelSpec:
        from lib.models.registry import spec

        arch_name, sep, path = rest.partition("@")
        if not sep or not arch_name or not path:
            raise ModelError(f"model {full!r} is not of the form file:<model name>@<checkpoint path> "
                             f"(e.g. file:torchvision:resnet50@runs/epoch10.pt)")
        if arch_name.startswith("file:"):
            raise ModelError(f"model {full!r}: the architecture of a file: model cannot itself be a file: model")
        inner = spec(arch_name)
        return ModelSpec(f"{inner.label} @ {path}", inner.arch, inner.training, "file", arch_name, "", path=path,
                         cuda_dtype=inner.cuda_dtype)

    def weight_file(self, s: ModelSpec) -> WeightFile:
        import os

        if not os.path.isfile(s.path):
            raise ModelError(f"checkpoint {s.path} of model file:{s.name}@{s.path} does not exist; check the path")
        return WeightFile(None, (), None, None, s.path)

    def architecture(self, s: ModelSpec) -> ModelSpec:
        from lib.models.registry import spec

        return spec(s.name)

    def build(self, s: ModelSpec, path: str | None, dtype: str = "float32") -> tuple[nn.Module, Callable]:
        from lib.checkpoints import load_into

        inner = self.architecture(s)
        module, native = source_of(inner).build(inner, None, dtype)
        if path is not None:
            load_into(module, path)  # tensors are cast to the module's dtypes
        return module, native

    def code_source(self, s: ModelSpec) -> ModelSource:
        return source_of(self.architecture(s))
