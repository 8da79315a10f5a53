"""USE v4 loading (the paper's caption model) on a tiny SavedModel the test writes, offline.

TensorFlow runs in child processes only (it crashes a process that also runs PyTorch)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

pytestmark = [pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason="TensorFlow (the optional `use` extra: pip install -e .[use]) is not installed here"),
    pytest.mark.slow]  # each TensorFlow child process takes ~10-30 s to start

TINY_USE = """
import sys, tensorflow as tf

class Tiny(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, sentences):
        return tf.one_hot(tf.strings.length(sentences) % 512, 512) + 0.5

tf.saved_model.save(Tiny(), sys.argv[1])
"""


@pytest.fixture(scope="module")
def tiny_use(tmp_path_factory):
    """strings -> 512-d: one-hot of the string's length mod 512, plus 0.5 (USE's signature)."""
    folder = tmp_path_factory.mktemp("tiny_use") / "model"
    subprocess.run([sys.executable, "-c", TINY_USE, str(folder)], check=True, capture_output=True)
    return folder


def test_use_v4_loads_from_the_cache_dir_and_embeds_caption_means(tiny_use, tmp_path, monkeypatch):
    import shutil

    from lib.stimuli import captions as C
    from lib.stimuli.checks import caption_model_check

    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "tfhub"))
    C.load_sentence_model.cache_clear()
    assert not caption_model_check("use-v4").ok and "downloads on first use" in caption_model_check("use-v4").detail
    shutil.copytree(tiny_use, tmp_path / "tfhub" / C.USE_FOLDER)
    assert caption_model_check("use-v4").ok
    caps = {"a": ["abc", "abcdef"], "b": ["x" * 600]}
    emb = C.embed_captions(caps, "use-v4")
    expected = np.full((2, 512), 0.5)
    expected[0, 3] += 0.5
    expected[0, 6] += 0.5
    expected[1, 600 % 512] += 1.0
    np.testing.assert_allclose(emb, expected, atol=1e-6)
    assert emb.dtype == np.float32
    C.load_sentence_model.cache_clear()
    assert "tensorflow" not in sys.modules  # it ran in a child process


def test_use_v4_offline_without_the_model_names_where_it_goes(tmp_path, monkeypatch):
    import lib.download as dl
    from lib.stimuli import captions as C

    def no_network(url, dest, **_):
        raise dl.DownloadError(f"could not download {url}: no network")

    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(dl, "download", no_network)
    with pytest.raises(OSError, match="downloads on first use") as err:
        C.load_use()
    assert str(tmp_path / "empty") in str(err.value)


def test_use_v4_is_unpacked_from_its_archive(tiny_use, tmp_path, monkeypatch):
    import tarfile

    import lib.download as dl
    from lib.stimuli import captions as C

    archive = tmp_path / "use.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:  # TF Hub's compressed format: the SavedModel at the root
        for p in tiny_use.iterdir():
            tar.add(p, arcname=p.name)

    def served(url, dest, **_):
        assert url == C.USE_URL
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(archive.read_bytes())
        return dest

    monkeypatch.setattr(dl, "download", served)
    folder = C.fetch_use(cache_dir=tmp_path / "cache")
    assert folder == tmp_path / "cache" / C.USE_FOLDER and (folder / "saved_model.pb").is_file()
    assert not (tmp_path / "cache" / (C.USE_FOLDER + ".tar.gz")).exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in tiny_use.iterdir())
    assert (folder / "saved_model.pb").read_bytes() == (tiny_use / "saved_model.pb").read_bytes()
