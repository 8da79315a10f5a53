"""Build pipeline: papermill injects the profile; failures name the chapter and keep the notebook."""

import json
import shutil
import subprocess
import sys

import nbformat
import pytest

from lib.build import BuildError, build, execute_chapter, find_chapter, toc_chapters
from lib.config import REPO_ROOT, load_profile

HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


def _book(tmp_path, body: str):
    """A throw-away book with one executable chapter and one plain page."""
    root = tmp_path / "book_root"
    (root / "book").mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "_config.yml", root / "_config.yml")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/01_probe\n")
    (root / "book" / "intro.md").write_text("# Intro\n\nPlain page.\n")
    (root / "book" / "01_probe.md").write_text(HEADER + body)
    return root


PROBE = """
# Probe

```{code-cell} ipython3
:tags: [parameters]

profile = "demo"
run_dir = None
n_images = None
```

```{code-cell} ipython3
import json, lib.config
params = lib.config.collect(globals())
print(json.dumps({"n_images": params["n_images"], "profile": params["profile"], "seed": params["seed"]}))
```
"""


def _outputs(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_chapter_executes_with_injected_parameters(tmp_path):
    root = _book(tmp_path, PROBE)
    chapter = toc_chapters(root)[1]
    params = load_profile("tiny", {"n_images": 5, "seed": 7})
    out = tmp_path / "out" / "probe.ipynb"
    seconds = execute_chapter(chapter, params, out, tmp_path / "run")
    assert seconds > 0
    printed = json.loads(_outputs(out).strip().splitlines()[-1])
    assert printed == {"n_images": 5, "profile": "tiny", "seed": 7}


def test_failing_cell_fails_the_build_naming_the_chapter(tmp_path):
    body = PROBE + "\n```{code-cell} ipython3\nraise ValueError('planted failure')\n```\n"
    root = _book(tmp_path, body)
    out = tmp_path / "out"
    with pytest.raises(BuildError) as err:
        build("tiny", out=out, root=root, log=lambda *a, **k: None)
    msg = str(err.value)
    assert "01_probe" in msg and "planted failure" in msg and "ValueError" in msg
    kept = out / "executed" / "01_probe.ipynb"
    assert kept.is_file() and '"profile": "tiny"' in _outputs(kept)  # partial results kept
    assert not (out / "html").exists()


def test_full_build_of_a_throwaway_book_renders_html(tmp_path):
    root = _book(tmp_path, PROBE)
    index = build("tiny", {"n_images": 4}, out=tmp_path / "out", root=root, log=lambda *a, **k: None)
    assert index.is_file()
    page = (tmp_path / "out" / "html" / "book" / "01_probe.html").read_text()
    assert "&quot;n_images&quot;: 4" in page or '"n_images": 4' in page
    timings = json.loads((tmp_path / "out" / "run" / "timings.json").read_text())
    assert set(timings) == {"01_probe"}


def test_toc_entry_without_a_file_is_an_error(tmp_path):
    root = _book(tmp_path, PROBE)
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/missing\n")
    with pytest.raises(BuildError, match="missing"):
        toc_chapters(root)


def test_unknown_chapter_lists_the_valid_ones():
    with pytest.raises(BuildError, match="reproducibility"):
        find_chapter("no_such_chapter")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "lib", *args], capture_output=True, text=True, cwd=REPO_ROOT)


def test_cli_rejects_unknown_profile_and_parameter_before_any_work():
    done = _cli("build", "--profile", "papr")
    assert done.returncode == 2 and "Did you mean 'paper'" in done.stderr and "Traceback" not in done.stderr
    done = _cli("run", "reproducibility", "-p", "n_image=3")
    assert done.returncode == 2 and "Did you mean 'n_images'" in done.stderr
    done = _cli("build", "-p", "n_images=lots")
    assert done.returncode == 2 and "must be int" in done.stderr


def test_cli_run_prints_where_the_notebook_is(tmp_path):
    out = tmp_path / "repro.ipynb"
    done = _cli("run", "reproducibility", "--profile", "tiny", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout and out.is_file()
