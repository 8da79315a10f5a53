"""Validation before work (issue 14): impossible values stop the profile from loading,
and the CLI exits 2 naming the rule and a fix."""

import subprocess
import sys

import pytest

from lib import config
from lib.config import REPO_ROOT, ConfigError, load_profile


@pytest.mark.parametrize(
    "override, fragments",
    [
        # the cases the issue found running silently or crashing later
        ({"alpha": 2}, ["'alpha'", "(0, 1)", "-p alpha="]),
        ({"alpha": 0}, ["'alpha'", "(0, 1)"]),
        ({"quantile_low": 0.9, "quantile_high": 0.1}, ["quantile_low (0.9) must be below quantile_high (0.1)"]),
        ({"quantile_high": 1.0}, ["'quantile_high'", "(0, 1)"]),
        ({"n_images": -1}, ["'n_images'", "[3, inf)"]),
        ({"n_images": 0}, ["'n_images'"]),
        ({"n_bootstrap": -1}, ["'n_bootstrap'", f"[{config.MIN_BOOTSTRAP}, inf)"]),
        ({"synthetic_noise": -1}, ["'synthetic_noise'", "[0, inf)"]),
        ({"memory_budget_gb": 0}, ["'memory_budget_gb'", "(0, inf)"]),
        ({"memory_budget_gb": -1}, ["'memory_budget_gb'"]),
        ({"n_permutations": 0}, ["'n_permutations'", "[99, inf)"]),
        ({"models": []}, ["'models' needs a non-empty value"]),
        ({"saliency_batch_size": 0}, ["'saliency_batch_size'", "[1, inf)"]),
        ({"batch_size": -3}, ["'batch_size'", "[1, inf)"]),
        # further rules
        ({"n_permutations": 99, "alpha": 0.005}, ["smallest possible p-value", "raise n_permutations"]),
        ({"sem_similar_max": 0.95, "sem_dissimilar_min": 0.9}, ["sem_similar_max (0.95) must be below"]),
        ({"sal_little_max": 0.5, "sal_alot_min": 0.1}, ["sal_little_max (0.5) must be below"]),
        ({"subjects": [1, 1]}, ["lists a subject twice"]),
        ({"subjects": [1]}, ["'subjects' needs at least 2 items"]),
        ({"subjects": [1, 9]}, ["numbered 1 to 8"]),
        ({"models": ["timm:resnet18", "timm:resnet18"]}, ["lists a model twice"]),
        ({"source": "folder", "folder_path": None}, ["folder_path"]),
        ({"layers": "conv[("}, ["nor a valid regular expression"]),
        ({"layers": ""}, ["'layers' needs a non-empty value"]),
        ({"n_placements": 0}, ["'n_placements'"]),
        ({"seed": -1}, ["'seed'"]),
        ({"max_image_side": 100}, ["'max_image_side'", "[257, inf)"]),
    ],
)
def test_impossible_values_are_refused_when_the_profile_loads(override, fragments):
    with pytest.raises(ConfigError) as err:
        load_profile("tiny", override)
    for f in fragments:
        assert f in str(err.value), (f, str(err.value))


def test_range_errors_suggest_the_demo_value():
    with pytest.raises(ConfigError, match=r"the demo profile uses 0\.05"):
        load_profile("tiny", {"alpha": 1.5})


@pytest.mark.parametrize("override", [{"n_images": None}, {"batch_size": None}, {"n_distractors": None},
                                      {"n_permutations": 99, "alpha": 0.05}, {"quantile_low": 0.49,
                                                                              "quantile_high": 0.51}])
def test_boundary_values_that_make_sense_are_accepted(override):
    load_profile("tiny", override)


def test_every_numeric_or_list_parameter_has_a_range_or_rule():
    """'Every parameter gets a range or rule': numbers a range (or choices), lists a
    minimum length."""
    for name, p in config.SCHEMA.items():
        if p.types == (bool,) or p.choices is not None:
            continue
        if int in p.types or float in p.types:
            assert p.low is not None or p.high is not None, f"{name}: give it low=/high= in lib.config.SCHEMA"
        elif list in p.types:
            assert p.min_items is not None, f"{name}: give it min_items= in lib.config.SCHEMA"


def test_image_side_minimum_matches_the_saliency_pyramid():
    from lib.stimuli.saliency import MIN_SIZE

    assert config.MIN_IMAGE_SIDE == MIN_SIZE


def test_cli_exits_2_with_the_rule_and_no_traceback():
    done = subprocess.run([sys.executable, "-m", "lib", "build", "--profile", "tiny", "-p", "quantile_low=0.9",
                           "-p", "quantile_high=0.1"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 2
    assert "quantile_low (0.9) must be below quantile_high (0.1)" in done.stderr and "Traceback" not in done.stderr
