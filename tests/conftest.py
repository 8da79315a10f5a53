"""Test-wide settings: never touch the network; keep every cache in a temp folder."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

from lib.config import load_profile  # noqa: E402


@pytest.fixture
def tiny_params(tmp_path):
    """The tiny profile with its artifact cache in a fresh temp folder."""
    return load_profile("tiny", {"cache_dir": str(tmp_path / "cache"), "data_dir": str(tmp_path / "raw")})


@pytest.fixture(scope="session")
def tiny_book(tmp_path_factory):
    """The whole book built once per test session with the tiny profile (about 2–4 minutes
    on 2 cores); the end-to-end and browser tests both read it. Returns the build folder
    (``html/``, ``executed/``, ``run/``)."""
    from lib.build import build

    root = tmp_path_factory.mktemp("tiny-book")
    out = root / "build"
    build("tiny", {"cache_dir": str(root / "cache")}, out=out, log=lambda *a, **k: None)
    return out
