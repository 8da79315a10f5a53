"""Execute the chapters with papermill, then render the executed notebooks with jupyter-book.

Why two stages: papermill injects a profile's parameters into each chapter's
``parameters`` cell (so one source serves demo, tiny and paper runs), while jupyter-book
only renders; its own execution stays off. Chapters share nothing in memory: each one
asks ``lib`` for what it needs and the artifact store makes repeated requests cheap.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lib.config import REPO_ROOT, load_profile

BUILD_DIR = REPO_ROOT / "_build"
KERNEL = "python3"


class BuildError(RuntimeError):
    """A chapter failed or the renderer failed; the message names which and where to look."""


@dataclass(frozen=True)
class Chapter:
    """One entry of the table of contents."""

    stem: str
    source: Path  # book/<stem>.md

    @property
    def is_notebook(self) -> bool:
        return is_notebook(self.source)


def is_notebook(path: Path) -> bool:
    """A chapter is executable when its front matter names a kernel (jupytext MyST)."""
    text = path.read_text()
    if not text.startswith("---"):
        return False
    front = text.split("---", 2)[1]
    return "kernelspec" in (yaml.safe_load(front) or {})


def _toc_files(node: Any) -> list[str]:
    files: list[str] = []
    if isinstance(node, dict):
        if "file" in node:
            files.append(node["file"])
        for key in ("chapters", "parts", "sections"):
            for child in node.get(key, []) or []:
                files.extend(_toc_files(child))
    return files


def toc_chapters(root: Path = REPO_ROOT) -> list[Chapter]:
    """Every page in ``_toc.yml``, in reading (= execution) order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"], *_toc_files(toc)]
    chapters = []
    for f in files:
        source = root / f"{f}.md"
        if not source.is_file():
            raise BuildError(f"_toc.yml lists {f!r} but {source} does not exist")
        chapters.append(Chapter(Path(f).name, source))
    return chapters


def find_chapter(name: str, root: Path = REPO_ROOT) -> Chapter:
    """A chapter by stem (``02_saliency``), short name (``saliency``) or path."""
    candidates = [c for c in toc_chapters(root) if c.is_notebook]
    for c in candidates:
        if name in (c.stem, str(c.source), c.stem.split("_", 1)[-1]):
            return c
    valid = ", ".join(c.stem for c in candidates)
    raise BuildError(f"unknown chapter {name!r}; executable chapters: {valid}")


def execute_chapter(chapter: Chapter, params: dict[str, Any], output: Path, run_dir: Path) -> float:
    """Run one chapter top to bottom with papermill; returns seconds taken.

    On a failing cell the partially executed notebook stays at ``output`` and a
    :class:`BuildError` names the chapter, the cell and the error.
    """
    import logging

    import jupytext
    import papermill
    from papermill.exceptions import PapermillExecutionError

    # The whole profile is injected and was validated by lib.config already; papermill's
    # "unknown parameter" notices for keys a chapter does not declare are expected.
    logging.getLogger("papermill").setLevel(logging.ERROR)

    output.parent.mkdir(parents=True, exist_ok=True)
    source_nb = output.parent / f".{chapter.stem}.source.ipynb"
    notebook = jupytext.read(chapter.source)
    notebook.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    jupytext.write(notebook, source_nb)
    injected = {k: v for k, v in params.items() if k != "run_dir"} | {"run_dir": str(run_dir)}
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(source_nb), str(output), parameters=injected, kernel_name=KERNEL,
            cwd=str(REPO_ROOT), progress_bar=False, log_output=False,
            extra_arguments=["--log-level=ERROR"],  # no kernel start-up notices on the console
        )
    except PapermillExecutionError as err:
        raise BuildError(
            f"chapter {chapter.stem!r} failed in cell {err.exec_count}: {err.ename}: {err.evalue}\n"
            f"  partially executed notebook kept at {output}"
        ) from None
    finally:
        source_nb.unlink(missing_ok=True)
    return time.perf_counter() - start


def git_commit(root: Path = REPO_ROOT) -> str:
    """HEAD commit, with '+dirty' when the work tree differs; 'unknown' outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def start_run(run_dir: Path, params: dict[str, Any], overrides: dict[str, Any]) -> None:
    """A fresh run folder with the manifest the Reproducibility page reads."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    manifest = {
        "started": time.time(),
        "profile": params["profile"],
        "params": {k: v for k, v in params.items() if k not in ("profile", "run_dir")},
        "overrides": overrides,
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    (run_dir / "run.json").write_text(json.dumps(manifest, indent=1, default=str))


def record_timing(run_dir: Path, stem: str, seconds: float) -> None:
    path = run_dir / "timings.json"
    timings = json.loads(path.read_text()) if path.is_file() else {}
    timings[stem] = round(seconds, 2)
    path.write_text(json.dumps(timings, indent=1))


def stage_site(chapters: list[Chapter], executed: Path, site: Path, root: Path = REPO_ROOT) -> None:
    """The folder jupyter-book renders: config, toc, plain pages and executed notebooks."""
    if site.exists():
        shutil.rmtree(site)
    (site / "book").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, site / name)
    for asset in (root / "book").iterdir():  # images, bibliography, static files
        if asset.suffix != ".md" and not asset.name.startswith("."):
            copy = shutil.copytree if asset.is_dir() else shutil.copy2
            copy(asset, site / "book" / asset.name)
    for c in chapters:
        if c.is_notebook:
            _fold_parameter_cells(executed / f"{c.stem}.ipynb", site / "book" / f"{c.stem}.ipynb")
        else:
            shutil.copy2(c.source, site / "book" / c.source.name)


def _fold_parameter_cells(source: Path, target: Path) -> None:
    """The page shows results, not set-up. The values this run injected stay one labelled
    click away (folded); the chapter's default parameters and code cells that print nothing
    (imports) leave the page, so no empty toggles head a chapter. All of it stays reachable:
    the page's download button gives the notebook, the Reproducibility page every parameter."""
    import nbformat

    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        tags = list(cell.metadata.get("tags", []))
        if "injected-parameters" in tags:
            tags.append("hide-cell")
            cell.metadata["mystnb"] = {"code_prompt_show": "Show the parameters of this run",
                                       "code_prompt_hide": "Hide the parameters"}
        elif "parameters" in tags or (cell.cell_type == "code" and not cell.get("outputs")
                                      and {"hide-input", "hide-cell"} & set(tags)):
            tags.append("remove-cell")
        cell.metadata["tags"] = list(dict.fromkeys(tags))
    nbformat.write(nb, target)


def render(site: Path, html_out: Path) -> None:
    """jupyter-book (v1) with execution off; the HTML ends up in ``html_out``."""
    jb = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(site), "--path-output", str(site), "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    built = site / "_build" / "html"
    if done.returncode != 0 or not (built / "index.html").is_file():
        raise BuildError(f"jupyter-book failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    if html_out.exists():
        shutil.rmtree(html_out)
    shutil.move(str(built), str(html_out))


def build(profile: str = "demo", overrides: dict[str, Any] | None = None, out: Path = BUILD_DIR,
          root: Path = REPO_ROOT, log=print) -> Path:
    """Execute every chapter of the book with a profile, render it; returns index.html."""
    overrides = overrides or {}
    params = load_profile(profile, overrides)  # fail on bad parameters before any work
    chapters = toc_chapters(root)
    # The root page (intro) summarises the others (the claims dashboard), so it runs last.
    notebooks = sorted((c for c in chapters if c.is_notebook), key=lambda c: c.stem == chapters[0].stem)
    run_dir, executed = out / "run", out / "executed"
    start_run(run_dir, params, overrides)
    log(f"build: profile {profile!r}, {len(notebooks)} chapters to execute -> {out}")
    total = time.perf_counter()
    for i, chapter in enumerate(notebooks, 1):
        log(f"  [{i}/{len(notebooks)}] {chapter.stem} ...", end="", flush=True)
        seconds = execute_chapter(chapter, params, executed / f"{chapter.stem}.ipynb", run_dir)
        record_timing(run_dir, chapter.stem, seconds)
        log(f" {seconds:.1f} s")
    log("  rendering with jupyter-book ...", end="", flush=True)
    t = time.perf_counter()
    stage_site(chapters, executed, out / "site", root)
    render(out / "site", out / "html")
    log(f" {time.perf_counter() - t:.1f} s")
    index = out / "html" / "index.html"
    log(f"build: done in {time.perf_counter() - total:.1f} s -> {index}")
    return index
