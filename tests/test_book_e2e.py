"""The whole book builds with the tiny profile, so no chapter can rot."""

import nbformat
import pytest

from lib.build import toc_chapters


@pytest.mark.slow
def test_tiny_profile_builds_every_chapter(tiny_book):
    out = tiny_book
    assert (out / "html" / "index.html").is_file()
    chapters = toc_chapters()
    for chapter in chapters:
        page = out / "html" / "book" / f"{chapter.stem}.html"
        assert page.is_file(), f"{chapter.stem} was not rendered"
        if chapter.is_notebook:
            nb = nbformat.read(out / "executed" / f"{chapter.stem}.ipynb", as_version=4)
            errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                      if o.output_type == "error"]
            assert not errors, f"{chapter.stem} has error outputs"
    repro = (out / "html" / "book" / "reproducibility.html").read_text()
    assert "tiny" in repro and "git_commit" not in repro  # values shown, not raw keys
