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
