"""Profiles: every profile valid and complete; bad names and types fail with the fix."""

import pytest
import yaml

from lib import config
from lib.build import is_notebook
from lib.config import ConfigError, collect, load_profile, parse_overrides


@pytest.mark.parametrize("name", ["demo", "tiny", "paper", "paper-corrected"])
def test_shipped_profiles_are_complete_and_valid(name):
    params = load_profile(name)
    assert set(config.SCHEMA) <= set(params)
    assert params["profile"] == name


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        load_profile("demoo")
    msg = str(err.value)
    assert "'demoo'" in msg and "Did you mean 'demo'" in msg
    for name in ("demo", "tiny", "paper"):
        assert name in msg


def test_misspelled_parameter_suggests_and_lists():
    with pytest.raises(ConfigError) as err:
        load_profile("demo", {"n_imagse": 3})
    msg = str(err.value)
    assert "Did you mean 'n_images'" in msg and "Valid parameters:" in msg and "models" in msg


@pytest.mark.parametrize(
    "override, fragment",
    [
        ({"n_images": "ten"}, "must be int"),
        ({"n_images": True}, "must be int"),
        ({"models": "resnet50"}, "must be list"),
        ({"models": [1, 2]}, "list of str"),
        ({"metric": "euclidean"}, "must be one of ['cosine', 'correlation']"),
        ({"seed": None}, "may not be null"),
    ],
)
def test_bad_values_are_rejected(override, fragment):
    with pytest.raises(ConfigError, match=None) as err:
        load_profile("tiny", override)
    assert fragment in str(err.value)


def test_int_is_accepted_for_float_and_null_for_nullable():
    params = load_profile("tiny", {"synthetic_noise": 1, "n_images": None})
    assert params["synthetic_noise"] == 1.0 and isinstance(params["synthetic_noise"], float)
    assert params["n_images"] is None


def test_profile_missing_a_parameter_is_an_error(tmp_path, monkeypatch):
    values = yaml.safe_load((config.PARAMS_DIR / "tiny.yaml").read_text())
    del values["alpha"]
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(values))
    monkeypatch.setattr(config, "PARAMS_DIR", tmp_path)
    with pytest.raises(ConfigError, match="does not set alpha"):
        load_profile("broken")


def test_overrides_are_read_as_yaml():
    assert parse_overrides(['models=["resnet50", "vit_b16"]', "n_images=200", "alpha=0.01", "force=true"]) == {
        "models": ["resnet50", "vit_b16"], "n_images": 200, "alpha": 0.01, "force": True}
    with pytest.raises(ConfigError, match="not key=value"):
        parse_overrides(["n_images"])


def test_collect_uses_notebook_values_over_the_profile():
    params = collect({"profile": "tiny", "n_images": 3, "run_dir": "/x", "unrelated": 1})
    assert params["n_images"] == 3 and params["run_dir"] == "/x" and params["profile"] == "tiny"
    assert params["models"] == load_profile("tiny")["models"]


def _parameters_cell(path):
    import jupytext

    nb = jupytext.read(path)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    namespace: dict = {}
    exec(cells[0].source, namespace)
    return {k: v for k, v in namespace.items() if not k.startswith("__")}


def test_chapter_parameter_cells_hold_the_demo_defaults():
    demo = load_profile("demo")
    chapters = [p for p in sorted((config.REPO_ROOT / "book").glob("*.md")) if is_notebook(p)]
    assert chapters, "no executable chapters found"
    for path in chapters:
        values = _parameters_cell(path)
        assert values.get("profile") == "demo" and values.get("run_dir", 0) is None, path.name
        for key, value in values.items():
            if key in ("profile", "run_dir"):
                continue
            assert key in config.SCHEMA, f"{path.name}: parameter {key!r} is not in lib.config.SCHEMA"
            assert value == demo[key], f"{path.name}: {key}={value!r} but demo.yaml has {demo[key]!r}"
