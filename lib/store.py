"""Content-addressed artifact cache: atomic, verified, safe for concurrent writers and readers.

An artifact is a folder ``<root>/<step>/<key>/`` (a symlink to its current version, see
below) holding one file per named value plus ``_meta.json``. The key hashes the step name, a per-step version string (bump it when the
step's code changes meaning) and every input that changes the result.

Integrity: ``_meta.json`` records the size and SHA-256 of every file when the artifact is
written; every read checks them (digests are remembered by file identity in
:mod:`lib.filehash`, so a warm run hashes nothing). A damaged artifact (flipped bytes,
truncated or deleted file, unreadable metadata) is never used: :meth:`Store.get_or_compute`
warns, naming the artifact, and recomputes it; :meth:`Store.load` raises
:class:`IntegrityError` naming the artifact and the fix.

Concurrency: values are written into a private temp folder (its name carries the writer's
pid and host), renamed to ``<root>/.data/<step>/<key>-<token>`` once complete, and
published by creating the symlink ``<root>/<step>/<key>`` pointing there (so a step's
folder lists exactly its published artifacts). Creating a symlink that exists fails
atomically, so when two processes compute the same artifact the first to finish wins and
the other reuses its result; replacing an artifact (``force`` or repair) swaps the symlink
with one atomic rename, so a reader sees the old or the new artifact, never a missing or
partial one. A reader that loses a race against a replacement simply reads again.
Leftovers of killed writers are removed at the next run (:meth:`Store.clean_tmp`), but
never the temp folder of a writer that is still alive.

Supported values: numpy arrays (.npy), lists of arrays (.npz, e.g. images of different
sizes), pandas DataFrames (.parquet) and JSON-able data (.json). No pickles. Steps that
write a folder tree of their own (synthetic fMRI subjects) use
:meth:`Store.get_or_compute_folder` and get the same guarantees.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from lib.filehash import file_digest

META = "_meta.json"
DATA = ".data"  # <root>/.data/<step>/<key>-<token>: the versions the <root>/<step>/<key> links point to
STALE_FOREIGN_SECONDS = 6 * 3600  # a temp folder of another host's writer: removed after this long
ORPHAN_SECONDS = 600  # a complete but unpublished data folder (writer killed between two renames)
RETIRED_GRACE_SECONDS = 30  # a replaced version stays this long, so readers that resolved it finish
_WRITER = re.compile(r"-pid(\d+)@(.+)$")
# Arrays at least this large are memory-mapped read-only on load: at paper scale the layer RDMs
# of all models and conditions (~23 GB at n = 872) then stay file-backed pages the system can
# drop, instead of anonymous memory the process must hold.
MMAP_MIN_BYTES = 64 << 20


class IntegrityError(ValueError):
    """A stored artifact does not match what was recorded when it was written."""


class ArtifactWarning(UserWarning):
    """A damaged or unreadable artifact was found and is being recomputed."""


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
        big = path.stat().st_size >= MMAP_MIN_BYTES
        return np.load(path, allow_pickle=False, mmap_mode="r" if big else None)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return [z[f"arr_{i}"] for i in range(len(z.files))]
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    with open(path) as fh:
        return json.load(fh)


def _files_of(folder: Path) -> list[Path]:
    """Every file under ``folder`` except the metadata, as sorted relative paths."""
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file() and p.name != META)


def _target(data: Path, link: Path) -> str:
    """Relative symlink target, so that the cache folder can be moved or mounted elsewhere."""
    return os.path.relpath(data, link.parent)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _retire(old: Path, key: str, published: Path) -> None:
    """A replaced version is not removed at once: a reader that resolved the link just before
    the swap may still be reading it. Its mtime marks the retirement; versions of the same
    key retired more than :data:`RETIRED_GRACE_SECONDS` ago are removed now (and
    :meth:`Store.clean_tmp` removes any left over)."""
    try:
        os.utime(old)
    except FileNotFoundError:
        return
    for p in old.parent.glob(f"{key}-*"):
        if p.resolve() != published.resolve() and _age(p) > RETIRED_GRACE_SECONDS:
            shutil.rmtree(p, ignore_errors=True)
    if old.name.startswith(".old-"):  # a pre-symlink plain folder moved aside: nobody resolves it
        shutil.rmtree(old, ignore_errors=True)


def _age(path: Path) -> float:
    try:
        return time.time() - path.lstat().st_mtime
    except FileNotFoundError:
        return 0.0


class Store:
    """The artifact cache. ``force_before``: artifacts created earlier are recomputed
    (how ``--force`` recomputes each artifact once per run, not once per chapter).
    ``verify``: check recorded checksums on every read (on by default)."""

    def __init__(self, root: str | os.PathLike, force_before: float | None = None, verify: bool = True):
        self.root = Path(root)
        self.force_before = force_before
        self.verify = verify

    def path(self, step: str, key: str) -> Path:
        return self.root / step / key

    def describe(self, step: str, key: str) -> str:
        return f"artifact {step}/{key} ({self.path(step, key)})"

    # --- reading ---------------------------------------------------------------------

    def _meta(self, step: str, key: str, folder: Path | None = None, warn: bool = True) -> dict[str, Any] | None:
        """The artifact's metadata, or None when it is missing; unreadable metadata counts
        as missing (with a warning), so even ``force`` never trips over it."""
        folder = folder if folder is not None else self.path(step, key)
        try:
            with open(folder / META) as fh:
                meta = json.load(fh)
            float(meta["created"])
            problem = None if isinstance(meta.get("files"), dict) else "written without checksums (older lib)"
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, OSError) as err:
            problem = f"unreadable {META} ({type(err).__name__}: {err})"
        if problem is None:
            return meta
        if warn:
            warnings.warn(f"{self.describe(step, key)}: {problem}; treating it as missing and recomputing it",
                          ArtifactWarning, stacklevel=3)
        return None

    def _fresh(self, meta: dict[str, Any]) -> bool:
        return self.force_before is None or float(meta["created"]) >= self.force_before

    def exists(self, step: str, key: str) -> bool:
        """A complete artifact with readable metadata, made in this run when forcing."""
        meta = self._meta(step, key, warn=False)
        return meta is not None and self._fresh(meta)

    def _verified(self, step: str, key: str, folder: Path, meta: dict[str, Any], hashed: bool = True) -> None:
        """Raise :class:`IntegrityError` unless every recorded file has its recorded size and
        digest (``hashed=False``: sizes only, for the folder this process has just written
        and hashed)."""
        for rel, rec in meta["files"].items():
            p = folder / rel
            problem = None
            try:
                size = p.stat().st_size
                if size != rec["size"]:
                    problem = f"{rel} has {size} bytes, {rec['size']} were written"
                elif self.verify and hashed and file_digest(p, self.root) != rec["sha256"]:
                    problem = f"{rel} changed since it was written (checksum mismatch)"
            except FileNotFoundError:
                problem = f"{rel} is missing"
            if problem:
                raise IntegrityError(f"{self.describe(step, key)} is damaged: {problem}. Rerun with "
                                     f"-p force=true, or delete {self.path(step, key)}, to recompute it")

    def _read(self, step: str, key: str, load_values: bool,
              written: str | None = None) -> tuple[Path, dict[str, Any] | None]:
        """Resolve the published version once and read it; if a concurrent writer replaced
        (and removed) that version while we read, read the new one."""
        link = self.path(step, key)
        for _ in range(10):
            folder = Path(os.path.realpath(link))
            meta = self._meta(step, key, folder, warn=False)
            if meta is None:
                if os.path.realpath(link) != str(folder):
                    continue  # replaced under our feet
                raise IntegrityError(f"{self.describe(step, key)} is missing or its {META} is unreadable; "
                                     "rerun with -p force=true to recompute it")
            try:
                self._verified(step, key, folder, meta, hashed=folder.name != written)
                if not load_values:
                    return folder, None
                values = {}
                for rel in meta["files"]:
                    p = folder / rel
                    try:
                        values[p.stem] = _load(p)
                    except FileNotFoundError:
                        raise
                    except Exception as err:  # checksum matched (or verify=False) but the file does not parse
                        raise IntegrityError(f"{self.describe(step, key)}: {rel} cannot be read ({err}); rerun "
                                             "with -p force=true to recompute it") from None
                return folder, values
            except (FileNotFoundError, IntegrityError) as err:
                if os.path.realpath(link) != str(folder):
                    continue  # a writer replaced the version we were reading: read the new one
                if isinstance(err, FileNotFoundError):
                    raise IntegrityError(f"{self.describe(step, key)} is damaged: {err.filename} vanished while "
                                         "being read; rerun with -p force=true to recompute it") from None
                raise
        raise IntegrityError(f"{self.describe(step, key)} kept changing while being read; is a writer looping?")

    def load(self, step: str, key: str) -> dict[str, Any]:
        """The artifact's values, checked against the checksums recorded when written."""
        return self._read(step, key, load_values=True)[1]  # type: ignore[return-value]

    def _usable(self, step: str, key: str, load_values: bool, warn: bool = True) -> tuple[bool, dict[str, Any] | None]:
        """(True, values) for a complete, fresh, intact artifact; damage is warned about."""
        meta = self._meta(step, key, warn=warn)
        if meta is None or not self._fresh(meta):
            return False, None
        try:
            return True, self._read(step, key, load_values)[1]
        except IntegrityError as err:
            if warn:
                warnings.warn(f"{err}; recomputing it", ArtifactWarning, stacklevel=3)
            return False, None

    # --- writing ---------------------------------------------------------------------

    def _publish(self, step: str, key: str, write: Callable[[Path], None], meta: dict[str, Any] | None,
                 replace: bool) -> str | None:
        """Write into a private temp folder, then publish it atomically under ``<key>``.

        ``replace=False``: an intact artifact published meanwhile by another process wins
        (ours is discarded). ``replace=True``: ours replaces whatever is there. Returns the
        name of the data folder published, or None when another writer's was kept."""
        final = self.path(step, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex[:12]
        versions = self.root / DATA / step
        versions.mkdir(parents=True, exist_ok=True)
        tmp = versions / f".tmp-{key}-{token}-pid{os.getpid()}@{socket.gethostname()}"
        data = versions / f"{key}-{token}"
        tmp.mkdir()
        try:
            write(tmp)
            files = {p.as_posix(): {"size": (tmp / p).stat().st_size, "sha256": file_digest(tmp / p)}
                     for p in _files_of(tmp)}
            record = {"step": step, "key": key, "created": time.time(), **(meta or {}), "files": files}
            with open(tmp / META, "w") as fh:
                json.dump(record, fh, default=str)
            tmp.rename(data)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            os.symlink(_target(data, final), final)  # atomic "create if absent": first finished wins
            return data.name
        except FileExistsError:
            pass
        if not replace and self._usable(step, key, load_values=False, warn=False)[0]:
            shutil.rmtree(data, ignore_errors=True)  # another writer finished first: reuse theirs
            return None
        self._swap(final, data)
        return data.name

    def _swap(self, final: Path, data: Path) -> None:
        """Point ``final`` at ``data`` in one atomic rename; remove the version it replaced."""
        old: Path | None = None
        if final.is_symlink():
            old = final.parent / os.readlink(final)
        elif final.exists():  # a plain folder (cache written before symlinks): move it aside first
            old = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
            try:
                final.rename(old)
            except FileNotFoundError:
                old = None
        link = final.parent / f".lnk-{final.name}-{uuid.uuid4().hex[:8]}"
        os.symlink(_target(data, final), link)
        os.replace(link, final)
        if old is not None and old.resolve() != data.resolve():
            _retire(old, final.name, data)

    def save(self, step: str, key: str, values: dict[str, Any], meta: dict[str, Any] | None = None) -> Path:
        """Write (or replace) an artifact atomically, recording a checksum per file."""

        def write(folder: Path) -> None:
            for name, value in values.items():
                _save(folder, name, value)

        self._publish(step, key, write, meta, replace=True)
        return self.path(step, key)

    def get_or_compute(
        self,
        step: str,
        version: str,
        inputs: dict[str, Any],
        compute: Callable[[], dict[str, Any]],
    ) -> dict[str, Any]:
        """Load the artifact for these inputs, or compute, save and return it.

        A damaged artifact is recomputed with an :class:`ArtifactWarning`; when another
        process publishes the same artifact first, its result is used."""
        key = make_key(step, version, inputs)
        ok, values = self._usable(step, key, load_values=True)
        if ok:
            return values  # type: ignore[return-value]
        start = time.time()
        computed = compute()
        extra = {"version": version, "seconds": round(time.time() - start, 3), "inputs": _canonical(inputs)}

        def write(folder: Path) -> None:
            for name, value in computed.items():
                _save(folder, name, value)

        written = self._publish(step, key, write, extra, replace=False)
        return self._read(step, key, load_values=True, written=written)[1]  # type: ignore[return-value]

    def get_or_compute_folder(self, step: str, version: str, inputs: dict[str, Any],
                              write: Callable[[Path], None]) -> Path:
        """Like :meth:`get_or_compute` for a step that writes a folder tree of its own:
        ``write(folder)`` fills an empty folder; returns the verified artifact folder."""
        key = make_key(step, version, inputs)
        if not self._usable(step, key, load_values=False)[0]:
            meta: dict[str, Any] = {"version": version, "inputs": _canonical(inputs)}

            def timed_write(folder: Path) -> None:
                start = time.time()
                write(folder)
                meta["seconds"] = round(time.time() - start, 3)

            written = self._publish(step, key, timed_write, meta, replace=False)
            self._read(step, key, load_values=False, written=written)
        return self.path(step, key)

    # --- housekeeping ----------------------------------------------------------------

    def clean_tmp(self) -> int:
        """Remove leftovers of killed writers; returns how many were removed.

        A temp folder is removed when its writer (pid in its name) is dead on this host,
        when it was written on another host more than :data:`STALE_FOREIGN_SECONDS` ago,
        or when its name carries no writer (older code). A live writer's temp folder is
        kept. Complete data folders no artifact points to are removed after
        :data:`ORPHAN_SECONDS`."""
        removed = 0
        host = socket.gethostname()
        leftovers = [*self.root.glob(f"{DATA}/*/.tmp-*"), *self.root.glob("*/.tmp-*"), *self.root.glob("*/.lnk-*")]
        for p in leftovers:
            m = _WRITER.search(p.name)
            if m is None:
                stale = not p.name.startswith(".lnk-") or _age(p) > ORPHAN_SECONDS
            elif m.group(2) == host:
                stale = not _pid_alive(int(m.group(1)))
            else:
                stale = _age(p) > STALE_FOREIGN_SECONDS
            if stale:
                removed += self._remove(p)
        for p in self.root.glob("*/.old-*"):
            removed += self._remove(p)
        for p in self.root.glob(f"{DATA}/*/*"):
            if p.name.startswith("."):
                continue
            link = self.root / p.parent.relative_to(self.root / DATA) / p.name.rsplit("-", 1)[0]
            published = link.is_symlink() and Path(os.path.realpath(link)) == p.resolve()
            if not published and _age(p) > ORPHAN_SECONDS:
                removed += self._remove(p)
        return removed

    @staticmethod
    def _remove(p: Path) -> int:
        if p.is_symlink() or p.is_file():
            p.unlink(missing_ok=True)
        else:
            shutil.rmtree(p, ignore_errors=True)
        return 1


_cleaned_roots: set[Path] = set()  # housekeeping runs once per process and cache folder


def store_for(params: dict[str, Any]) -> Store:
    """The store a chapter or CLI call should use for these parameters; the first call in
    a process removes leftovers of killed writers."""
    from lib.config import resolve_path

    force_before = None
    if params.get("force"):
        force_before = _run_started(params.get("run_dir"))
    store = Store(resolve_path(params["cache_dir"]), force_before=force_before)
    if store.root not in _cleaned_roots:
        _cleaned_roots.add(store.root)
        store.clean_tmp()
    return store


_PROCESS_START = time.time()


def _run_started(run_dir: str | None) -> float:
    """Start time of the build this chapter belongs to (so --force recomputes once per run)."""
    if run_dir:
        manifest = Path(run_dir) / "run.json"
        if manifest.is_file():
            with open(manifest) as fh:
                return float(json.load(fh)["started"])
    return _PROCESS_START
