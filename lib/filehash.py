"""Content hashes of files, remembered by file identity so that warm runs stay fast.

Why: cache keys must follow the *content* of every input file (a rewritten PNG with the
same name is a new input), and the store verifies every artifact file it reads. Hashing
gigabytes on every run would cost more than it protects, so a digest is remembered under
the file's identity (path, size, mtime, ctime, inode): any write to a file changes its
ctime, which no user tool can set back, so a remembered digest is never reused for
changed bytes.

Racy case (as in git's index): a file changed within the same clock tick as it was
hashed would keep its identity. Digests of files changed less than :data:`RACY_SECONDS`
before hashing are therefore not remembered; they are hashed again next time.

The index is an SQLite file (``<cache_dir>/.filehash.sqlite``), safe for concurrent
processes; if it cannot be used (read-only or network file system), hashing simply
happens every time.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from pathlib import Path

ALGORITHM = "sha256"  # hardware-accelerated on current CPUs (faster than blake2b here)
RACY_SECONDS = 2.0
INDEX_NAME = ".filehash.sqlite"
_CHUNK = 1 << 20

# Per-process memory of digests, keyed by identity; saves even the SQLite lookup.
_memory: dict[tuple, str] = {}
_lock = threading.Lock()


def sha256_file(path: str | os.PathLike) -> str:
    """Plain streaming SHA-256 of a file (no caching)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _identity(path: Path, st: os.stat_result) -> tuple:
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class _Index:
    """The on-disk digest index of one cache folder (SQLite, WAL mode)."""

    def __init__(self, folder: Path):
        self.path = folder / INDEX_NAME
        self._conn: sqlite3.Connection | None = None
        self.broken = False

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is None and not self.broken:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("CREATE TABLE IF NOT EXISTS digest (path TEXT PRIMARY KEY, size INT, mtime INT, "
                             "ctime INT, ino INT, algo TEXT, hex TEXT)")
                self._conn = conn
            except (sqlite3.Error, OSError):
                self.broken = True
        return self._conn

    def get(self, ident: tuple) -> str | None:
        conn = self._connect()
        if conn is None:
            return None
        try:
            row = conn.execute("SELECT size, mtime, ctime, ino, algo, hex FROM digest WHERE path=?",
                               (ident[0],)).fetchone()
        except sqlite3.Error:
            return None
        if row and tuple(row[:4]) == ident[1:] and row[4] == ALGORITHM:
            return row[5]
        return None

    def put(self, ident: tuple, digest: str) -> None:
        conn = self._connect()
        if conn is None:
            return
        try:
            conn.execute("INSERT OR REPLACE INTO digest VALUES (?, ?, ?, ?, ?, ?, ?)", (*ident, ALGORITHM, digest))
        except sqlite3.Error:
            pass  # a busy or read-only index only costs a re-hash later


_indexes: dict[Path, _Index] = {}


def _index_for(folder: Path) -> _Index:
    with _lock:
        if folder not in _indexes:
            _indexes[folder] = _Index(folder)
        return _indexes[folder]


def file_digest(path: str | os.PathLike, index_dir: str | os.PathLike | None = None) -> str:
    """SHA-256 (hex) of a file's content, remembered by (path, size, mtime, ctime, inode).

    ``index_dir``: folder of the persistent index (normally the artifact cache folder);
    ``None`` keeps digests in this process only. Raises ``FileNotFoundError`` for a
    missing file."""
    path = Path(path).absolute()
    st = path.stat()
    ident = _identity(path, st)
    cached = _memory.get(ident)
    if cached is not None:
        return cached
    index = _index_for(Path(index_dir).absolute()) if index_dir is not None else None
    if index is not None:
        cached = index.get(ident)
        if cached is not None:
            _memory[ident] = cached
            return cached
    digest = sha256_file(path)
    # Remember only what cannot be racy: a file whose last change is well before now.
    if time.time() - max(st.st_mtime_ns, st.st_ctime_ns) / 1e9 >= RACY_SECONDS:
        _memory[ident] = digest
        if index is not None:
            index.put(ident, digest)
    return digest


def forget_memory() -> None:
    """Drop this process's remembered digests (benchmarks and tests use it)."""
    _memory.clear()


def files_digest(paths: list[str | os.PathLike], root: str | os.PathLike | None = None,
                 index_dir: str | os.PathLike | None = None) -> str:
    """One SHA-256 over several files: their names (relative to ``root`` when given) and
    content digests, in the order given. For cache keys over a set of input files, e.g.
    an image folder: renaming, adding, removing or rewriting any file changes it."""
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        name = p.relative_to(root).as_posix() if root is not None else str(p)
        h.update(f"{name}\0{file_digest(p, index_dir)}\n".encode())
    return h.hexdigest()
