"""Reading network checkpoints in the formats people actually save.

Why: a user's own training run, the original study's ResNet-50 checkpoints and the demo's
miniature training series all arrive as files on disk, saved in different ways (a plain
state dict, a DataParallel ``module.``-prefixed dict, a dict with a ``state_dict`` or
``model`` entry, safetensors). One reader turns each into a plain state dict, and every
failure names the file and what to do.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the fix."""


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Content hash of a checkpoint file (enters cache keys: a retrained file is a new key)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in WRAPPER_KEYS:
            if key in obj and isinstance(obj[key], dict):
                return _unwrap(obj[key], path)
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    raise CheckpointError(
        f"{path}: no state dict found (expected a dict of tensors, or a dict with one of "
        f"{', '.join(WRAPPER_KEYS)}); save it with torch.save(model.state_dict(), path)")


def strip_prefix(state: dict[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Drop a DataParallel / DistributedDataParallel prefix when every key carries it."""
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain state dict from any accepted checkpoint format, on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path or glob")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = _unwrap(torch.load(path, map_location="cpu", weights_only=True), path)
    except CheckpointError:
        raise
    except Exception as err:  # truncated, not a checkpoint, pickled objects
        raise CheckpointError(
            f"checkpoint {path} could not be read ({type(err).__name__}: {err}); is it complete "
            "and saved with torch.save(state_dict) or safetensors?") from None
    return strip_prefix(state)


def load_into(model: torch.nn.Module, path: str | Path) -> torch.nn.Module:
    """Load a checkpoint into ``model`` strictly; mismatching keys are named in the error."""
    state = load_state_dict(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or shapes:
        def few(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f" … (+{len(keys) - 5})" if len(keys) > 5 else "")
        parts = [f"missing keys: {few(missing)}" if missing else "",
                 f"unexpected keys: {few(unexpected)}" if unexpected else "",
                 f"shape mismatch: {few(shapes)}" if shapes else ""]
        raise CheckpointError(
            f"checkpoint {path} does not fit architecture {type(model).__name__} ("
            + "; ".join(p for p in parts if p) + "); check the architecture parameter")
    model.load_state_dict(state, strict=True)
    return model
