"""Registries behind ``python -m lib doctor`` and ``python -m lib fetch``.

Modules that need inputs register a *requirement* (a function of the profile's
parameters returning :class:`Check` results, each saying how to get what is missing) and,
where data can be downloaded, a *fetcher*. They register on import; the CLI imports
:data:`PLUGINS` first.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
from dataclasses import dataclass
from typing import Any, Callable, Iterable

PLUGINS = ("lib.stimuli", "lib.models", "lib.brain", "lib.training.pipeline")


@dataclass
class Check:
    """One checked input: what it is, whether it is there, details, and how to get it."""

    name: str
    ok: bool
    detail: str = ""
    fix: str = ""


Requirement = Callable[[dict[str, Any]], Iterable[Check]]
REQUIREMENTS: list[Requirement] = []
FETCHERS: dict[str, tuple[Callable[..., None], str]] = {}


def requirement(fn: Requirement) -> Requirement:
    """Decorator: register a check of the inputs a profile needs."""
    if fn not in REQUIREMENTS:
        REQUIREMENTS.append(fn)
    return fn


def fetcher(name: str, help: str) -> Callable:
    """Decorator: register ``python -m lib fetch <name>``; fn(params, **options)."""

    def deco(fn):
        FETCHERS[name] = (fn, help)
        return fn

    return deco


def load_plugins() -> None:
    """Import the modules that register requirements and fetchers (those that exist)."""
    for name in PLUGINS:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


@requirement
def _base_checks(params: dict[str, Any]) -> Iterable[Check]:
    from lib.config import resolve_path, pick_device, ConfigError

    cache = resolve_path(params["cache_dir"])
    try:
        cache.mkdir(parents=True, exist_ok=True)
        free_gb = shutil.disk_usage(cache).free / 1e9
        yield Check("cache folder", True, f"{cache} ({free_gb:.0f} GB free)")
    except OSError as err:
        yield Check("cache folder", False, f"{cache}: {err}", "set -p cache_dir=<a writable folder>")
    try:
        device = pick_device(params["device"])
        yield Check("device", True, _device_description(device))
    except ConfigError as err:
        yield Check("device", False, str(err), "use -p device=auto, or run on a machine with a CUDA GPU")


def _device_description(device: str) -> str:
    import os

    import torch

    if device == "cuda":
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return f"cpu ({os.cpu_count()} cores, torch threads {torch.get_num_threads()})"


def run_checks(params: dict[str, Any]) -> list[Check]:
    load_plugins()
    checks: list[Check] = []
    for req in REQUIREMENTS:
        checks.extend(req(params))
    return checks


def format_report(checks: list[Check], profile: str) -> str:
    lines = [f"doctor: inputs of profile {profile!r}"]
    for c in checks:
        lines.append(f"  [{'ok' if c.ok else 'MISSING'}] {c.name}: {c.detail}")
        if not c.ok and c.fix:
            lines.extend(f"      -> {line}" for line in c.fix.splitlines())
    missing = sum(not c.ok for c in checks)
    lines.append("all inputs present" if not missing else f"{missing} input(s) missing; see the -> lines")
    return "\n".join(lines)
