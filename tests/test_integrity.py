"""Store integrity (issue 14): damaged artifacts are never used; force repairs everything."""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from lib.store import ArtifactWarning, IntegrityError, Store, make_key, store_for

VALUES = {
    "npy": lambda: {"x": np.arange(200, dtype=np.float64).reshape(20, 10) / 7.0},
    "npz": lambda: {"images": [np.full((6, 5, 3), 7, np.uint8), np.arange(24, dtype=np.uint8).reshape(2, 4, 3)]},
    "parquet": lambda: {"table": pd.DataFrame({"id": ["a", "b", "c"], "r": [0.25, -0.5, 0.125]})},
    "json": lambda: {"info": {"layers": ["l1", "l2"], "rho": [0.5, -0.279]}},
}


def _equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], pd.DataFrame):
            pd.testing.assert_frame_equal(a[k], b[k])
        elif isinstance(a[k], list) and a[k] and isinstance(a[k][0], np.ndarray):
            assert len(a[k]) == len(b[k]) and all(np.array_equal(x, y) for x, y in zip(a[k], b[k]))
        elif isinstance(a[k], np.ndarray):
            np.testing.assert_array_equal(a[k], b[k])
        else:
            assert a[k] == b[k]


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip(path):
    data = bytearray(path.read_bytes())
    i = len(data) - 3  # inside the payload, not the header: the file still parses
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", sorted(VALUES))
@pytest.mark.parametrize("damage", [_truncate, _flip, os.remove], ids=["truncate", "flip", "delete"])
def test_damaged_artifact_is_recomputed_identically_with_a_warning(tmp_path, kind, damage):
    store, calls = Store(tmp_path), []

    def compute():
        calls.append(1)
        return VALUES[kind]()

    first = store.get_or_compute("step", "1", {"k": kind}, compute)
    key = make_key("step", "1", {"k": kind})
    (victim,) = [p for p in store.path("step", key).iterdir() if p.suffix == f".{kind}" and p.name != "_meta.json"]
    damage(victim)

    with pytest.raises(IntegrityError) as err:  # a plain load names the artifact and the fix
        store.load("step", key)
    assert f"step/{key}" in str(err.value) and victim.name in str(err.value) and "force=true" in str(err.value)

    with pytest.warns(ArtifactWarning, match=f"step/{key}"):
        again = store.get_or_compute("step", "1", {"k": kind}, compute)
    assert calls == [1, 1]
    _equal(first, again)
    _equal(first, store.load("step", key))  # the repaired artifact verifies


@pytest.mark.parametrize("garbage", [b"", b"{not json", b"[1, 2]", b'{"created": "yesterday"}', b"\xff\xfe\x00"])
@pytest.mark.parametrize("force", [False, True])
def test_corrupt_meta_is_treated_as_missing_even_with_force(tmp_path, garbage, force):
    params = {"cache_dir": str(tmp_path / "c"), "force": False, "run_dir": None}
    store, calls = store_for(params), []
    compute = lambda: calls.append(1) or {"x": np.arange(5)}  # noqa: E731
    store.get_or_compute("s", "1", {}, compute)
    (store.path("s", make_key("s", "1", {})) / "_meta.json").write_bytes(garbage)
    again = store_for(dict(params, force=force))
    with pytest.warns(ArtifactWarning, match="_meta.json"):
        out = again.get_or_compute("s", "1", {}, compute)
    np.testing.assert_array_equal(out["x"], np.arange(5))
    assert calls == [1, 1] and again.exists("s", make_key("s", "1", {}))


def test_artifact_of_an_older_store_without_checksums_is_recomputed(tmp_path):
    store = Store(tmp_path)
    key = make_key("s", "1", {})
    legacy = store.path("s", key)  # the old layout: a plain folder, no checksums
    legacy.mkdir(parents=True)
    np.save(legacy / "x.npy", np.arange(3) + 100)
    (legacy / "_meta.json").write_text(json.dumps({"step": "s", "key": key, "created": time.time()}))
    with pytest.warns(ArtifactWarning, match="without checksums"):
        out = store.get_or_compute("s", "1", {}, lambda: {"x": np.arange(3)})
    np.testing.assert_array_equal(out["x"], np.arange(3))
    assert store.path("s", key).is_symlink() and [p.name for p in (store.root / "s").iterdir()] == [key]


def test_verification_is_remembered_per_file_identity_but_catches_rewrites(tmp_path):
    """Warm reads do not rehash; any rewrite (new ctime) is hashed again and caught."""
    from lib import filehash

    store = Store(tmp_path)
    store.get_or_compute("s", "1", {}, lambda: {"x": np.arange(1000.0)})
    key = make_key("s", "1", {})
    f = store.path("s", key) / "x.npy"
    old = time.time() - 60
    os.utime(f, (old, old))  # not racy any more (ctime is still now, so wait it out below)
    time.sleep(filehash.RACY_SECONDS + 0.1)
    store.load("s", key)
    calls = []
    real = filehash.sha256_file
    filehash.sha256_file = lambda p: calls.append(p) or real(p)
    try:
        filehash.forget_memory()
        store.load("s", key)  # from the on-disk index: no hashing
        assert calls == []
        data = bytearray(f.read_bytes())
        data[-1] ^= 1
        f.write_bytes(bytes(data))
        os.utime(f, (old, old))  # even with the old mtime restored, the ctime changed
        with pytest.raises(IntegrityError, match="checksum mismatch"):
            store.load("s", key)
        assert calls
    finally:
        filehash.sha256_file = real


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temp_folders_are_removed_but_a_live_writers_is_kept(tmp_path):
    store = Store(tmp_path)
    store.get_or_compute("s", "1", {}, lambda: {"x": np.arange(3)})
    host = socket.gethostname()
    versions = tmp_path / ".data" / "s"
    dead = versions / f".tmp-abc-123-pid{_dead_pid()}@{host}"
    live = versions / f".tmp-abc-456-pid{os.getpid()}@{host}"
    foreign_fresh = versions / ".tmp-abc-789-pid1@some-other-host"
    old_leftover = tmp_path / "s" / ".old-abc-1234"
    orphan = versions / "abcdef-0123"  # complete but never published (writer killed between renames)
    for p in (dead, live, foreign_fresh, old_leftover, orphan):
        p.mkdir()
        (p / "x.npy").write_bytes(b"half")
    long_ago = time.time() - 3600
    os.utime(orphan, (long_ago, long_ago))
    assert store.clean_tmp() == 3
    assert live.exists() and foreign_fresh.exists()
    assert not dead.exists() and not old_leftover.exists() and not orphan.exists()
    assert store.load("s", make_key("s", "1", {}))["x"].tolist() == [0, 1, 2]  # the artifact itself untouched


def test_the_next_run_cleans_leftovers_of_a_killed_writer(tmp_path):
    """A writer killed mid-write (SIGKILL) leaves a temp folder; the next run's store removes it."""
    cache = tmp_path / "c"
    code = (
        "import os, time, numpy as np\n"
        "from lib.store import Store\n"
        f"s = Store({str(cache)!r})\n"
        "def write(folder):\n"
        "    np.save(folder / 'x.npy', np.arange(10))\n"
        "    open(folder / 'ready', 'w').close()\n"
        "    time.sleep(60)\n"
        "s.get_or_compute_folder('s', '1', {}, write)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=os.getcwd()))
    try:
        deadline = time.time() + 60
        while not list(cache.glob(".data/s/.tmp-*/ready")) and time.time() < deadline:
            time.sleep(0.05)
        assert list(cache.glob(".data/s/.tmp-*")), "the writer never started"
        assert Store(cache).clean_tmp() == 0  # alive: kept
    finally:
        proc.kill()
        proc.wait()
    store_for({"cache_dir": str(cache), "force": False, "run_dir": None})  # the next run
    assert not list(cache.glob(".data/s/.tmp-*"))
