"""environment.yml (conda users) lists exactly the dependencies of pyproject.toml."""

import tomllib

import yaml

from lib.config import REPO_ROOT


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert set(pip) == wanted


def test_makefile_installs_the_pinned_torch():
    make = (REPO_ROOT / "Makefile").read_text()
    assert "torch==2.14.1 torchvision==0.29.1" in make
    assert (REPO_ROOT / ".ci" / "run").read_text().strip().endswith("make test")
