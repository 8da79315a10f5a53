"""The reference registry, the CLIP-text reference on seeded weights, one image-set type,
and alignment by image id (never by length)."""

from __future__ import annotations

import numpy as np
import pytest
import rsatoolbox
from scipy.spatial.distance import pdist

from lib import references
from lib.config import ConfigError
from lib.image_set import AlignmentError, ImageSet, check_aligned, nsd_image_id, rdm_ids


def _image_set(n=6, seed=0, ids=None):
    rng = np.random.default_rng(seed)
    ids = ids or [nsd_image_id(i * 7) for i in range(n)]
    maps = [rng.random((30 + i, 40)).astype(np.float32) for i in range(n)]  # sizes may differ
    emb = rng.standard_normal((n, 8)).astype(np.float32)
    caps = {k: [f"photo number {j} of a scene" for j in range(i % 3 + 1)] for i, k in enumerate(ids)}
    return ImageSet(ids, "test-set", caps, lambda: [np.zeros((8, 8, 3), np.uint8)] * n, lambda: maps,
                    lambda: emb), maps, emb


# ----------------------------------------------------------------------------- registry
def test_registry_defaults_and_validation():
    assert references.enabled({}) == ["saliency", "semantic"]
    assert references.enabled({"references": ["semantic", "clip_text"]}) == ["semantic", "clip_text"]
    with pytest.raises(ConfigError, match=r"unknown reference\(s\) \['clip_txt'\].*registered: .*clip_text"):
        references.enabled({"references": ["saliency", "clip_txt"]})
    with pytest.raises(ConfigError, match="twice"):
        references.enabled({"references": ["saliency", "saliency"]})
    with pytest.raises(ValueError, match="already registered"):
        references.register(references.REGISTRY["saliency"])
    pal = references.palette()
    assert set(pal) == set(references.REGISTRY) and len(set(pal.values())) == len(pal)
    assert references.of_family("semantic", ["saliency", "semantic", "clip_text"]) == ["semantic", "clip_text"]
    assert references.partial_pairs(["saliency", "semantic"]) == [("saliency", "semantic")]
    assert references.partial_pairs(["saliency", "semantic", "clip_text"]) == [("saliency", "semantic"),
                                                                               ("saliency", "clip_text")]
    t = references.table()
    assert list(t["reference"]) == list(references.REGISTRY) and t["label"].str.len().gt(0).all()
    runs = references.table(["saliency", "clip_text"], {"weights": "random", "seed": 3})["runs"].tolist()
    assert runs[0] == "(no network)" and runs[1].startswith("clip_vit_b32:random:") and ":seed3:" in runs[1]


def test_saliency_and_semantic_rdms_match_scipy():
    import cv2

    iset, maps, emb = _image_set()
    rdms = references.reference_rdms(iset, {})
    assert list(rdms) == ["saliency", "semantic"]
    feats = np.stack([cv2.resize(m, (224, 224), interpolation=cv2.INTER_CUBIC).ravel() for m in maps])
    np.testing.assert_allclose(rdms["saliency"].get_vectors()[0], pdist(feats.astype(np.float64), "cosine"),
                               atol=1e-10)
    np.testing.assert_allclose(rdms["semantic"].get_vectors()[0], pdist(emb.astype(np.float64), "cosine"),
                               atol=1e-10)
    for r in rdms.values():
        assert rdm_ids(r) == iset.ids


def test_a_new_reference_is_one_registry_entry(monkeypatch):
    """Registering a reference is all it takes for it to be computed and compared."""
    reg = dict(references.REGISTRY)
    monkeypatch.setattr(references, "REGISTRY", reg)
    def words(image_set, params, store):
        return np.array([[sum(len(c.split()) for c in caps), 1.0] for caps in image_set.caption_lists()])

    references.register(references.Reference("caption_length", "Caption length", "#000000", "semantic",
                                             "number of words", words, metric="correlation"))
    iset, _, _ = _image_set()
    rdms = references.reference_rdms(iset, {"references": ["saliency", "caption_length"]})
    feats = np.array([[sum(len(c.split()) for c in iset.captions[i]), 1.0] for i in iset.ids])
    np.testing.assert_allclose(rdms["caption_length"].get_vectors()[0], pdist(feats, "correlation"), atol=1e-10)
    assert rdms["caption_length"].dissimilarity_measure == "correlation"


# ----------------------------------------------------------------------------- clip_text
@pytest.fixture(scope="module")
def clip_checkpoint(tmp_path_factory):
    """A full open_clip ViT-B-32 with seeded random weights, saved as a plain state dict:
    a stand-in for the pretrained file, and the independent model to compare with."""
    import open_clip
    import torch

    torch.manual_seed(123)
    full = open_clip.create_model("ViT-B-32", force_quick_gelu=True)  # as OpenAI's weights were trained
    full.eval()
    path = tmp_path_factory.mktemp("clip") / "open_clip_pytorch_model.bin"
    torch.save(full.state_dict(), path)
    return path, full


def test_clip_text_is_seeded_and_leaves_the_global_rng_alone():
    import torch

    caps = [["a dog on the grass", "a brown dog"], ["a red bus"], ["two people talking"]]
    torch.manual_seed(7)
    expected_next = torch.rand(3)
    torch.manual_seed(7)
    a = references.clip_text_embeddings(caps, "random", seed=0)
    assert torch.equal(torch.rand(3), expected_next)  # the global torch RNG was not touched
    b = references.clip_text_embeddings(caps, "random", seed=0)
    c = references.clip_text_embeddings(caps, "random", seed=1)
    assert a.shape == (3, 512) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_clip_text_loads_the_checkpoint_and_matches_open_clip(clip_checkpoint, monkeypatch):
    """Pretrained path: the text tower gets exactly the checkpoint's tensors, and the
    reference equals open_clip's own encode_text (normalised, mean over captions)."""
    import torch

    from lib import models

    path, full = clip_checkpoint
    monkeypatch.setattr(models, "resolve_weights", lambda name, policy="auto", **kw: ("pretrained", str(path)))
    caps = [["a dog on the grass", "a brown dog"], ["a red bus"], ["two people talking", "a meeting", "chat"]]
    got = references.clip_text_embeddings(caps, "pretrained", seed=0)
    import open_clip

    tok = open_clip.get_tokenizer("ViT-B-32")
    with torch.inference_mode():
        want = np.stack([torch.nn.functional.normalize(full.encode_text(tok(c)), dim=-1).mean(0).numpy()
                         for c in caps])
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_clip_text_rdm_is_cached_under_its_weights_identity(tmp_path, monkeypatch):
    from lib.store import Store

    calls = []

    def fake_embeddings(captions, weights, seed):  # the text tower itself is tested above
        calls.append(1)
        return np.array([[len(c), sum(map(len, c)), seed + 1.0] for c in captions], np.float32)

    monkeypatch.setattr(references, "clip_text_embeddings", fake_embeddings)
    iset, _, _ = _image_set(n=4)
    store = Store(tmp_path / "cache")
    params = {"weights": "random", "seed": 0, "references": ["semantic", "clip_text"]}
    r1 = references.reference_rdms(iset, params, store)["clip_text"]
    r2 = references.reference_rdms(iset, params, store)["clip_text"]
    assert len(calls) == 1 and np.array_equal(r1.get_vectors(), r2.get_vectors())
    references.reference_rdms(iset, dict(params, seed=1), store)
    assert len(calls) == 2  # other weights -> other key
    emb = fake_embeddings(iset.caption_lists(), "random", 0)
    np.testing.assert_allclose(r1.get_vectors()[0], pdist(emb.astype(np.float64), "cosine"), atol=1e-6)


# ----------------------------------------------------------------------------- image sets, alignment
def test_one_id_scheme_and_image_set_checks():
    assert nsd_image_id(13) == "nsd-00013" and nsd_image_id(np.int64(72999)) == "nsd-72999"
    with pytest.raises(ValueError, match="duplicate image ids"):
        ImageSet(["a", "b", "a"], "k", {"a": ["x"], "b": ["y"]}, list)
    with pytest.raises(ValueError, match=r"no captions for \['b'\]"):
        ImageSet(["a", "b"], "k", {"a": ["x"]}, list)
    iset = ImageSet(["a", "b", "c"], "k", {k: ["x"] for k in "abc"}, lambda: [np.zeros((2, 2, 3))] * 2)
    with pytest.raises(AlignmentError, match="2 images for 3 ids"):
        iset.images()


def test_alignment_errors_name_the_first_difference():
    check_aligned(["a", "b"], ["a", "b"], "x", "y")
    with pytest.raises(AlignmentError, match="layer RDMs is over 3 images but the ROI RDMs over 2"):
        check_aligned(["a", "b", "c"], ["a", "b"], "layer RDMs", "the ROI RDMs")
    with pytest.raises(AlignmentError, match=r"position 0 is 'b' .* 'a' .*same images, different order"):
        check_aligned(["b", "a"], ["a", "b"], "x", "y")
    bare = rsatoolbox.rdm.RDMs(np.ones((1, 3)))
    with pytest.raises(AlignmentError, match="without 'image_id'"):
        rdm_ids(bare)


def test_confound_refuses_misaligned_references():
    from lib.stimuli.references import rdm_confound

    iset, _, _ = _image_set()
    rdms = references.reference_rdms(iset, {})
    shuffled = rsatoolbox.rdm.RDMs(rdms["semantic"].get_vectors(),
                                   pattern_descriptors={"image_id": iset.ids[::-1]})
    with pytest.raises(AlignmentError, match="not over the same images"):
        rdm_confound(rdms["saliency"], shuffled, n_bootstrap=5, n_permutations=5)


def test_brain_side_checks_ids_not_lengths(tiny_params, monkeypatch, tmp_path):
    """Layer RDMs over the same number of images but other images are refused before any RSA."""
    from lib.brain import pipeline
    from lib.brain.algonauts import load_algonauts
    from lib.brain.rois import roi_rdms
    from lib.store import Store
    from tests.brain_fixtures import make_fake

    root = make_fake(tmp_path / "alg", subjects=(1, 2))
    data = load_algonauts(root, [1, 2])
    bs = pipeline.BrainSet(data, "k", False, {nsd_image_id(v): ["a caption"] for v in data.nsd_ids})
    roi = roi_rdms(data)
    wrong = [nsd_image_id(v + 1) for v in data.nsd_ids]  # same count, other images

    def fake_extract(model, images, *, images_key, params, store, progress, ids):
        n = len(ids)
        return rsatoolbox.rdm.RDMs(np.ones((1, n * (n - 1) // 2)), pattern_descriptors={"image_id": wrong})

    import lib.extract

    monkeypatch.setattr(lib.extract, "extract_rdms", fake_extract)
    refs = {"saliency": np.ones(15), "semantic": np.ones(15)}
    with pytest.raises(AlignmentError, match=r"layer RDMs of timm:resnet18 and the ROI RDMs .* 'nsd-00006'"):
        pipeline.model_tables(bs, roi, refs, dict(tiny_params, models=["timm:resnet18"]), Store(tmp_path / "c"),
                              progress=False)
