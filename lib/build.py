"""Execute the chapters with papermill, then render the executed notebooks with jupyter-book.

Why two stages: papermill injects a profile's parameters into each chapter's
``parameters`` cell (so one source serves demo, tiny and paper runs), while jupyter-book
only renders; its own execution stays off. Chapters share nothing in memory: each one
asks ``lib`` for what it needs and the artifact store makes repeated requests cheap.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
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


class BuildInterrupted(BuildError):
    """Ctrl-C during a build; the message says what finished and that a rerun resumes."""


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


def _kernel_manager(log_path: Path):
    """A kernel manager whose kernel writes its own stderr (start-up notices, and the
    tracebacks a kernel prints when its build is interrupted or it crashes) to
    ``log_path`` instead of the console; cell output still reaches the notebook."""
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            log_path.parent.mkdir(parents=True, exist_ok=True)
            kw.setdefault("stderr", open(log_path, "ab"))  # noqa: SIM115 (lives as long as the kernel)
            return await super().start_kernel(**kw)

    return LoggedKernelManager


def execute_chapter(chapter: Chapter, params: dict[str, Any], output: Path, run_dir: Path) -> float:
    """Run one chapter top to bottom with papermill; returns seconds taken.

    On a failing cell the partially executed notebook stays at ``output`` and a
    :class:`BuildError` names the chapter, the cell and the error.
    """
    import logging

    import jupytext
    import papermill
    from nbclient.exceptions import DeadKernelError
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
    kernel_log = run_dir / f"{chapter.stem}.kernel.log"
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(source_nb), str(output), parameters=injected, kernel_name=KERNEL,
            cwd=str(REPO_ROOT), progress_bar=False, log_output=False,
            extra_arguments=["--log-level=ERROR"],  # no kernel start-up notices on the console
            kernel_manager_class=_kernel_manager(kernel_log),
        )
    except PapermillExecutionError as err:
        if err.ename == "KeyboardInterrupt":  # Ctrl-C reaches the kernel too: the same interruption
            raise KeyboardInterrupt from None
        raise BuildError(
            f"chapter {chapter.stem!r} failed in cell {err.exec_count}: {err.ename}: {err.evalue}\n"
            f"  partially executed notebook kept at {output}"
        ) from None
    except DeadKernelError:
        raise BuildError(
            f"chapter {chapter.stem!r}: its kernel died while running. The likely cause is memory: the operating "
            "system kills a kernel that uses more than the machine has. Lower -p memory_budget_gb, -p batch_size "
            "or -p n_images, or close other programs, then rerun (finished work is cached). Kernel log: "
            f"{kernel_log}" + (f"\n  partially executed notebook kept at {output}" if output.is_file() else "")
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


LOCK_NAME = ".build.lock"
OUTPUT_RESERVE_BYTES = 500 * 2**20  # executed notebooks + staged site + HTML of a demo build, generously


@contextlib.contextmanager
def build_lock(out: Path):
    """Hold ``<out>/.build.lock`` for the whole build. A second build into the same folder
    refuses at once (it does not queue), naming the build that holds the lock; the lock
    disappears with its process, so a killed build never blocks the next one."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    fh = open(out / LOCK_NAME, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise BuildError(f"another build is writing into {out} ({holder}); wait for it to finish, or build into "
                         "another folder with --out <folder>") from None
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        fh.flush()
        yield
    finally:
        fh.close()  # releases the lock


def _check_writable(folder: Path, what: str, fix: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-"):
            pass
    except OSError as err:
        raise BuildError(f"the {what} {folder} is not writable ({err.strerror or err}); {fix}") from None


def estimate_disk_bytes(params: dict[str, Any]) -> int:
    """Upper estimate of what a build writes into the cache, counting every artifact as new.

    n base images x 5 conditions x (RGB uint8 image + float32 saliency map) at the
    source's image side (demo 384, NSD crops 425, folder max_image_side), plus per model
    150 layers x 5 conditions x n*(n-1)/2 float64 RDM entries, plus 200 MB for
    caption embeddings, RSA tables, brain artifacts and the output, all x 1.5."""
    source = params.get("source")
    n = params.get("n_images")
    if n is None:
        if source == "folder" and params.get("folder_path"):
            from lib.config import resolve_path
            from lib.stimuli.imageio import IMAGE_SUFFIXES

            folder = resolve_path(params["folder_path"])
            n = sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else 0
        else:
            n = 21 if source == "demo" else 1000 if params.get("nsd_shared1000", True) else 10000
    side = {"demo": 384, "coco_nsd": 425}.get(source, params.get("max_image_side", 1024))
    images = n * 5 * side * side * (3 + 4)
    rdms = len(params.get("models", [])) * 150 * 5 * n * (n - 1) // 2 * 8
    return int(1.5 * (images + rdms + 200 * 2**20))


def preflight(params: dict[str, Any], out: Path) -> None:
    """Checks that would otherwise fail after minutes of work: the device asked for exists,
    the output and cache folders are writable, and the cache's disk has room for the
    planned work (:func:`estimate_disk_bytes`)."""
    from lib.config import pick_device, resolve_path

    _check_writable(out, "output folder", "choose a writable one with --out <folder>")
    cache = resolve_path(params["cache_dir"])
    _check_writable(cache, "cache folder (cache_dir)", "set -p cache_dir=<writable folder>")
    pick_device(params["device"])  # ConfigError: device=cuda without a GPU
    need = estimate_disk_bytes(params)
    free = shutil.disk_usage(cache).free
    if free < need:
        raise BuildError(
            f"not enough free disk for this build: about {need / 2**30:.1f} GB may be written to {cache} (an upper "
            f"estimate: images, saliency maps and layer RDMs for the planned images and models), {free / 2**30:.1f} "
            "GB are free. Free some space, set -p cache_dir=<folder on a larger disk>, or lower -p n_images")
    if shutil.disk_usage(out).free < OUTPUT_RESERVE_BYTES:
        raise BuildError(f"less than {OUTPUT_RESERVE_BYTES // 2**20} MB free for the output folder {out}; free "
                         "some space or use --out <folder on another disk>")


def build(profile: str = "demo", overrides: dict[str, Any] | None = None, out: Path = BUILD_DIR,
          root: Path = REPO_ROOT, log=print) -> Path:
    """Execute every chapter of the book with a profile, render it; returns index.html.

    Before any chapter runs: parameters are validated, :func:`preflight` checks device,
    folders and disk, and the output folder is locked against a second build. Ctrl-C
    raises :class:`BuildInterrupted` saying which chapters finished."""
    overrides = overrides or {}
    params = load_profile(profile, overrides)  # fail on bad parameters before any work
    chapters = toc_chapters(root)
    # The root page (intro) summarises the others (the claims dashboard), so it runs last.
    notebooks = sorted((c for c in chapters if c.is_notebook), key=lambda c: c.stem == chapters[0].stem)
    preflight(params, out)
    with build_lock(out):
        run_dir, executed = out / "run", out / "executed"
        start_run(run_dir, params, overrides)
        log(f"build: profile {profile!r}, {len(notebooks)} chapters to execute -> {out}")
        total = time.perf_counter()
        done: list[str] = []
        try:
            for i, chapter in enumerate(notebooks, 1):
                log(f"  [{i}/{len(notebooks)}] {chapter.stem} ...", end="", flush=True)
                seconds = execute_chapter(chapter, params, executed / f"{chapter.stem}.ipynb", run_dir)
                record_timing(run_dir, chapter.stem, seconds)
                done.append(chapter.stem)
                log(f" {seconds:.1f} s")
            log("  rendering with jupyter-book ...", end="", flush=True)
            t = time.perf_counter()
            stage_site(chapters, executed, out / "site", root)
            render(out / "site", out / "html")
        except KeyboardInterrupt:
            log("")
            raise BuildInterrupted(interrupted_message(done, [c.stem for c in notebooks])) from None
        log(f" {time.perf_counter() - t:.1f} s")
    index = out / "html" / "index.html"
    log(f"build: done in {time.perf_counter() - total:.1f} s -> {index}")
    return index


def interrupted_message(finished: list[str], planned: list[str]) -> str:
    """One line: what finished, what did not, and that a rerun resumes."""
    rest = [c for c in planned if c not in finished]
    done = ", ".join(finished) or "none"
    todo = ", ".join(rest) or "rendering only"
    return (f"interrupted. Chapters finished: {done}; not finished: {todo}. Rerun the same command to resume: "
            "finished work is cached.")
