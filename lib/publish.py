"""Put a built book on a ``gh-pages`` branch (GitHub Pages), with ghp-import.

Why a scratch repository: ghp-import writes the branch into the repository it runs in.
Running it in a throw-away clone keeps the project's own repository free of a
``gh-pages`` branch and of half-published state; only the push reaches ``remote``.
``remote`` is a remote name of the project repository (``origin``), a URL or a path to a
(bare) repository, so tests publish to a local bare repository.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
from pathlib import Path

from lib.config import REPO_ROOT

BRANCH = "gh-pages"


class PublishError(RuntimeError):
    """Nothing to publish, or git refused; the message says which and what to do."""


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise PublishError(f"git {' '.join(args)} failed in {cwd}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def remote_url(remote: str, repo: Path = REPO_ROOT) -> str:
    """A remote name of ``repo`` resolved to its URL; a URL or path passes through."""
    if "/" in remote or ":" in remote or Path(remote).exists():
        return remote
    try:
        return _git("remote", "get-url", remote, cwd=repo)
    except PublishError as err:
        raise PublishError(f"{remote!r} is not a remote of {repo} (add it with `git remote add {remote} URL`, "
                           f"or pass a URL): {err}") from None


def publish(html_dir: Path, remote: str = "origin", branch: str = BRANCH, message: str | None = None,
            repo: Path = REPO_ROOT) -> str:
    """Commit ``html_dir`` as the whole content of ``branch`` and push it to ``remote``.

    Keeps the branch's history (each publication is one commit on top of the last). Returns
    the pushed commit. A missing or empty build is refused before anything is written.
    """
    from ghp_import import GhpError, ghp_import

    html_dir = Path(html_dir).resolve()
    if not (html_dir / "index.html").is_file():
        raise PublishError(f"{html_dir} has no index.html: build the book first (`make book` or "
                           f"`python -m lib build --profile paper`)")
    url = remote_url(remote, repo)
    message = message or f"Publish the book from {html_dir.name} ({_describe(repo)})"
    with tempfile.TemporaryDirectory(prefix="publish-") as tmp:
        scratch = Path(tmp)
        _git("init", "-q", cwd=scratch)
        _git("config", "user.name", _config(repo, "user.name", "book publisher"), cwd=scratch)
        _git("config", "user.email", _config(repo, "user.email", "book@localhost"), cwd=scratch)
        _git("remote", "add", "publish", url, cwd=scratch)
        with contextlib.suppress(PublishError):  # a first publication: the branch does not exist yet
            _git("fetch", "-q", "publish", f"{branch}:refs/remotes/publish/{branch}", cwd=scratch)
        with contextlib.chdir(scratch):
            try:
                ghp_import(str(html_dir), remote="publish", branch=branch, mesg=message, push=True, nojekyll=True)
            except (GhpError, subprocess.CalledProcessError) as err:
                raise PublishError(f"publishing to {url} ({branch}) failed: {err}") from None
        return _git("rev-parse", branch, cwd=scratch)


def _config(repo: Path, key: str, default: str) -> str:
    with contextlib.suppress(PublishError):
        value = _git("config", key, cwd=repo)
        if value:
            return value
    return default


def _describe(repo: Path) -> str:
    with contextlib.suppress(PublishError):
        return "commit " + _git("rev-parse", "--short", "HEAD", cwd=repo)
    return "no git commit"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lib.publish", description=__doc__.splitlines()[0])
    p.add_argument("html", nargs="?", default=str(REPO_ROOT / "_build" / "html"), help="built book (index.html)")
    p.add_argument("--remote", default="origin", help="remote name, URL or path (default: origin)")
    p.add_argument("--branch", default=BRANCH)
    args = p.parse_args(argv)
    try:
        commit = publish(Path(args.html), args.remote, args.branch)
    except PublishError as err:
        print(f"publish: {err}", file=sys.stderr)
        return 1
    print(f"published {args.html} to {args.remote} ({args.branch} @ {commit[:12]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
