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


# --- "How this run differs from the original" ----------------------------------------------

def _parameter_rows(table):
    return table[table["parameter"] != "(machine)"]


def test_original_choices_are_what_the_paper_profile_sets():
    from lib.config import SCHEMA, load_profile

    paper = load_profile("paper")
    for c in reproducibility.ORIGINAL_CHOICES:
        assert c.parameter in SCHEMA, c.parameter
        assert paper[c.parameter] == c.original, c.parameter


def test_paper_profile_differs_only_where_the_machine_cannot(monkeypatch):
    import importlib.util

    import torch

    from lib.config import load_profile

    paper = load_profile("paper")
    assert _parameter_rows(reproducibility.differences_from_original(paper)).empty
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorflow" else real_find_spec(name, *a))
    table = reproducibility.differences_from_original(paper)
    assert list(table["parameter"]) == ["(machine)", "(machine)"]
    assert "clip_vit_b16, clip_vit_b32, clip_vit_l14" in table["this run"].iloc[0]
    assert "pip install -e .[use]" in table["this run"].iloc[1]


def test_demo_lists_every_parameter_that_is_not_the_papers():
    from lib.config import load_profile

    demo, paper = load_profile("demo"), load_profile("paper")
    expected = [c.parameter for c in reproducibility.ORIGINAL_CHOICES if demo[c.parameter] != paper[c.parameter]]
    rows = _parameter_rows(reproducibility.differences_from_original(demo))
    assert list(rows["parameter"]) == expected
    assert {"source", "distractor_pool", "caption_model", "swap_rb", "roi_policy", "layer_rule"} <= set(expected)
    assert rows.set_index("parameter").loc["swap_rb", "this run"] == "false"


def test_paper_corrected_lists_exactly_the_corrections():
    from lib.config import load_profile

    rows = _parameter_rows(reproducibility.differences_from_original(load_profile("paper-corrected")))
    assert set(rows["parameter"]) == {"swap_rb", "saliency_threshold_transfer", "max_distractor_reuse",
                                      "layer_rule", "roi_policy", "brain_saliency_crop", "summary_rule"}
    # an override shows up as a difference too
    overridden = reproducibility.differences_from_original(load_profile("paper", {"sal_alot_min": 0.3}))
    assert list(_parameter_rows(overridden)["parameter"]) == ["sal_alot_min"]
