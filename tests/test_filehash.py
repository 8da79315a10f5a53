"""Content digests remembered by file identity (the mechanism cache keys over input files use)."""

import hashlib
import os
import subprocess
import sys
import time

import pytest

from lib import filehash
from lib.filehash import file_digest, files_digest


@pytest.fixture
def counting(monkeypatch):
    calls = []
    real = filehash.sha256_file
    monkeypatch.setattr(filehash, "sha256_file", lambda p: calls.append(str(p)) or real(p))
    filehash.forget_memory()
    filehash._indexes.clear()
    yield calls
    filehash.forget_memory()
    filehash._indexes.clear()


def _old_file(path, data: bytes):
    path.write_bytes(data)
    time.sleep(filehash.RACY_SECONDS + 0.05)  # not racy any more
    return path


def test_digest_is_the_sha256_of_the_content(tmp_path):
    f = tmp_path / "a.png"
    f.write_bytes(b"\x89PNG" + bytes(range(256)) * 5000)
    assert file_digest(f) == hashlib.sha256(f.read_bytes()).hexdigest()


def test_warm_lookups_do_not_rehash_and_survive_a_new_process(tmp_path, counting):
    f = _old_file(tmp_path / "x.bin", b"x" * 10_000)
    index = tmp_path / "cache"
    d = file_digest(f, index)
    assert file_digest(f, index) == d and len(counting) == 1  # memory
    code = ("import sys; from lib import filehash\n"
            "calls = []\nreal = filehash.sha256_file\n"
            "filehash.sha256_file = lambda p: calls.append(p) or real(p)\n"
            f"print(filehash.file_digest({str(f)!r}, {str(index)!r}), len(calls))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=os.getcwd())).stdout.split()
    assert out == [d, "0"]  # from the on-disk index, no hashing


def test_rewrite_with_same_size_and_restored_mtime_is_noticed(tmp_path, counting):
    f = _old_file(tmp_path / "img.png", b"A" * 4096)
    index = tmp_path / "cache"
    before = file_digest(f, index)
    st = f.stat()
    f.write_bytes(b"B" * 4096)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime: only ctime differs
    assert file_digest(f, index) == hashlib.sha256(b"B" * 4096).hexdigest() != before


def test_just_written_files_are_not_remembered(tmp_path, counting):
    f = tmp_path / "fresh.bin"
    f.write_bytes(b"1234")
    file_digest(f, tmp_path / "cache")
    file_digest(f, tmp_path / "cache")
    assert len(counting) == 2  # racy: hashed every time until it is RACY_SECONDS old


def test_unusable_index_folder_falls_back_to_hashing(tmp_path, counting):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    f = _old_file(tmp_path / "a", b"abc")
    assert file_digest(f, blocker / "cache") == hashlib.sha256(b"abc").hexdigest()


def test_files_digest_changes_with_names_content_and_membership(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    base = files_digest([a, b], root=tmp_path)
    assert files_digest([a, b], root=tmp_path) == base
    assert files_digest([a], root=tmp_path) != base
    b.write_bytes(b"TWO")
    assert files_digest([a, b], root=tmp_path) != base
    b.write_bytes(b"two")
    assert files_digest([a, b], root=tmp_path) == base
    c = tmp_path / "c.png"
    b.rename(c)
    assert files_digest([a, c], root=tmp_path) != base


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        file_digest(tmp_path / "nope")
