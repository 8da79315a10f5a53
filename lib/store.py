"""Content-addressed artifact cache with atomic writes.

An artifact is a folder ``<root>/<step>/<key>/`` holding one file per named value plus
``_meta.json``. The key hashes the step name, a per-step version string (bump it when the
step's code changes meaning) and every input that changes the result. Values are written
into a temporary folder that is renamed into place only once complete, so a crash never
leaves an artifact a later run would trust; a rerun simply resumes from what finished.

Supported values: numpy arrays (.npy), lists of arrays (.npz, e.g. images of different
sizes), pandas DataFrames (.parquet) and JSON-able data (.json). No pickles.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

META = "_meta.json"


def _canonical(obj: Any) -> Any:
    """A JSON-able form of a key ingredient that changes whenever the ingredient does."""
    if hasattr(obj, "cache_key"):
        return {"__key__": obj.cache_key}
    if isinstance(obj, np.ndarray):
        digest = hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest()
        return {"__array__": [str(obj.dtype), list(obj.shape), digest]}
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if isinstance(obj, float):
        return repr(obj)  # 0.1 and 0.1000000001 must differ; 1 and 1.0 hash alike below
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    raise TypeError(f"cannot use {type(obj).__name__} as a cache-key ingredient; pass its parameters")


def make_key(step: str, version: str, inputs: dict[str, Any]) -> str:
    """Hash of everything that determines an artifact (20 hex digits)."""
    blob = json.dumps({"step": step, "version": version, "inputs": _canonical(inputs)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _save(folder: Path, name: str, value: Any) -> None:
    if isinstance(value, np.ndarray):
        np.save(folder / f"{name}.npy", value, allow_pickle=False)
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, np.ndarray) for v in value):
        np.savez(folder / f"{name}.npz", *value)
    elif isinstance(value, pd.DataFrame):
        value.to_parquet(folder / f"{name}.parquet", index=False)
    else:
        with open(folder / f"{name}.json", "w") as fh:
            json.dump(value, fh)


def _load(path: Path) -> Any:
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return [z[f"arr_{i}"] for i in range(len(z.files))]
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    with open(path) as fh:
        return json.load(fh)


class Store:
    """The artifact cache. ``force_before``: artifacts created earlier are recomputed
    (how ``--force`` recomputes each artifact once per run, not once per chapter)."""

    def __init__(self, root: str | os.PathLike, force_before: float | None = None):
        self.root = Path(root)
        self.force_before = force_before

    def path(self, step: str, key: str) -> Path:
        return self.root / step / key

    def exists(self, step: str, key: str) -> bool:
        meta = self.path(step, key) / META
        if not meta.is_file():
            return False
        if self.force_before is None:
            return True
        with open(meta) as fh:
            return json.load(fh)["created"] >= self.force_before

    def load(self, step: str, key: str) -> dict[str, Any]:
        folder = self.path(step, key)
        return {p.stem: _load(p) for p in sorted(folder.iterdir()) if p.name != META}

    def save(self, step: str, key: str, values: dict[str, Any], meta: dict[str, Any] | None = None) -> Path:
        """Write atomically: a temp folder beside the target, renamed when complete."""
        final = self.path(step, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            for name, value in values.items():
                _save(tmp, name, value)
            with open(tmp / META, "w") as fh:
                json.dump({"step": step, "key": key, "created": time.time(), **(meta or {})}, fh, default=str)
            if final.exists():
                old = final.parent / f".old-{key}-{uuid.uuid4().hex[:8]}"
                final.rename(old)
                shutil.rmtree(old, ignore_errors=True)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def get_or_compute(
        self,
        step: str,
        version: str,
        inputs: dict[str, Any],
        compute: Callable[[], dict[str, Any]],
    ) -> dict[str, Any]:
        """Load the artifact for these inputs, or compute, save and return it."""
        key = make_key(step, version, inputs)
        if self.exists(step, key):
            return self.load(step, key)
        start = time.time()
        values = compute()
        self.save(step, key, values, {"version": version, "seconds": round(time.time() - start, 3),
                                      "inputs": _canonical(inputs)})
        return self.load(step, key)

    def clean_tmp(self) -> int:
        """Remove leftovers of crashed writes; returns how many were removed."""
        leftovers = [p for p in self.root.glob("*/.tmp-*")] + [p for p in self.root.glob("*/.old-*")]
        for p in leftovers:
            shutil.rmtree(p, ignore_errors=True)
        return len(leftovers)


def store_for(params: dict[str, Any]) -> Store:
    """The store a chapter or CLI call should use for these parameters."""
    from lib.config import resolve_path

    force_before = None
    if params.get("force"):
        force_before = _run_started(params.get("run_dir"))
    return Store(resolve_path(params["cache_dir"]), force_before=force_before)


_PROCESS_START = time.time()


def _run_started(run_dir: str | None) -> float:
    """Start time of the build this chapter belongs to (so --force recomputes once per run)."""
    if run_dir:
        manifest = Path(run_dir) / "run.json"
        if manifest.is_file():
            with open(manifest) as fh:
                return float(json.load(fh)["started"])
    return _PROCESS_START
