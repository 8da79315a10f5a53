"""Synthetic subjects: the generator writes what the loader reads, and the analysis
recovers the planted saliency/semantic proportions."""

import numpy as np
import pandas as pd
import pytest

from lib.brain.algonauts import FAMILIES, load_algonauts
from lib.brain.analysis import planted_recovery, reference_rsa
from lib.brain.rois import roi_rdms
from lib.brain.synthetic import planted_table, write_synthetic_algonauts
from lib.rsa import rdm


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    rng = np.random.default_rng(0)
    n = 30
    images = [rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in range(n)]
    sal = rdm(np.abs(rng.standard_normal((n, 300))) + 1.0).get_matrices()[0]
    sem = rdm(rng.standard_normal((n, 20))).get_matrices()[0]
    ids = np.sort(rng.choice(73000, n, replace=False))
    planted = write_synthetic_algonauts(root, images, ids, {"saliency": sal, "semantic": sem},
                                        subjects=(1, 2, 5), noise=1.0, scale=0.05, seed=1)
    data = load_algonauts(root, [1, 2, 5])
    iu = np.triu_indices(n, 1)
    return root, planted, data, {"saliency": sal[iu], "semantic": sem[iu]}, images


def test_layout_and_names(synth):
    root, planted, data, _, images = synth
    assert data.nsd_ids.tolist() == sorted(data.nsd_ids.tolist()) and len(data.nsd_ids) == 30
    s = data.subjects[0]
    assert [roi for _, roi in s.roi_names()] == [r for names in FAMILIES.values() for r in names]
    assert s.mappings["floc-faces"][0] == "Unknown"
    from lib.brain.algonauts import load_images
    np.testing.assert_array_equal(load_images(data.image_paths[:1])[0], images[0])
    assert (root / "nsd_stim_info_merged.csv").is_file()
    info = pd.read_csv(root / "nsd_stim_info_merged.csv")
    assert set(info.nsdId) == set(data.nsd_ids.tolist())
    # planted shares add up, early visual is saliency-driven, ventral semantic
    pt = planted_table(root).set_index("roi")
    np.testing.assert_allclose(pt[["saliency", "semantic", "other"]].sum(axis=1), 1.0)
    assert pt.loc["V1v", "sal_share"] > 0.9 and pt.loc["ventral", "sal_share"] < 0.2


def test_absent_rois_follow_the_spec(synth):
    _, _, data, _, _ = synth
    r = roi_rdms(data)
    assert "mTL-bodies" not in r.rois["roi"].tolist()
    assert r.subjects["mTL-words"] == [1, 5]  # missing in the second subject
    one = r.notes[(r.notes.status == "one hemisphere") & (r.notes.roi == "aTL-faces")]
    assert len(one) == 3 and one.detail.str.contains("only rh").all()


def test_analysis_recovers_planted_structure(synth):
    root, _, data, refs, _ = synth
    r = roi_rdms(data)
    _, summary = reference_rsa(r, refs)
    wide = summary.pivot(index="roi", columns="reference", values="mean")
    # early visual: saliency beats semantics; ventral / lateral streams: the reverse
    assert wide.loc["early", "saliency"] > wide.loc["early", "semantic"] + 0.1
    for roi in ("ventral", "lateral"):
        assert wide.loc[roi, "semantic"] > wide.loc[roi, "saliency"] + 0.1
    # noise ceilings bracket sensibly
    nc = summary.drop_duplicates("roi").set_index("roi")
    assert (nc.nc_lower <= nc.nc_upper + 1e-12).all()
    rec = planted_recovery(r, refs, pd.read_csv(root / "planted.csv").groupby("roi").mean(numeric_only=True)
                           .reset_index())
    big = rec[rec.roi.isin(["early", "midventral", "midlateral", "midparietal", "ventral", "lateral", "parietal",
                            "All vertices"])]
    assert np.corrcoef(big.recovered_sal_share, big.planted_sal_share)[0, 1] > 0.9
    assert np.max(np.abs(big.recovered_sal_share - big.planted_sal_share)) < 0.25


def test_more_noise_lowers_the_ceiling(tmp_path):
    rng = np.random.default_rng(2)
    n = 20
    images = [np.zeros((4, 4, 3), np.uint8)] * n
    structs = {"saliency": rdm(rng.standard_normal((n, 10))).get_matrices()[0],
               "semantic": rdm(rng.standard_normal((n, 10))).get_matrices()[0]}
    ncs = []
    for noise in (0.3, 3.0):
        root = tmp_path / str(noise)
        write_synthetic_algonauts(root, images, np.arange(n), structs, subjects=(1, 2, 3), noise=noise,
                                  write_images=False, scale=0.03)
        for s in (1, 2, 3):
            d = root / f"subj{s:02d}/training_split/training_images"
            for i in range(n):
                (d / f"train-{i + 1:04d}_nsd-{i:05d}.png").write_bytes(b"")
        r = roi_rdms(load_algonauts(root, [1, 2, 3]))
        from lib.brain import noise_ceiling
        ncs.append(noise_ceiling(r.rdms("early"))[0])
    assert ncs[0] > ncs[1] + 0.2


def test_generator_input_errors(tmp_path):
    with pytest.raises(ValueError, match="distinct NSD ids"):
        write_synthetic_algonauts(tmp_path, [np.zeros((2, 2, 3), np.uint8)] * 3, [1, 1, 2],
                                  {"saliency": np.ones((3, 3)), "semantic": np.ones((3, 3))})
    with pytest.raises(ValueError, match=r"structures must include \['semantic'\]"):
        write_synthetic_algonauts(tmp_path, [np.zeros((2, 2, 3), np.uint8)] * 3, [1, 2, 3],
                                  {"saliency": np.ones((3, 3))})
