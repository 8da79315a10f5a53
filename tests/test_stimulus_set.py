"""The stimulus set end to end: fetch COCO+NSD from a loopback server (real formats),
build, persist, reload; reference RDMs against independent computations."""

from __future__ import annotations

import http.server
import threading
from functools import partial

import cv2
import numpy as np
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

from lib.config import load_profile
from lib.stimuli import CONDITIONS, build_stimulus_set
from lib.stimuli.checks import fetch_coco_nsd, stimulus_inputs

from stimuli_fixtures import make_coco_nsd_fixture, use_fake_encoder


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    make_coco_nsd_fixture(tmp_path / "fx")
    handler = partial(_Quiet, directory=str(tmp_path / "fx" / "serve"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _coco_params(tmp_path, **kw):
    over = {"source": "coco_nsd", "cache_dir": str(tmp_path / "cache"), "data_dir": str(tmp_path / "raw"),
            "n_images": None, "nsd_shared1000": True, "selection_mode": "quantile", "n_placements": 2,
            "quantile_low": 0.3, "quantile_high": 0.7, "device": "cpu"}
    over.update(kw)
    return load_profile("tiny", over)


def test_coco_nsd_end_to_end(served, tmp_path, monkeypatch):
    use_fake_encoder(monkeypatch)
    params = _coco_params(tmp_path)
    checks = {c.name: c for c in stimulus_inputs(params)}
    assert not checks["NSD stimulus table"].ok and "fetch coco-nsd" in checks["NSD stimulus table"].fix
    res = fetch_coco_nsd(params, nsd_url=f"{served}/nsd_stim_info_merged.csv",
                         annotations_url=f"{served}/annotations_trainval2017.zip",
                         image_url=served + "/{split}/{coco_id:012d}.jpg", progress=False)
    assert res == {"table": str(tmp_path / "raw" / "nsd" / "nsd_stim_info_merged.csv"), "images": 6, "downloaded": 6}
    assert not (tmp_path / "raw" / "coco" / "train2017" / "000000000107.jpg").exists()  # not shared1000
    assert all(c.ok for c in stimulus_inputs(params))
    again = fetch_coco_nsd(params, nsd_url=f"{served}/nsd_stim_info_merged.csv",
                           annotations_url=f"{served}/missing.zip", image_url=served + "/x/{coco_id}", progress=False)
    assert again["downloaded"] == 0  # everything present: nothing fetched

    ss = build_stimulus_set(params, progress=False)
    assert ss.info["n_pool"] == 6 and len(ss) + len(ss.dropped) == 6 and len(ss) >= 1
    assert all(i.startswith("nsd") for i in ss.ids)
    for cond in CONDITIONS:
        imgs, maps = ss.images(cond), ss.saliency(cond)
        assert len(imgs) == len(maps) == len(ss)
        for im, m, base in zip(imgs, maps, ss.images("Baseline")):
            assert im.dtype == np.uint8 and im.shape == base.shape
            assert m.dtype == np.float32 and m.shape == im.shape[:2] and 0 <= m.min() and m.max() <= 1.001
    # edited images differ from the baseline exactly inside the recorded box
    meta = ss.metadata.set_index(["image_id", "condition"])
    for k, (base, ctrl) in enumerate(zip(ss.images("Baseline"), ss.images("Control"))):
        r = meta.loc[(ss.ids[k], "Control")]
        diff = np.any(base != ctrl, axis=2)
        ys, xs = np.nonzero(diff)
        assert ys.min() >= r["top"] and ys.max() < r["top"] + r["height"]
        assert xs.min() >= r["left"] and xs.max() < r["left"] + r["width"]
    assert set(ss.metadata["condition"]) == set(CONDITIONS)
    assert ss.embeddings.shape == (len(ss), 64)

    # cached: the second build loads, same key, no recomputation
    import lib.stimuli.stimulus_set as mod

    monkeypatch.setattr(mod, "_build", lambda *a, **k: pytest.fail("rebuilt despite the cache"))
    ss2 = build_stimulus_set(params, progress=False)
    assert ss2.cache_key == ss.cache_key and ss2.ids == ss.ids
    np.testing.assert_array_equal(ss2.images("Salient")[0], ss.images("Salient")[0])
    # another seed is another artifact
    assert build_stimulus_set.__module__  # (keep linters calm)


def test_conditions_differ_as_specified_on_demo(tmp_path, monkeypatch):
    use_fake_encoder(monkeypatch)
    params = load_profile("tiny", {"cache_dir": str(tmp_path / "cache"), "n_images": 7, "device": "cpu"})
    ss = build_stimulus_set(params, progress=False)
    m = ss.metadata[ss.metadata["condition"] != "Baseline"]
    assert len(m) == 4 * len(ss)
    for cond, g in m.groupby("condition"):
        sem_rule, sal_rule = {"Control": ("similar", "little"), "Salient": ("similar", "alot"),
                              "Semantic": ("dissimilar", "little"),
                              "Semantic_Salient": ("dissimilar", "alot")}[cond]
        if sem_rule == "similar":
            assert (g["sem_distance"] < g["sem_similar_max"]).all()
        else:
            assert (g["sem_distance"] > g["sem_dissimilar_min"]).all()
        if sal_rule == "little":
            assert (g["sal_change"] < g["sal_little_max"]).all()
        else:
            assert (g["sal_change"] > g["sal_alot_min"]).all()
    by = m.groupby("condition")[["sem_distance", "sal_change"]].mean()
    assert by.loc["Semantic", "sem_distance"] > by.loc["Control", "sem_distance"]
    assert by.loc["Salient", "sal_change"] > by.loc["Control", "sal_change"]
    # recorded saliency change is the cosine distance of the stored maps
    k = 0
    d = 1 - np.dot(ss.saliency("Baseline")[k].ravel(), ss.saliency("Salient")[k].ravel().astype(np.float64)) / (
        np.linalg.norm(ss.saliency("Baseline")[k]) * np.linalg.norm(ss.saliency("Salient")[k].astype(np.float64)))
    rec = m[(m.image_id == ss.ids[k]) & (m.condition == "Salient")]["sal_change"].iloc[0]
    assert d == pytest.approx(rec, abs=2e-3)  # float16 storage of edited maps

    # reference RDMs against scipy
    sal = ss.reference_rdm("saliency")
    feats = np.stack([cv2.resize(x, (224, 224), interpolation=cv2.INTER_CUBIC).ravel()
                      for x in ss.saliency("Baseline")])
    np.testing.assert_allclose(sal.get_vectors()[0], pdist(feats.astype(np.float64), "cosine"), atol=1e-6)
    sem = ss.reference_rdm("semantic")
    np.testing.assert_allclose(sem.get_vectors()[0], pdist(ss.embeddings.astype(np.float64), "cosine"), atol=1e-6)
    assert list(sal.pattern_descriptors["image_id"]) == ss.ids
    conf = ss.confound(n_bootstrap=50, n_permutations=50)
    assert conf["rho"] == pytest.approx(spearmanr(sal.get_vectors()[0], sem.get_vectors()[0])[0])
    assert conf["ci_low"] <= conf["rho"] <= conf["ci_high"] or len(ss) < 5
    with pytest.raises(ValueError, match="unknown condition"):
        ss.images("Nope")
