"""ROI RDMs (order, hemispheres, values) and noise ceilings against direct computations."""

import numpy as np
import pytest
import rsatoolbox
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

from lib.brain import noise_ceiling
from lib.brain.algonauts import load_algonauts
from lib.brain.rois import roi_rdms
from tests.brain_fixtures import make_fake


@pytest.fixture
def data(tmp_path):
    make_fake(tmp_path, subjects=(1, 2, 4))
    return load_algonauts(tmp_path, [1, 2, 4])


def test_roi_order_and_skips(data):
    r = roi_rdms(data)
    # file order (prf-visualrois first, streams last), then All vertices; empty ROIs absent
    assert r.rois["roi"].tolist() == ["V1v", "V1d", "early", "ventral", "All vertices"]
    assert r.rois["n_subjects"].tolist() == [3] * 5
    skipped = r.notes[r.notes.status == "skipped"]
    assert {"hV4", "FFA-1", "midventral"} <= set(skipped.roi)
    assert set(r.notes[r.notes.status == "dropped"].roi) == set(skipped.roi)  # dropped for lack of subjects
    one = r.notes[r.notes.status == "one hemisphere"]
    assert set(one.roi) == {"V1d", "ventral"} and one.detail.str.contains("only lh").any()


def test_rdm_values_mean_and_concat(data):
    s = data.subjects[1]
    lh, rh = s.fmri["lh"].astype(float), s.fmri["rh"].astype(float)
    mean = roi_rdms(data, "mean")
    concat = roi_rdms(data, "concat")
    expected_v1v = (pdist(lh[:, 0:3], "cosine") + pdist(rh[:, 0:3], "cosine")) / 2
    np.testing.assert_allclose(mean.vectors["V1v"][1], expected_v1v, atol=1e-10)
    np.testing.assert_allclose(concat.vectors["V1v"][1], pdist(np.hstack([lh[:, 0:3], rh[:, 0:3]]), "cosine"), atol=1e-10)
    # one-hemisphere ROI: that hemisphere alone, in both modes; never another ROI's RDM
    np.testing.assert_allclose(mean.vectors["V1d"][1], pdist(lh[:, 3:6], "cosine"), atol=1e-10)
    np.testing.assert_allclose(mean.vectors["ventral"][1], pdist(rh[:, 6:10], "cosine"), atol=1e-10)
    all_mean = (pdist(lh, "cosine") + pdist(rh, "cosine")) / 2
    np.testing.assert_allclose(mean.vectors["All vertices"][1], all_mean, atol=1e-10)
    assert not np.isnan(np.concatenate(list(mean.vectors.values()))).any()


def test_store_round_trip(data):
    r = roi_rdms(data)
    back = type(r).from_store(r.to_store())
    assert back.rois["roi"].tolist() == r.rois["roi"].tolist()
    assert back.subjects == r.subjects
    np.testing.assert_allclose(back.vectors["early"], r.vectors["early"], rtol=1e-6)
    rd = back.rdms("early")
    assert rd.n_rdm == 3 and list(rd.rdm_descriptors["subject"]) == [1, 2, 4]


def test_noise_ceiling_by_hand():
    rng = np.random.default_rng(3)
    shared = rng.standard_normal(45)
    v = shared + rng.standard_normal((4, 45))
    lower = np.mean([spearmanr(v[i], np.delete(v, i, 0).mean(0))[0] for i in range(4)])
    upper = np.mean([spearmanr(v[i], v.mean(0))[0] for i in range(4)])
    lo, up = noise_ceiling(rsatoolbox.rdm.RDMs(v))
    assert lo == pytest.approx(lower, abs=1e-10) and up == pytest.approx(upper, abs=1e-10)
    assert lo < up
    # two subjects: lower = their mutual Spearman
    lo2, _ = noise_ceiling(rsatoolbox.rdm.RDMs(v[:2]))
    assert lo2 == pytest.approx(spearmanr(v[0], v[1])[0], abs=1e-10)


def test_noise_ceiling_bootstrap_is_rsatoolbox():
    rng = np.random.default_rng(4)
    rdms = rsatoolbox.rdm.RDMs(rng.standard_normal(28) + rng.standard_normal((3, 28)))
    expected = rsatoolbox.inference.boot_noise_ceiling(rdms, method="spearman")
    assert noise_ceiling(rdms, "bootstrap") == pytest.approx(tuple(map(float, expected)))


def test_noise_ceiling_needs_two_subjects():
    with pytest.raises(ValueError, match="at least 2 subjects, got 1"):
        noise_ceiling(rsatoolbox.rdm.RDMs(np.arange(10.0)[None]))
    with pytest.raises(ValueError, match="must be one of"):
        noise_ceiling(rsatoolbox.rdm.RDMs(np.ones((2, 10))), "magic")


def test_original_roi_policy_drops_every_roi_a_subject_lacks_in_a_hemisphere(tmp_path):
    make_fake(tmp_path, subjects=(1, 2, 4))
    # subject 2 loses V1v in the right hemisphere (V1v = labels 1 at rh 0-2)
    mask = tmp_path / "subj02" / "roi_masks" / "rh.prf-visualrois_challenge_space.npy"
    lab = np.load(mask)
    lab[lab == 1] = 0
    np.save(mask, lab)
    data = load_algonauts(tmp_path, [1, 2, 4])
    kept = roi_rdms(data, policy="per_hemisphere")
    assert kept.rois["roi"].tolist() == ["V1v", "V1d", "early", "ventral", "All vertices"]
    assert kept.subjects["V1v"] == [1, 2, 4]
    original = roi_rdms(data, policy="original")
    # by hand: V1v (subject 2, rh), V1d (lh only), ventral (rh only) go; early and All vertices stay
    assert original.rois["roi"].tolist() == ["early", "All vertices"]
    dropped = original.notes[(original.notes.status == "dropped") & original.notes.detail.str.contains("original")]
    assert dropped.set_index("roi").loc["V1v", "detail"].endswith("subject(s) 2 lack vertices in a hemisphere")
    absent_everywhere = set(kept.notes[kept.notes.status == "dropped"].roi)  # e.g. hV4: empty for all
    assert set(dropped.roi) == {"V1v", "V1d", "ventral"} | absent_everywhere
    assert "hV4" in absent_everywhere and "V1v" not in absent_everywhere
    np.testing.assert_array_equal(original.vectors["early"], kept.vectors["early"])
    with pytest.raises(ValueError, match="roi_policy"):
        roi_rdms(data, policy="strict")
