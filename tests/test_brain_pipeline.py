"""Doctor checks, NSD-table/COCO caption lookup and cache identity of a release folder."""

import json

import numpy as np
import pandas as pd
import pytest

from lib.brain.algonauts import AlgonautsError
from lib.brain.checks import brain_requirements
from lib.brain.pipeline import _folder_key, coco_captions
from tests.brain_fixtures import make_fake


def _params(tiny_params, tmp_path, **kw):
    p = dict(tiny_params, brain_source="algonauts", algonauts_dir=str(tmp_path / "alg"), subjects=[1, 2])
    p.update(kw)
    return p


def test_doctor_reports_missing_and_present(tiny_params, tmp_path):
    params = _params(tiny_params, tmp_path)
    checks = list(brain_requirements(params))
    assert not checks[0].ok and "Register" in checks[0].fix and "does not exist" in checks[0].detail
    make_fake(tmp_path / "alg", subjects=(1,))
    checks = {c.name: c for c in brain_requirements(params)}
    assert checks["Algonauts subject 1"].ok and "6 images" in checks["Algonauts subject 1"].detail
    assert not checks["Algonauts subject 2"].ok
    assert not checks["NSD stimulus table"].ok
    synth = list(brain_requirements(dict(params, brain_source="synthetic")))
    assert synth[0].ok and "synthetic" in synth[0].detail


def test_coco_captions_via_nsd_table(tiny_params, tmp_path):
    params = _params(tiny_params, tmp_path)
    (tmp_path / "alg").mkdir()
    pd.DataFrame({"nsdId": [5, 13], "cocoId": [111, 222], "cocoSplit": ["train2017", "val2017"],
                  "cropBox": ["(0, 0, 0.1, 0.1)"] * 2}).to_csv(tmp_path / "alg" / "nsd_stim_info_merged.csv")
    ann = tmp_path / "raw" / "coco" / "annotations"
    ann.mkdir(parents=True)
    for split, anns in (("train2017", [(1, 111, "a dog "), (2, 111, "a pet")]), ("val2017", [(3, 222, "a bus")])):
        json.dump({"images": [{"id": i} for i in {a[1] for a in anns}],
                   "annotations": [{"id": k, "image_id": i, "caption": c} for k, i, c in anns]},
                  open(ann / f"captions_{split}.json", "w"))
    caps = coco_captions(params, np.array([5, 13]))
    assert caps == {"nsd-00005": ["a dog", "a pet"], "nsd-00013": ["a bus"]}
    with pytest.raises(AlgonautsError, match=r"NSD ids \[99\] .* not in .*nsd_stim_info_merged.csv"):
        coco_captions(params, np.array([5, 99]))


def test_folder_key_changes_with_the_data(tmp_path):
    make_fake(tmp_path, subjects=(1,))
    k1 = _folder_key(tmp_path, [1])
    assert _folder_key(tmp_path, [1]) == k1
    path = tmp_path / "subj01/training_split/training_fmri/lh_training_fmri.npy"
    np.save(path, np.zeros((6, 13), np.float32))
    assert _folder_key(tmp_path, [1]) != k1


def test_one_subject_is_refused_before_any_work(tiny_params, tmp_path):
    from lib.brain.pipeline import brain_set

    with pytest.raises(ValueError, match=r"at least 2 subjects .* subjects=\[3\]"):
        brain_set(_params(tiny_params, tmp_path, subjects=[3]))
