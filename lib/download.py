"""Resumable, verified downloads.

A download goes to ``<dest>.part``; an interrupted one resumes with an HTTP Range request
(or restarts when the server ignores ranges); the finished file is checked against the
expected size (or Content-Length) and SHA-256 when given, and only then renamed into
place, so a file at ``dest`` is always complete.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download that failed for good; the message names the URL and what went wrong."""


def sha256_of(path: str | os.PathLike, chunk: int = CHUNK) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, size: int | None, sha256: str | None, url: str) -> None:
    actual = path.stat().st_size
    if size is not None and actual != size:
        raise DownloadError(f"{url}: expected {size} bytes, got {actual}")
    if sha256 is not None:
        digest = sha256_of(path)
        if digest.lower() != sha256.lower():
            raise DownloadError(f"{url}: SHA-256 mismatch (expected {sha256}, got {digest})")


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    size: int | None = None,
    sha256: str | None = None,
    progress: bool = True,
    retries: int = 3,
    timeout: float = 30.0,
    desc: str | None = None,
) -> Path:
    """Fetch ``url`` to ``dest`` (resuming a ``.part``), verify, rename atomically.

    An existing ``dest`` that passes verification is kept (nothing is downloaded)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():
        try:
            _verify(dest, size, sha256, url)
            return dest
        except DownloadError:
            dest.unlink()
    part = dest.with_name(dest.name + ".part")
    last_err: Exception | None = None
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, size, progress, timeout, desc or dest.name)
            try:
                _verify(part, size, sha256, url)
            except DownloadError:
                part.unlink(missing_ok=True)  # corrupt: the next attempt starts afresh
                raise
            os.replace(part, dest)
            return dest
        except (urllib.error.URLError, OSError, DownloadError, http.client.HTTPException) as err:
            last_err = err
            if isinstance(err, urllib.error.HTTPError) and err.code in (401, 403, 404):
                break
            if attempt < retries:
                time.sleep(min(2.0**attempt * 0.2, 5.0))
    raise DownloadError(f"could not download {url} to {dest}: {last_err}")


def _fetch(url: str, part: Path, size: int | None, progress: bool, timeout: float, desc: str) -> None:
    have = part.stat().st_size if part.is_file() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    if size is not None and have == size:
        return
    req = urllib.request.Request(url, headers={"User-Agent": "saliency-semantics-book"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # range not satisfiable: the part is already complete
            return
        raise
    with resp:
        status = getattr(resp, "status", 200)
        length = resp.headers.get("Content-Length")
        if have and status != 206:  # server ignored the range: start over
            have = 0
        total = (int(length) + have) if length is not None else size
        mode = "ab" if have else "wb"
        bar = None
        if progress:
            from lib.progress import tqdm

            bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=desc, leave=False)
        try:
            with open(part, mode) as fh:
                while True:
                    block = resp.read(CHUNK)
                    if not block:
                        break
                    fh.write(block)
                    if bar is not None:
                        bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()
    got = part.stat().st_size
    if total is not None and got != total:
        raise DownloadError(f"{url}: connection ended after {got} of {total} bytes (will resume)")
