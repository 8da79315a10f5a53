"""The original's stimulus pool on a miniature COCO train2017 in the real formats: which
distractor each (base, condition) gets is worked out by hand; threshold spaces; transfer."""

from __future__ import annotations

import contextlib
import io

import cv2
import numpy as np
import pytest

from lib.config import load_profile
from lib.stimuli import distractors as D
from lib.stimuli import sources

from stimuli_fixtures import VectorEncoder, brightness_saliency, make_coco_pool_fixture


def _paper(tmp_path, **kw):
    over = {"data_dir": str(tmp_path / "raw"), "cache_dir": str(tmp_path / "cache"), "device": "cpu",
            "caption_model": "vector-fixture", "thresholds_caption_model": "vector-fixture", "search_workers": 2}
    over.update(kw)
    return load_profile("paper", over)


@pytest.fixture
def coco_pool(tmp_path, monkeypatch):
    import lib.stimuli.captions as cap
    import lib.stimuli.stimulus_set as ss_mod

    make_coco_pool_fixture(tmp_path / "raw")
    monkeypatch.setattr(cap, "load_sentence_model", lambda name="x", device="cpu": VectorEncoder())
    monkeypatch.setattr(ss_mod, "_saliency_fn", lambda params: brightness_saliency)
    return tmp_path


# Worked by hand from POOL_FIXTURE and COCO_ORDER = [201, 103, 202, 203, 204, 101, 205, 206, 207,
# 102, 208] (base: its own cocoId is skipped):
#  Control (similar, little): 103 is the first dark cat; base 103 skips itself and takes 101.
#  Salient (similar, a lot): 202 does not fit (h = int(sqrt(int(0.1 A)/30)), w = 30 h > width),
#      203 is a grayscale file (the original's paste failed): both skipped; 205.
#  Semantic (dissimilar, little): 201 is bright, 206 mid-grey (change ~0.035: neither); 207.
#  Semantic_Salient (dissimilar, a lot): 201.
#  nsd00003 (cocoId 104) is a val2017 image: not a base of the original.
EXPECTED = {
    ("nsd-00000", "Control"): 103, ("nsd-00000", "Salient"): 205,
    ("nsd-00000", "Semantic"): 207, ("nsd-00000", "Semantic_Salient"): 201,
    ("nsd-00001", "Control"): 103, ("nsd-00001", "Salient"): 205,
    ("nsd-00001", "Semantic"): 207, ("nsd-00001", "Semantic_Salient"): 201,
    ("nsd-00002", "Control"): 101, ("nsd-00002", "Salient"): 205,
    ("nsd-00002", "Semantic"): 207, ("nsd-00002", "Semantic_Salient"): 201,
}


def test_paper_profile_selects_the_hand_worked_distractors(coco_pool, monkeypatch):
    from lib.stimuli import build_stimulus_set

    params = _paper(coco_pool)
    ss = build_stimulus_set(params, progress=False)
    assert ss.ids == ["nsd-00000", "nsd-00001", "nsd-00002"]
    assert ss.info["n_distractor_pool"] == 11  # every train2017 image with captions
    meta = ss.metadata[ss.metadata.condition != "Baseline"]
    got = {(r.image_id, r.condition): int(r.distractor_id[4:]) for r in meta.itertuples()}
    assert got == EXPECTED
    assert (meta["placement"] == 0).all()  # one placement
    # 101 pasted uncropped (300 x 300, aspect 1) into the 300 x 300 base: h = w = int(sqrt(9000)) = 94;
    # its NSD crop (300 x 240) would have given 106 x 84
    r = meta.set_index(["image_id", "condition"]).loc[("nsd-00002", "Control")]
    assert (r["height"], r["width"]) == (94, 94)
    # the per-base search results are cached: an interrupted search resumes, redoing only what is missing
    step = coco_pool / "cache" / D.STEP
    entries = sorted(p for p in step.iterdir() if not p.name.startswith("."))
    assert len(entries) == 3
    import shutil

    def delete(entry):  # store entries are links to their data folders
        entry.unlink() if entry.is_symlink() else shutil.rmtree(entry)

    delete(entries[0])
    shutil.rmtree(coco_pool / "cache" / "stimulus_set")
    calls = []
    real = D.search_one_base
    monkeypatch.setattr(D, "search_one_base", lambda base, *a, **k: calls.append(base.id) or real(base, *a, **k))
    again = build_stimulus_set(params, progress=False)
    assert len(calls) == 1
    assert again.metadata.equals(ss.metadata)


def test_fitted_geometry_and_id_order_choose_otherwise(coco_pool):
    """The same pool under this project's paste geometry: 202 fits (shrunk), 203 is converted."""
    from lib.stimuli import build_stimulus_set

    ss = build_stimulus_set(_paper(coco_pool, paste_geometry="fitted"), progress=False)
    meta = ss.metadata.set_index(["image_id", "condition"])
    assert meta.loc[("nsd-00000", "Salient"), "distractor_id"] == "coco000000000202"


def test_coco_order_is_the_instances_files_images_list(tmp_path):
    make_coco_pool_fixture(tmp_path)
    assert sources.coco_image_order(tmp_path) == [201, 103, 202, 203, 204, 101, 205, 206, 207, 102, 208]
    assert (tmp_path / sources.COCO_ORDER.format(split="train2017")).is_file()  # kept for next time
    text = '{"info": {"x": "[not this]"}, "images": [{"id": 5}, {"id": 2}], "annotations": [' + "0," * 5000 + "0]}"
    assert sources.read_image_order(io.StringIO(text), chunk=64) == [5, 2]
    with pytest.raises(ValueError, match="images"):
        sources.read_image_order(io.StringIO('{"annotations": []}'), chunk=8)


@contextlib.contextmanager
def _serve(folder):
    """A loopback HTTP server for ``folder`` (the test's stand-in for COCO's servers)."""
    import http.server
    import threading
    from functools import partial

    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_pool_images_are_downloaded_on_first_use(tmp_path):
    make_coco_pool_fixture(tmp_path / "serve")
    with _serve(tmp_path / "serve" / "coco") as server:
        url = server + "/{split}/{coco_id:012d}.jpg"
        root = tmp_path / "data"
        img = sources.coco_pool_image(root, 205, "original", url=url)
        assert img.shape == (240, 320, 3) and (root / "coco" / "train2017" / "000000000205.jpg").is_file()
        assert sources.coco_pool_image(root, 203, "original", url=url) is None  # grayscale: skipped
        assert sources.coco_pool_image(root, 203, "fitted", url=url).shape == (200, 200, 3)


def test_fetch_for_the_paper_profile_keeps_cocos_order_and_train2017_bases(tmp_path):
    from lib.stimuli.checks import fetch_coco_nsd

    from stimuli_fixtures import COCO_FIXTURE, make_coco_nsd_fixture

    make_coco_nsd_fixture(tmp_path / "fx")
    params = _paper(tmp_path)
    with _serve(tmp_path / "fx" / "serve") as server:
        res = fetch_coco_nsd(params, nsd_url=f"{server}/nsd_stim_info_merged.csv",
                             annotations_url=f"{server}/annotations_trainval2017.zip",
                             image_url=server + "/{split}/{coco_id:012d}.jpg", progress=False)
    train_shared = [c for c, split, shared, *_ in COCO_FIXTURE if split == "train2017" and shared]
    assert res["images"] == len(train_shared) == 5  # the val2017 base (104) is not one of the original's
    assert sources.coco_image_order(tmp_path / "raw") == sorted(train_shared + [107], reverse=True)
    assert (tmp_path / "raw" / "coco" / "annotations" / "captions_train2017.json").is_file()


def test_coco_pool_needs_the_coco_nsd_source():
    with pytest.raises(ValueError, match="distractor_pool=bases"):
        sources.uses_coco_pool({"distractor_pool": "coco_train2017", "source": "demo"})


def test_original_paste_arithmetic():
    rng = np.random.default_rng(0)
    # 300 x 240 base, 480 x 640 distractor (aspect 4/3): int(7200 / (4/3)) ** .5 = 73.48 -> 73, w = int(97.33) = 97
    box = D.paste_box_original((300, 240), (480, 640), rng)
    assert (box.height, box.width) == (73, 97)
    assert D.paste_box_original((300, 240), (20, 600), rng) is None  # w = 15 * 30 = 450 > 240
    dist = np.random.default_rng(1).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    out = D.paste(np.zeros((300, 240, 3), np.uint8), dist, box, "original")
    np.testing.assert_array_equal(out[box.top:box.top + 73, box.left:box.left + 97],
                                  cv2.resize(dist, (97, 73)))  # cv2's default: INTER_LINEAR


def test_threshold_space_mismatch_is_an_error_naming_both_fixes(tmp_path):
    p = load_profile("paper", {"caption_model": "all-MiniLM-L6-v2"})
    with pytest.raises(ValueError) as err:
        D.check_threshold_space(p)
    assert "selection_mode=quantile" in str(err.value) and "caption_model=use-v4" in str(err.value)
    p = load_profile("paper", {"swap_rb": False})
    with pytest.raises(ValueError) as err:
        D.check_threshold_space(p)
    msg = str(err.value)
    assert "selection_mode=quantile" in msg and "swap_rb=true" in msg and "saliency_threshold_transfer" in msg
    D.check_threshold_space(load_profile("paper"))
    D.check_threshold_space(load_profile("paper-corrected"))  # transfers by quantile
    D.check_threshold_space(load_profile("demo"))  # quantile mode: no absolute thresholds


def test_transfer_keeps_the_fractions():
    src = np.array([0.01, 0.015, 0.1, 0.3, 0.5, 0.2, 0.005])
    tgt = np.sqrt(src) + 1  # any increasing function: the same candidates fall on each side
    low, high = D.transfer_thresholds(src, tgt, 0.019, 0.24)
    np.testing.assert_array_equal(tgt < low, src < 0.019)
    np.testing.assert_array_equal(tgt > high, src > 0.24)
    assert low == pytest.approx(np.quantile(tgt, 3 / 7)) and high == pytest.approx(np.quantile(tgt, 1 - 2 / 7))
    with pytest.raises(ValueError, match="same"):
        D.transfer_thresholds(src, tgt[:3], 0.019, 0.24)


def test_search_transfers_thresholds_from_the_other_colour_order():
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 255, (200, 200, 3), dtype=np.uint8) for _ in range(6)]
    ids = [f"im{i}" for i in range(6)]
    emb = rng.normal(size=(6, 8))

    def swapped(imgs):
        return [im[..., 2].astype(np.float32) / 255 for im in imgs]  # "maps" of the B channel

    def correct(imgs):
        return [im[..., 0].astype(np.float32) / 255 for im in imgs]

    p = {"seed": 0, "selection_mode": "threshold", "sem_similar_max": 0.9, "sem_dissimilar_min": 1.1,
         "sal_little_max": 0.01335, "sal_alot_min": 0.01365, "quantile_low": 0.3, "quantile_high": 0.7,
         "n_distractors": None, "n_placements": 1, "saliency_batch_size": 4, "swap_rb": False,
         "thresholds_swap_rb": True, "saliency_threshold_transfer": "quantile", "search_workers": 1}
    cand, th = D.search(images, ids, emb, correct(images), p, correct, source_saliency_fn=swapped)
    # the cuts, recomputed independently: first 16 eligible candidates of each base, both orders
    sem = D.cosine_distance_matrix(emb)
    src, tgt = [], []
    for i in range(6):
        js = [j for j in range(6) if j != i and (sem[i, j] < 0.9 or sem[i, j] > 1.1)][:16]
        for j in js:
            box = D.paste_box((200, 200), (200, 200), D.candidate_rng(0, ids[i], ids[j], 0))
            ed = D.paste(images[i], images[j], box)
            src.append(D.saliency_change(swapped([images[i]])[0], np.stack(swapped([ed])))[0])
            tgt.append(D.saliency_change(correct([images[i]])[0], np.stack(correct([ed])))[0])
    below, above = np.mean(np.array(src) < 0.01335), np.mean(np.array(src) > 0.01365)
    assert th.sal_little_max == pytest.approx(np.quantile(tgt, below))
    assert th.sal_alot_min == pytest.approx(np.quantile(tgt, 1 - above))
    assert 0 < below < 1 and 0 < above < 1  # not a degenerate case
    with pytest.raises(ValueError, match="source_saliency_fn"):
        D.search(images, ids, emb, correct(images), p, correct)


def test_brain_saliency_images_uncropped_as_the_original(tmp_path):
    make_coco_pool_fixture(tmp_path / "raw")
    params = _paper(tmp_path)
    cropped = {it.meta["nsdId"]: it.image.shape for it in sources.coco_nsd_items(tmp_path / "raw")}
    assert cropped[1] == (270, 300, 3)  # cropBox (0.05, 0.05, 0, 0) of a 300 x 300 image
    shapes = [im.shape for im in sources.uncropped_nsd_images(params, [1, 3])]
    assert shapes == [(300, 300, 3), (300, 300, 3)]  # 3 is the val2017 image, from its own folder
    with pytest.raises(ValueError, match=r"NSD ids \[9\]"):
        sources.uncropped_nsd_images(params, [9])


def test_one_base_task_is_picklable_for_process_pools(coco_pool):
    """search_one_base's arguments travel to other processes (Dask, process pools)."""
    import pickle

    params = _paper(coco_pool)
    items = sources.coco_nsd_items(coco_pool / "raw", train2017_only=True)
    from lib.stimuli.captions import embed_captions

    emb = embed_captions({it.id: it.captions for it in items}, params["caption_model"])
    pool = sources.coco_train2017_pool(params, items)
    base = D.BaseImage(0, items[0].id, items[0].image, np.ones(items[0].image.shape[:2], np.float32), emb[0])
    from stimuli_fixtures import brightness_saliency

    pool2, base2 = pickle.loads(pickle.dumps((pool, base)))
    a = D.search_one_base(base, pool, params, brightness_saliency, (0.019, 0.24))
    b = D.search_one_base(base2, pool2, params, brightness_saliency, (0.019, 0.24))
    assert a.equals(b) and len(a) > 0
    bases_pool = D.pool_of_bases([items[0].image] * 3, ["x", "y", "z"], np.eye(3))
    assert pickle.loads(pickle.dumps(bases_pool)).load(1).shape == items[0].image.shape
