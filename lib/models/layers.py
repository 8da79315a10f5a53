"""Layer tables: which module outputs are a network's layers, in which order.

Two rules (parameter ``layer_rule``):

- ``every_call`` (this project's fix): every call of a module of the paper's types is one
  layer, in execution order; a module called k times gives layers ``name#0`` … ``name#k-1``.
- ``original`` (as the original study hooked): modules of the paper's types in
  registration order (``named_modules`` of the code the original ran, see
  ``ModelSource.original_layout``), each once, at its *last* call (a dict of hook outputs
  keeps the last write), named as that code named it; modules never called are absent.

Both tables have the same columns; ``call_index`` is the call the engine must read (for
``original``, the last call) and ``batch_axis`` makes sequence-first outputs (OpenAI CLIP's
transformer) batch-first.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from lib.models.base import ModelError
from lib.models.preprocess import IMAGE_SIZE

# The module types the paper hooked.
PAPER_TYPES: tuple[type, ...] = (
    nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.LayerNorm, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d,
    nn.Dropout, nn.MultiheadAttention,
)
LAYER_RULES = ("every_call", "original")
TABLE_COLUMNS = ["model", "layer", "module", "call_index", "n_calls", "depth", "rel_depth", "block",
                 "type", "shape", "numel", "bytes", "batch_axis"]


def check_rule(rule: str) -> str:
    if rule not in LAYER_RULES:
        raise ModelError(f"layer_rule must be one of {list(LAYER_RULES)}, got {rule!r}")
    return rule


def is_block(module: nn.Module) -> bool:
    """Residual bottleneck / transformer block containers (by class name, across libraries)."""
    cls = type(module).__name__
    return cls.endswith("Block") or cls.endswith("Bottleneck") or cls in ("BasicBlock",)


def candidate_modules(model: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """name -> (module, kind) for the paper's layer types ("layer") and blocks ("block")."""
    out: dict[str, tuple[nn.Module, str]] = {}
    for qname, m in model.named_modules():
        if not qname:
            continue
        if isinstance(m, PAPER_TYPES):
            out[qname] = (m, "layer")
        elif is_block(m):
            out[qname] = (m, "block")
    return out


def first_tensor(out: Any) -> torch.Tensor | None:
    """Module output -> the tensor the paper analysed (first element of tuples/lists)."""
    while isinstance(out, (tuple, list)):
        if not out:
            return None
        out = out[0]
    return out if isinstance(out, torch.Tensor) else None


def _outermost_blocks(names: list[str]) -> list[str]:
    names = sorted(names)
    keep = []
    for n in names:
        if not any(n.startswith(k + ".") for k in keep):
            keep.append(n)
    return keep


def _input_device(model: nn.Module, device: str) -> str:
    p = next(iter(model.parameters()), None)
    return "meta" if p is not None and p.is_meta else device


@torch.inference_mode()
def probe_layers(model: nn.Module, device: str = "cpu", size: int = IMAGE_SIZE, seed: int = 0,
                 rule: str = "every_call", layout: dict[str, str] | None = None) -> pd.DataFrame:
    """Run 1 and then 2 synthetic images through the model and list the hooked calls.

    The batch axis of each output is the one whose size goes 1 -> 2 (handles
    sequence-first transformer outputs); per-image size plans the memory budget. A model
    on the ``meta`` device gives the same table without computing anything. ``layout``
    (rule ``original``): module name -> the original code's name, in its registration
    order (default: the module's own names and order).
    """
    check_rule(rule)
    cands = candidate_modules(model)
    g = torch.Generator().manual_seed(seed)
    x2 = torch.randn(2, 3, size, size, generator=g).to(_input_device(model, device))
    runs: list[list[tuple[str, tuple[int, ...]]]] = []
    for x in (x2[:1], x2):
        events: list[tuple[str, tuple[int, ...]]] = []
        handles = []
        for qname, (m, _) in cands.items():
            def hook(mod, inp, out, _q=qname, _ev=events):
                t = first_tensor(out)
                _ev.append((_q, tuple(t.shape) if t is not None else ()))
            handles.append(m.register_forward_hook(hook))
        try:
            model(x)
        finally:
            for h in handles:
                h.remove()
        runs.append(events)
    if [e[0] for e in runs[0]] != [e[0] for e in runs[1]]:
        raise ModelError("the model calls its modules in a different order for 1 and 2 images; cannot map layers")
    blocks = _outermost_blocks([q for q, (m, k) in cands.items() if k == "block"])
    rows, counts = [], {}
    seen_block = False
    for (qname, s1), (_, s2) in zip(*runs):
        if not s1:
            counts[qname] = counts.get(qname, 0) + 1
            continue
        m, kind = cands[qname]
        k = counts.get(qname, 0)
        counts[qname] = k + 1  # every call counts, so the engine's call numbering matches
        axes = [i for i, (a, b) in enumerate(zip(s1, s2)) if a == 1 and b == 2] if len(s1) == len(s2) else []
        if len(axes) != 1:
            continue  # no batch axis (e.g. a module applied to shared parameters): not an image layer
        parent = next((b for b in blocks if qname == b or qname.startswith(b + ".")), None)
        if parent is not None:
            seen_block = True
            block = parent
        else:
            block = "head" if seen_block else "stem"
        per_image = [d for i, d in enumerate(s1) if i != axes[0]]
        numel = int(np.prod(per_image)) if per_image else 1
        rows.append(dict(module=qname, call_index=k, kind=kind, block=block, type=type(m).__name__,
                         shape="x".join(map(str, per_image)), numel=numel, batch_axis=axes[0]))
    df = pd.DataFrame(rows)
    n_calls = df["module"].map(counts)
    df["n_calls"] = n_calls
    if rule == "original":
        return _last_call_in_registration_order(df, layout or {q: q for q, _ in model.named_modules() if q})
    df["name"] = [m if c == 1 else f"{m}#{k}" for m, k, c in zip(df.module, df.call_index, n_calls)]
    df["bytes"] = df["numel"] * 4
    return df


def _last_call_in_registration_order(calls: pd.DataFrame, layout: dict[str, str]) -> pd.DataFrame:
    """The original study's table: one row per module (its last call), ordered as the
    original code registered the modules, under the original code's names."""
    rank = {q: i for i, q in enumerate(layout)}
    last = calls[calls.call_index == calls.n_calls - 1]
    df = last.assign(_reg=last.module.map(rank)).sort_values("_reg", kind="stable").drop(columns="_reg")
    df = df.reset_index(drop=True)
    df["name"] = df["module"].map(layout)
    df["bytes"] = df["numel"] * 4
    return df


def select_layers(probe: pd.DataFrame, layer_set: str | list[str] = "all", model: str = "") -> pd.DataFrame:
    """Filter a probe table to a layer set and number depth 0..L-1 (rel_depth in [0, 1])."""
    layers = probe[probe.kind == "layer"]
    if isinstance(layer_set, (list, tuple)):
        missing = [n for n in layer_set if n not in set(probe.name)]
        if missing:
            raise ModelError(f"{model}: no layers named {missing}; layer names are: {', '.join(probe.name)}")
        df = probe[probe.name.isin(layer_set)]
    elif layer_set == "all":
        df = layers
    elif layer_set == "blocks":
        df = probe[probe.kind == "block"]
        if df.empty:
            raise ModelError(f"{model}: found no residual/transformer blocks; use layers=all or a regex")
    else:
        try:
            rx = re.compile(layer_set)
        except re.error as err:
            raise ModelError(f"layers={layer_set!r} is not all, blocks or a valid regular expression: {err}") from None
        df = layers[[bool(rx.search(n)) for n in layers.name]]
        if df.empty:
            raise ModelError(f"{model}: layer regex {layer_set!r} matches no layer; layer names are: "
                             f"{', '.join(layers.name)}")
    df = df.reset_index(drop=True).copy()
    df["layer"] = df["name"]
    df["model"] = model
    df["depth"] = np.arange(len(df))
    df["rel_depth"] = df["depth"] / max(len(df) - 1, 1)
    return df[TABLE_COLUMNS]
