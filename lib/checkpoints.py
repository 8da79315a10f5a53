"""Reading network checkpoints in the formats people actually save.

Why: a user's own training run, the original study's ResNet-50 checkpoints and the demo's
miniature training series all arrive as files on disk, saved in different ways (a plain
state dict, a DataParallel ``module.``-prefixed dict, a dict with a ``state_dict`` or
``model`` entry, safetensors). One reader turns each into a plain state dict, and every
failure names the file and what to do.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from dataclasses import dataclass
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


# ----------------------------------------------------------------------------- series
# A training run saves one file per checkpoint; the analysis needs them in training order.
# The order comes from the file names: the original study's ``pre_training``,
# ``epoch_<e>_<batch>`` (within epoch e), ``epoch_<e>`` / ``epoch_<e>_`` (end of epoch e),
# a plain ``step_<n>``, or a user's regular expression with named groups.

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".tar")
_INIT_NAMES = re.compile(r"^(?:epoch_)?(?:pre_?training|init|initial|initialisation|initialization)$", re.I)
_BUILTIN_PATTERNS = (
    re.compile(r"^(?:.*?[_-])?epoch[_-]?(?P<epoch>\d+)(?:[_-](?P<batch>\d*))?$", re.I),
    re.compile(r"^(?:.*?[_-])?(?:step|iter|iteration)[_-]?(?P<step>\d+)$", re.I),
)
NAMING_HELP = ("names the series understands: 'pre_training', 'epoch_<e>_<batch>' (within epoch e), "
               "'epoch_<e>' or 'epoch_<e>_' (end of epoch e), 'step_<n>'; for other names pass a regular "
               "expression with named groups epoch, batch and/or step, e.g. "
               r"-p checkpoint_regex='ckpt-(?P<step>\d+)'")


@dataclass(frozen=True)
class TrainingTime:
    """When a checkpoint was saved, as its name says.

    ``kind``: ``init`` (before training), ``batch`` (after batch ``batch`` of epoch ``epoch``),
    ``epoch_end`` (after epoch ``epoch``, 0-based) or ``step`` (global step ``step``).
    """

    kind: str
    epoch: int | None = None
    batch: int | None = None
    step: int | None = None

    def global_step(self, steps_per_epoch: int) -> int:
        """Optimizer steps since initialisation (epochs converted with ``steps_per_epoch``)."""
        if self.kind == "init":
            return 0
        if self.kind == "step":
            return int(self.step)
        if self.kind == "epoch_end":
            return (int(self.epoch) + 1) * steps_per_epoch
        # saved after the update of batch ``batch`` (0-based): the original's epoch_0_0
        # already differs from its pre_training weights
        return int(self.epoch) * steps_per_epoch + int(self.batch) + 1

    def label(self) -> str:
        return {"init": "init", "step": f"step {self.step}", "epoch_end": f"end of epoch {self.epoch}",
                "batch": f"epoch {self.epoch}, batch {self.batch}"}[self.kind]


def compile_regex(regex: str | None) -> re.Pattern | None:
    """A user's checkpoint-name regex; it must name an ``epoch`` or ``step`` group."""
    if regex is None:
        return None
    try:
        rx = re.compile(regex)
    except re.error as err:
        raise CheckpointError(f"checkpoint_regex {regex!r} is not a valid regular expression: {err}") from None
    if not {"epoch", "step"} & set(rx.groupindex):
        raise CheckpointError(f"checkpoint_regex {regex!r} has no named group 'epoch' or 'step'; "
                              r"write e.g. '(?P<epoch>\d+)' or '(?P<step>\d+)'")
    return rx


def _from_match(m: re.Match) -> TrainingTime | None:
    groups = {k: v for k, v in m.groupdict().items() if v not in (None, "")}
    if "step" in groups:
        return TrainingTime("step", step=int(groups["step"]))
    if "epoch" in groups:
        if "batch" in groups:
            return TrainingTime("batch", epoch=int(groups["epoch"]), batch=int(groups["batch"]))
        return TrainingTime("epoch_end", epoch=int(groups["epoch"]))
    return None


def checkpoint_stem(path: str | Path) -> str:
    """File name without checkpoint suffixes (``epoch_3.pth.tar`` -> ``epoch_3``)."""
    name = Path(path).name
    while (suffix := Path(name).suffix.lower()) in CHECKPOINT_SUFFIXES and suffix:
        name = name[: -len(suffix)]
    return name


def parse_training_time(name: str, regex: str | re.Pattern | None = None) -> TrainingTime | None:
    """The training time a checkpoint name states, or None when no pattern matches.

    A user regex is tried first (``re.search`` on the name without suffixes), then the
    built-in names.
    """
    stem = checkpoint_stem(name)
    rx = compile_regex(regex) if isinstance(regex, str) else regex
    if rx is not None and (m := rx.search(stem)) and (t := _from_match(m)):
        return t
    if _INIT_NAMES.match(stem):
        return TrainingTime("init")
    for pattern in _BUILTIN_PATTERNS:
        if (m := pattern.match(stem)) and (t := _from_match(m)):
            return t
    return None


@dataclass(frozen=True)
class Checkpoint:
    """One file of a series: where it is, when it was saved, and its content hash."""

    path: Path
    name: str
    time: TrainingTime
    step: int  # global step (see TrainingTime.global_step)
    epochs: float  # training time in epochs (step / steps per epoch)
    sha256: str


def _series_files(location: str | Path) -> list[Path]:
    text = str(location)
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(os.path.expanduser(text)) if Path(p).is_file())
        where = f"glob {text!r}"
    else:
        path = Path(text).expanduser()
        if path.is_file():
            return [path]
        if not path.is_dir():
            raise CheckpointError(f"checkpoints {text!r}: no such folder or file; give a folder of checkpoint "
                                  f"files or a glob such as 'runs/resnet50/epoch_*.pth'")
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in CHECKPOINT_SUFFIXES)
        where = f"folder {text}"
    if not files:
        raise CheckpointError(f"{where} holds no checkpoint files (suffixes {', '.join(CHECKPOINT_SUFFIXES)})")
    return files


def steps_per_epoch_from(times: list[TrainingTime]) -> int:
    """Estimate of an epoch's length from the names: the largest batch number seen + 1
    (1 when no name gives a batch, so that steps then count epochs)."""
    batches = [t.batch for t in times if t.batch is not None]
    return max(batches) + 1 if batches else 1


def training_order(t: TrainingTime, steps_per_epoch: int) -> tuple[int, int]:
    """Sort key: the global step, and an epoch's end after a batch checkpoint at the same
    step (an estimated epoch length can put the last saved batch on the epoch's end)."""
    return (t.global_step(steps_per_epoch), 1 if t.kind == "epoch_end" else 0)


def find_checkpoints(location: str | Path, regex: str | None = None,
                     steps_per_epoch: int | None = None, hash_files: bool = True) -> list[Checkpoint]:
    """The checkpoints of a folder, a glob or one file, in training order, hashed.

    ``steps_per_epoch`` places ``epoch_<e>`` names on the step axis; when None it is
    estimated from the names (:func:`steps_per_epoch_from`). Names no pattern understands,
    and two files that claim the same training time, are errors that list the files.
    ``hash_files=False`` skips the content hashes (``sha256`` is then empty): a quick look.
    """
    rx = compile_regex(regex)  # a bad parameter fails before any file is read
    files = _series_files(location)
    times = {p: parse_training_time(p.name, rx) for p in files}
    unknown = [p.name for p, t in times.items() if t is None]
    if unknown:
        raise CheckpointError(f"cannot read a training time from checkpoint name(s) {', '.join(unknown[:8])}"
                              f"{' …' if len(unknown) > 8 else ''} in {location}; {NAMING_HELP}")
    spe = steps_per_epoch or steps_per_epoch_from(list(times.values()))
    if spe < 1:
        raise CheckpointError(f"steps_per_epoch must be at least 1, got {spe}")

    def order(p: Path) -> tuple:
        return training_order(times[p], spe)

    ordered = sorted(files, key=order)
    seen: dict[tuple, Path] = {}
    for p in ordered:
        k = order(p)
        if k in seen:
            raise CheckpointError(f"checkpoints {seen[k].name} and {p.name} claim the same training time "
                                  f"({times[p].label()}); keep one, or pass checkpoint_regex to tell them apart")
        seen[k] = p
    out = []
    for p in ordered:
        step = times[p].global_step(spe)
        out.append(Checkpoint(p, checkpoint_stem(p), times[p], step, step / spe,
                              file_sha256(p) if hash_files else ""))
    return out
