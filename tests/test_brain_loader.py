"""Algonauts loader: layout, image matching by NSD id, and every bad input's message."""

import numpy as np
import pytest

from lib.brain.algonauts import AlgonautsError, load_algonauts, load_subject, read_mapping
from tests.brain_fixtures import make_fake


def test_loads_subjects_and_rows_follow_nsd_ids(tmp_path):
    make_fake(tmp_path, subjects=(1, 3), nsd_ids=[[5, 13, 20, 31, 47, 52], [2, 5, 13, 20, 47, 52, 60]])
    raw3 = np.load(tmp_path / "subj03/training_split/training_fmri/lh_training_fmri.npy")
    data = load_algonauts(tmp_path, [1, 3])
    assert data.nsd_ids.tolist() == [5, 13, 20, 47, 52]  # seen by both
    s3 = data.subjects[1]
    # subject 3's rows for ids 5, 13, 20, 47, 52 are rows 1, 2, 3, 4, 5 of its file
    np.testing.assert_array_equal(s3.fmri["lh"], raw3[[1, 2, 3, 4, 5]])
    assert s3.fmri["lh"].dtype == np.float32
    assert [p.name for p in data.image_paths][0] == "train-0001_nsd-00005.png"
    assert any("subject 3" in n for n in data.notes)


def test_roi_vertices_and_mapping(tmp_path):
    make_fake(tmp_path, subjects=(1,))
    s = load_subject(tmp_path, 1)
    assert read_mapping(tmp_path / "subj01/roi_masks/mapping_streams.npy")[5] == "ventral"
    assert s.roi_names()[:3] == [("prf-visualrois", "V1v"), ("prf-visualrois", "V1d"), ("prf-visualrois", "V2v")]
    assert s.roi_vertices("prf-visualrois", "V1d", "lh").tolist() == [3, 4, 5]
    assert s.roi_vertices("prf-visualrois", "V1d", "rh").size == 0


def test_missing_subject_folder(tmp_path):
    make_fake(tmp_path, subjects=(1,))
    with pytest.raises(AlgonautsError, match=r"subj02.*found: \['subj01'\].*algonauts"):
        load_algonauts(tmp_path, [1, 2])


def test_missing_mapping_file(tmp_path):
    make_fake(tmp_path, subjects=(1,))
    (tmp_path / "subj01/roi_masks/mapping_floc-faces.npy").unlink()
    with pytest.raises(AlgonautsError, match="mapping_floc-faces.npy"):
        load_subject(tmp_path, 1)


def test_rows_differ_from_images(tmp_path):
    make_fake(tmp_path, subjects=(1,))
    np.save(tmp_path / "subj01/training_split/training_fmri/rh_training_fmri.npy", np.zeros((5, 10), np.float32))
    with pytest.raises(AlgonautsError, match=r"rh_training_fmri.npy has shape \(5, 10\) but .* 6 images"):
        load_subject(tmp_path, 1)


def test_vertex_count_differs_from_mask(tmp_path):
    make_fake(tmp_path, subjects=(1,))
    np.save(tmp_path / "subj01/roi_masks/lh.streams_challenge_space.npy", np.zeros(11, np.int32))
    with pytest.raises(AlgonautsError, match=r"lh.streams_challenge_space.npy has 11 entries .* 12 vertices"):
        load_subject(tmp_path, 1)


def test_nan_vertices(tmp_path):
    make_fake(tmp_path, subjects=(1, 2))
    path = tmp_path / "subj02/training_split/training_fmri/lh_training_fmri.npy"
    x = np.load(path)
    x[2, 7] = np.nan
    np.save(path, x)
    with pytest.raises(AlgonautsError, match=r"subj02.*lh_training_fmri.npy has NaN/inf values in 1 vertices \(first: \[7\]\)"):
        load_algonauts(tmp_path, [1, 2])


def test_badly_named_image_and_missing_folder(tmp_path):
    make_fake(tmp_path, subjects=(1,))
    (tmp_path / "subj01/training_split/training_images/extra.png").write_bytes(b"")
    with pytest.raises(AlgonautsError, match="extra.png is not named like the release"):
        load_subject(tmp_path, 1)
    with pytest.raises(AlgonautsError, match="does not exist"):
        load_algonauts(tmp_path / "nowhere", [1])


def test_unknown_label_in_mask(tmp_path):
    make_fake(tmp_path, subjects=(1,))
    np.save(tmp_path / "subj01/roi_masks/rh.floc-places_challenge_space.npy", np.full(10, 9, np.int32))
    with pytest.raises(AlgonautsError, match=r"labels \[9\] missing from .*mapping_floc-places.npy"):
        load_subject(tmp_path, 1)
