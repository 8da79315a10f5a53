"""Building a network for extraction: weights policy, precision, preprocessing, identity.

``load_model`` is the one entry point for named models; ``load_untrained`` builds the same
architecture on seeded random weights (the trained-vs-untrained control); ``wrap`` turns
any ``nn.Module`` plus transform into the same :class:`LoadedModel`; ``architecture_table``
gives a model's layer table without weights (built on the ``meta`` device).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd
import torch
from torch import nn

from lib.models.base import SOURCES, ModelError, ModelSpec, source_of
from lib.models.layers import check_rule, probe_layers, select_layers
from lib.models.preprocess import Preprocess, clip_transform
from lib.models.registry import spec
from lib.models.weights import ModelIdentity, effective_dtype, identity_for, resolve_weights

PREPROCESSINGS = ("clip", "native")


@dataclass
class LoadedModel:
    """A network ready for extraction: image tower in eval mode, its preprocessing, what
    weights it runs on (``identity``) and the layer rule its tables follow."""

    name: str
    module: nn.Module
    preprocess: Preprocess | None
    weights_used: str  # "pretrained" | "random" | "given"
    weights_hash: str  # blake2b of the state dict as loaded
    device: str
    seed: int
    identity: ModelIdentity | None = None
    layer_rule: str = "every_call"
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def layer_table(self) -> pd.DataFrame:
        """Every layer of the paper's types under this model's layer rule."""
        return self.layers("all")

    def layers(self, layer_set: str | list[str] = "all", rule: str | None = None) -> pd.DataFrame:
        """Layer table for a layer set: ``all``, ``blocks``, a regex, or a list of names."""
        rule = check_rule(rule or self.layer_rule)
        if rule not in self._tables:
            named = self.identity is not None and self.identity.source in SOURCES  # not wrap()ped
            layout = _original_layout(spec(self.name), self.module, rule) if named else None
            self._tables[rule] = probe_layers(self.module, device=self.device, rule=rule, layout=layout)
        return select_layers(self._tables[rule], layer_set, model=self.name)


def _original_layout(s: ModelSpec, module: nn.Module, rule: str) -> dict[str, str] | None:
    """The module names and order of the code the original study ran (rule ``original``)."""
    return source_of(s).code_source(s).original_layout(module) if rule == "original" else None


def state_hash(module: nn.Module) -> str:
    h = hashlib.blake2b(digest_size=8)
    for k, v in module.state_dict().items():
        h.update(k.encode())
        t = v.detach().cpu().contiguous().reshape(-1)
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _fix_zero_init(module: nn.Module) -> int:
    """Random init: set all-zero norm-layer scales (zero-init residual branches) to 1 and give
    all-zero linear / conv weights (torchvision's ViT head) seeded values (normal, std 0.02).

    Why: timm and open_clip zero the last BatchNorm of each bottleneck at init, torchvision
    zeroes the ViT classification head; such a layer's output is identically zero (or
    constant) for every image, and its RDM would be undefined.
    """
    fixed = 0
    with torch.no_grad():
        for m in module.modules():
            weight = getattr(m, "weight", None)
            if not isinstance(weight, torch.Tensor) or torch.any(weight):
                continue
            if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
                weight.fill_(1.0)
                fixed += 1
            elif isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.normal_(weight, std=0.02)
                fixed += 1
    return fixed


def _cast_inputs_to(dtype: torch.dtype):
    """Forward pre-hook: images arrive as float32, a float16 network gets float16 (as
    OpenAI's ``encode_image`` casts the image to the model's dtype)."""
    def hook(mod, args):
        return tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)
    return hook


def _ready(module: nn.Module, device: str, dtype: str) -> nn.Module:
    module.eval().to(device)
    for p in module.parameters():
        p.requires_grad_(False)
    if dtype == "float16":
        module.register_forward_pre_hook(_cast_inputs_to(torch.float16))
    return module


def load_model(name: str, weights: str = "auto", seed: int = 0, preprocessing: str = "clip",
               device: str = "cpu", params: dict[str, Any] | None = None, *, precision: str = "auto",
               layer_rule: str = "every_call") -> LoadedModel:
    """Build a network's image tower under a weights policy; record what was used.

    Random weights are seeded (``torch.manual_seed(seed)`` right before construction).
    ``precision``: ``auto`` runs the CLIP ViT towers in float16 on a GPU, as the original.
    ``params`` (optional) lets the provenance record land in the run's records.
    """
    if preprocessing not in PREPROCESSINGS:
        raise ModelError(f"preprocessing must be 'clip' or 'native', got {preprocessing!r}")
    check_rule(layer_rule)
    s = spec(name)
    used, path = resolve_weights(name, weights)
    dtype = effective_dtype(s, device, precision)
    torch.manual_seed(seed)
    try:
        module, native = source_of(s).build(s, path, dtype)
    except ModelError:
        raise
    except Exception as err:
        raise ModelError(f"could not build {name!r} ({s.source} {s.name}, weights {used}): {err}") from err
    fixed = _fix_zero_init(module) if used == "random" else 0
    module = _ready(module, device, dtype)
    pre = Preprocess(clip_transform(), "clip") if preprocessing == "clip" else Preprocess(native, "native")
    digest = state_hash(module)
    identity = identity_for(s, used, path, seed, dtype)
    if params is not None:
        from lib import provenance

        if used == "random":
            note = f" ({fixed} zero-initialised scales / weights given non-zero values)" if fixed else ""
            provenance.record(params, "random_weights",
                              f"{name}: seeded random weights (seed {seed}){note}", model=name,
                              seed=seed, state_hash=digest, policy=weights)
        else:
            provenance.record(params, "pretrained_weights", f"{name}: pretrained {s.source} {s.name}.{s.tag}",
                              model=name, file=path, state_hash=digest, policy=weights,
                              sha256=identity.weights_digest)
    return LoadedModel(name, module, pre, used, digest, device, seed, identity, layer_rule)


def load_untrained(name: str, seed: int = 0, **kwargs: Any) -> LoadedModel:
    """The same architecture as ``load_model(name)``, on seeded random weights: the
    control that separates what the architecture gives from what training adds."""
    return load_model(name, weights="random", seed=seed, **kwargs)


def wrap(module: nn.Module, transform: Callable | None = None, name: str | None = None, device: str = "cpu",
         layer_rule: str = "every_call") -> LoadedModel:
    """Any ``nn.Module`` (images -> outputs) plus its transform (PIL image -> tensor; None =
    the paper's CLIP transform) as a :class:`LoadedModel`. Its identity hashes the state
    dict, so other weights are another cache key."""
    check_rule(layer_rule)
    name = name or type(module).__qualname__
    tensors = list(module.parameters())
    dtype = str(tensors[0].dtype).removeprefix("torch.") if tensors else "float32"
    module = _ready(module, device, dtype)
    digest = state_hash(module)
    pre = Preprocess(transform, "given") if transform is not None else Preprocess(clip_transform(), "clip")
    identity = ModelIdentity(source="module", name=name, tag="", weights="given", seed=None, file=None,
                             weights_digest=digest, library="torch", library_version=torch.__version__,
                             settings=(), dtype=dtype)
    return LoadedModel(name, module, pre, "given", digest, device, -1, identity, layer_rule)


def architecture_table(name: str, layer_rule: str = "every_call", layer_set: str | list[str] = "all") -> pd.DataFrame:
    """A model's layer table without weights or compute: the architecture is built on the
    ``meta`` device (layer tables do not depend on weights). Falls back to a seeded CPU
    build for an architecture whose construction needs real tensors."""
    check_rule(layer_rule)
    s = spec(name)
    src = source_of(s)
    for device in ("meta", "cpu"):
        torch.manual_seed(0)
        try:
            with torch.device(device):
                module, _ = src.build(s, None)
            table = probe_layers(module.eval(), device=device, rule=layer_rule,
                                 layout=_original_layout(s, module, layer_rule))
            return select_layers(table, layer_set, model=name)
        except (NotImplementedError, RuntimeError):
            if device == "cpu":
                raise
    raise AssertionError("unreachable")
