"""The Reproducibility page's facts come from the run folder."""

import json

from lib import provenance, reproducibility


def test_warnings_name_every_random_model_once_and_keep_synthetic_notices(tmp_path):
    params = {"run_dir": str(tmp_path)}
    provenance.record(params, "random_weights", "resnet50: seeded random weights", model="resnet50", seed=0)
    provenance.record(params, "random_weights", "chapter box", models=["resnet50", "vit_b16"])
    provenance.record(params, "random_weights", "chapter box", models=["resnet50", "vit_b16"])  # re-recorded
    provenance.record(params, "synthetic_data", "synthetic fMRI subjects")
    provenance.record(params, "pretrained_weights", "clip_rn50 pretrained", model="clip_rn50")
    lines = reproducibility.warnings(tmp_path)
    assert len(lines) == 2
    assert "resnet50, vit_b16." in lines[0] and "clip_rn50" not in lines[0]
    assert lines[1] == "synthetic fMRI subjects"
    assert len(reproducibility.provenance_table(tmp_path)) == 4  # exact duplicates collapsed


def test_no_run_folder_means_no_manifest_and_no_warnings(tmp_path):
    assert reproducibility.read_manifest(None) is None
    assert reproducibility.read_manifest(tmp_path) is None
    assert reproducibility.warnings(None) == []


def test_timings_and_parameters_tables(tmp_path):
    (tmp_path / "timings.json").write_text(json.dumps({"01_stimuli": 2.5, "02_saliency": 1.5}))
    table = reproducibility.timings_table(tmp_path)
    assert table["seconds"].tolist() == [2.5, 1.5, 4.0]
    manifest = {"params": {"seed": 0, "models": ["a"]}, "overrides": {"seed": 0}}
    params = reproducibility.parameters_table(manifest)
    assert params.set_index("parameter").loc["seed", "overridden"] == "yes"
    assert params.set_index("parameter").loc["models", "value"] == '["a"]'
