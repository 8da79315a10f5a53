"""Paste geometry invariants over many seeds; the condition search and selection rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lib.stimuli import distractors as D


@pytest.mark.parametrize("base,dist", [((425, 425), (480, 640)), ((384, 384), (640, 427)),
                                       ((300, 500), (500, 500)), ((400, 300), (100, 900))])
def test_paste_geometry_invariants_over_many_seeds(base, dist):
    H, W = base
    dh, dw = dist
    edges, offsets = set(), []
    for seed in range(600):
        b = D.paste_box(base, dist, np.random.default_rng(seed))
        assert 0 <= b.top and b.top + b.height <= H and 0 <= b.left and b.left + b.width <= W
        flush = {"left": b.left == 0, "right": b.left + b.width == W,
                 "top": b.top == 0, "bottom": b.top + b.height == H}
        assert flush[b.edge]
        edges.add(b.edge)
        offsets.append(b.top if b.edge in ("left", "right") else b.left)
        target_w = np.sqrt(0.1 * H * W * dw / dh)
        if target_w <= W and target_w * dh / dw <= H:  # not shrunk to fit
            # area within rounding of 10 %; aspect within rounding of the distractor's
            assert abs(b.height * b.width - 0.1 * H * W) <= b.height + b.width + 1
            assert abs(b.width / b.height - dw / dh) <= (dw / dh) * (1 / b.height + 1 / b.width) + 1e-9
        else:
            assert b.width <= W and b.height <= H and b.height * b.width <= 0.1 * H * W + b.height + b.width
            assert abs(b.width / b.height - dw / dh) <= (dw / dh) * (1 / b.height + 1 / b.width) * 2
    assert edges == set(D.EDGES)
    assert len(set(offsets)) > 20  # offsets vary along the edge


def test_paste_box_is_seeded():
    a = D.paste_box((400, 400), (300, 500), D.candidate_rng(3, "x", "y", 1))
    b = D.paste_box((400, 400), (300, 500), D.candidate_rng(3, "x", "y", 1))
    c = D.paste_box((400, 400), (300, 500), D.candidate_rng(3, "x", "y", 2))
    assert a == b and a != c


def test_paste_only_changes_the_box():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    dist = np.full((100, 200, 3), 7, np.uint8)
    box = D.Box(top=50, left=0, height=60, width=120, edge="left")
    out = D.paste(base, dist, box)
    assert (out[50:110, 0:120] == 7).all()
    mask = np.ones(base.shape[:2], bool)
    mask[50:110, 0:120] = False
    np.testing.assert_array_equal(out[mask], base[mask])
    assert (base[50:110, 0:120] != 7).any()  # input untouched


def test_saliency_change_is_cosine_distance():
    from scipy.spatial.distance import cosine

    rng = np.random.default_rng(1)
    a, bs = rng.random((10, 12)), rng.random((3, 10, 12))
    np.testing.assert_allclose(D.saliency_change(a, bs), [cosine(a.ravel(), b.ravel()) for b in bs])


def _toy(n=6, size=260, seed=0):
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for _ in range(n)]
    ids = [f"im{i}" for i in range(n)]
    emb = rng.normal(size=(n, 8))
    return images, ids, emb


def _fake_saliency(images):
    # a cheap stand-in: mean brightness map (what matters here is the bookkeeping)
    return [im.mean(axis=2).astype(np.float32) / 255 for im in images]


def _params(**kw):
    p = {"seed": 0, "selection_mode": "quantile", "sem_similar_max": 0.32, "sem_dissimilar_min": 0.92,
         "sal_little_max": 0.019, "sal_alot_min": 0.24, "quantile_low": 0.3, "quantile_high": 0.7,
         "n_distractors": None, "n_placements": 3, "saliency_batch_size": 4}
    p.update(kw)
    return p


def test_quantile_mode_chooses_first_match_and_respects_classes():
    images, ids, emb = _toy()
    maps = _fake_saliency(images)
    cand, th = D.search(images, ids, emb, maps, _params(), _fake_saliency)
    assert th.mode == "quantile"
    assert set(cand["sem_class"]) <= {"similar", "dissimilar"}
    chosen, dropped = D.select(cand, ids)
    assert len(chosen) // 4 + len(dropped) == len(ids)
    for _, row in chosen.iterrows():
        sclass, salclass = D.RULES[row["condition"]]
        if sclass == "similar":
            assert row["sem_distance"] < row["sem_similar_max"]
        else:
            assert row["sem_distance"] > row["sem_dissimilar_min"]
        if salclass == "little":
            assert row["sal_change"] < row["sal_little_max"]
        else:
            assert row["sal_change"] > row["sal_alot_min"]
        # it is the first such candidate of its base, in candidate order
        g = cand[(cand["image_id"] == row["image_id"]) & (cand["sem_class"] == sclass)
                 & (cand["sal_class"] == salclass)]
        first = g.iloc[0]
        assert (first["distractor_id"], first["placement"]) == (row["distractor_id"], row["placement"])
    # semantic thresholds are the per-base quantiles of its distractors' distances
    sem = D.cosine_distance_matrix(emb)
    d0 = np.delete(sem[0], 0)
    r0 = cand[cand["image_id"] == "im0"].iloc[0]
    assert r0["sem_similar_max"] == pytest.approx(np.quantile(d0, 0.3))
    assert r0["sem_dissimilar_min"] == pytest.approx(np.quantile(d0, 0.7))


def test_threshold_mode_lazy_search_equals_exhaustive_first_match():
    images, ids, emb = _toy(n=7, seed=2)
    maps = _fake_saliency(images)
    sem = D.cosine_distance_matrix(emb)
    lo, hi = np.quantile(sem[np.triu_indices(7, 1)], [0.3, 0.7])
    p = _params(selection_mode="threshold", sem_similar_max=float(lo), sem_dissimilar_min=float(hi),
                sal_little_max=0.00537, sal_alot_min=0.00546)
    calls = []

    def counting(imgs):
        calls.append(len(imgs))
        return _fake_saliency(imgs)

    cand, th = D.search(images, ids, emb, maps, p, counting)
    chosen, dropped = D.select(cand, ids)
    # exhaustive: every candidate evaluated, then first match in order
    rows = []
    for i in range(7):
        for j in [k for k in range(7) if k != i]:
            s = sem[i, j]
            sclass = "similar" if s < lo else "dissimilar" if s > hi else ""
            if not sclass:
                continue
            for pl in range(3):
                box = D.paste_box(images[i].shape[:2], images[j].shape[:2], D.candidate_rng(0, ids[i], ids[j], pl))
                d = D.saliency_change(maps[i], np.stack(_fake_saliency([D.paste(images[i], images[j], box)])))[0]
                sal = "little" if d < 0.00537 else "alot" if d > 0.00546 else ""
                rows.append((ids[i], sclass, sal, ids[j], pl))
    full = pd.DataFrame(rows, columns=["image_id", "sem_class", "sal_class", "distractor_id", "placement"])
    assert len(chosen) >= 4 and len(dropped) >= 1  # the comparison below is not vacuous
    for _, row in chosen.iterrows():
        sclass, salclass = D.RULES[row["condition"]]
        g = full[(full.image_id == row["image_id"]) & (full.sem_class == sclass) & (full.sal_class == salclass)]
        assert (g.iloc[0]["distractor_id"], g.iloc[0]["placement"]) == (row["distractor_id"], row["placement"])
    for _, d in dropped.iterrows():
        for cond in d["missing"].split(", "):
            sclass, salclass = D.RULES[cond]
            assert full[(full.image_id == d["image_id"]) & (full.sem_class == sclass)
                        & (full.sal_class == salclass)].empty
    assert sum(calls) <= len(full)  # lazy: never more maps than exhaustive


def test_impossible_thresholds_drop_everything_with_reasons():
    images, ids, emb = _toy(n=4)
    p = _params(selection_mode="threshold", sem_similar_max=-1.0, sem_dissimilar_min=5.0)
    cand, _ = D.search(images, ids, emb, _fake_saliency(images), p, _fake_saliency)
    chosen, dropped = D.select(cand, ids)
    assert chosen.empty and list(dropped["image_id"]) == ids
    assert all("Control" in r for r in dropped["reason"])


def _table(rows):
    cols = ["image_id", "distractor_id", "placement", "sem_class", "sal_class", "sal_change"]
    return pd.DataFrame(rows, columns=cols)


def test_reuse_cap_passes_over_used_up_distractors_per_condition():
    rows = []
    for base in ("a", "b", "c"):
        rows += [(base, "X", 0, "similar", "little", 0.01), (base, "Y", 0, "similar", "little", 0.01),
                 (base, f"S{base}", 0, "similar", "alot", 0.5), (base, f"T{base}", 0, "dissimilar", "little", 0.0),
                 (base, f"U{base}", 0, "dissimilar", "alot", 0.6)]
    cand = _table(rows)
    pick = lambda chosen: dict(zip(chosen.image_id + "/" + chosen.condition, chosen.distractor_id))
    free, _ = D.select(cand, ["a", "b", "c"])
    assert [pick(free)[f"{b}/Control"] for b in "abc"] == ["X", "X", "X"]
    capped, dropped = D.select(cand, ["a", "b", "c"], max_reuse=2)
    assert [pick(capped)[f"{b}/Control"] for b in "abc"] == ["X", "X", "Y"] and dropped.empty
    one, dropped = D.select(cand, ["a", "b", "c"], max_reuse=1)
    assert [pick(one)[f"{b}/Control"] for b in "ab"] == ["X", "Y"]
    assert list(dropped.image_id) == ["c"] and "max_distractor_reuse" in dropped.reason[0]
    # a dropped base's picks do not count: d (no Salient hit) takes X, and e can still have X
    cand2 = _table([r for r in rows if r[0] == "a"] + [("d", "X", 0, "similar", "little", 0.0)]
                   + [("e",) + r[1:] for r in rows if r[0] == "a"])
    chosen, dropped = D.select(cand2, ["d", "e"], max_reuse=1)
    assert list(dropped.image_id) == ["d"] and pick(chosen)["e/Control"] == "X"


def test_manipulation_violations_are_counted():
    from lib.stimuli.checks import manipulation_violations

    def row(base, cond, dist, sal, sem=0.1):
        return {"image_id": base, "condition": cond, "distractor_id": dist, "sal_change": sal,
                "sem_distance": sem, "sem_similar_max": 0.3, "sem_dissimilar_min": 0.9,
                "sal_little_max": 0.2, "sal_alot_min": 0.25}

    meta = pd.DataFrame([
        row("a", "Control", "X", 0.1), row("a", "Salient", "Y", 0.3), row("a", "Semantic", "Z", 0.05, 0.95),
        row("a", "Semantic_Salient", "W", 0.4, 0.95),
        # b: Control's change (0.35) is above a's Salient (0.3) and b's own Salient (0.33)
        row("b", "Control", "X", 0.35), row("b", "Salient", "Y", 0.33), row("b", "Semantic", "Z", 0.01, 0.5),
        row("b", "Semantic_Salient", "V", 0.5, 0.95),
        {"image_id": "a", "condition": "Baseline", "distractor_id": None, "sal_change": 0.0},
    ])
    v = manipulation_violations(meta, max_reuse=1).set_index("check")["violations"]
    assert v["little vs a lot saliency change within a base image"] == 1  # b
    # low changes {0.1, 0.05, 0.35, 0.01} vs high {0.3, 0.4, 0.33, 0.5}: 0.35 >= 0.3 and 0.33
    assert v["little vs a lot saliency change across base images (pairs)"] == 2
    assert v["distractor used by more than 1 base image(s) in one condition"] == 3  # X, Y, Z twice
    assert v["semantic distance outside its condition's range"] == 1  # b's Semantic at 0.5
    assert v["saliency change outside its condition's range"] == 1  # b's Control: 0.35 >= 0.2
