"""`make publish` puts the built HTML on a gh-pages branch; here against a local bare repository."""

import subprocess

import pytest

from lib.publish import PublishError, publish


def _git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def _site(root, text):
    (root / "book").mkdir(parents=True)
    (root / "index.html").write_text(f"<html>{text}</html>")
    (root / "book" / "02_saliency.html").write_text("<html>chapter</html>")
    return root


def test_publish_to_a_bare_repository_keeps_history(tmp_path):
    remote = tmp_path / "remote.git"
    _git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    first = publish(_site(tmp_path / "v1", "one"), str(remote), message="first")
    files = set(_git("ls-tree", "-r", "--name-only", "gh-pages", cwd=remote).split())
    assert files == {"index.html", "book/02_saliency.html", ".nojekyll"}
    assert _git("rev-parse", "gh-pages", cwd=remote).strip() == first
    assert _git("show", "gh-pages:index.html", cwd=remote) == "<html>one</html>"

    second = publish(_site(tmp_path / "v2", "two"), str(remote), message="second")
    assert _git("show", "gh-pages:index.html", cwd=remote) == "<html>two</html>"
    assert _git("rev-parse", f"{second}^", cwd=remote).strip() == first  # one commit per publication


def test_publish_refuses_a_missing_build_and_an_unknown_remote(tmp_path):
    with pytest.raises(PublishError, match="build the book first"):
        publish(tmp_path, str(tmp_path / "nowhere.git"))
    with pytest.raises(PublishError, match="not a remote"):
        publish(_site(tmp_path / "site", "x"), "no-such-remote-name")


def test_make_publish_runs_the_command_line_with_the_remote(tmp_path):
    from lib.config import REPO_ROOT
    from lib.publish import main

    make = (REPO_ROOT / "Makefile").read_text()
    assert "-m lib.publish _build/html --remote $(REMOTE)" in make
    remote = tmp_path / "pages.git"
    _git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    assert main([str(_site(tmp_path / "site", "cli")), "--remote", str(remote)]) == 0
    assert _git("show", "gh-pages:index.html", cwd=remote) == "<html>cli</html>"
    assert main([str(tmp_path / "nothing-built"), "--remote", str(remote)]) == 1
