"""Every page of the tiny-profile book, opened in headless Chromium as a reader would.

Fails on a page that shows an error (a traceback or error output), an image that did not
load, a JavaScript console error or exception, or a table wider than the text column.
"""

import pytest

from lib.build import toc_chapters

pytest.importorskip("websocket", reason="websocket-client is not installed (pip install -e '.[test]')")
import cdp  # noqa: E402  (tests/cdp.py)

CHECK_PAGE = r"""
(() => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const column = article.clientWidth;
  const errors = [...document.querySelectorAll('.output.traceback, .output.error, .cell_output .stderr')]
      .map(e => e.textContent.trim().slice(0, 200));
  for (const o of document.querySelectorAll('.cell_output')) {
    if (/Traceback \(most recent call last\)|\bError:/.test(o.textContent)) errors.push(o.textContent.trim().slice(0, 200));
  }
  const images = [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src.slice(0, 120));
  const wide = [...article.querySelectorAll('table')]
      .filter(t => t.getBoundingClientRect().width > column + 1)
      .map(t => `${Math.round(t.getBoundingClientRect().width)} px > ${column} px: ` +
                (t.querySelector('tr') || t).textContent.trim().slice(0, 80));
  return {errors, images, wide, column, title: document.title};
})()
"""


@pytest.fixture(scope="module")
def browser():
    exe = cdp.find_chromium()
    if exe is None:
        pytest.skip("chromium is not installed (`make test` installs Debian's chromium; "
                    "or apt-get install chromium)")
    b = cdp.Browser(exe)
    yield b
    b.close()


PAGES = [c.stem for c in toc_chapters()]


@pytest.mark.slow
@pytest.mark.parametrize("stem", PAGES)
def test_page_reads_cleanly_in_a_browser(tiny_book, browser, stem):
    page = tiny_book / "html" / "book" / f"{stem}.html"
    assert page.is_file(), f"{stem} was not rendered"
    problems = browser.open(page.as_uri())
    found = browser.evaluate(CHECK_PAGE)
    assert found["column"] > 300, f"{stem}: no text column found ({found})"
    problems += [f"error shown: {e}" for e in found["errors"]]
    problems += [f"image not loaded: {i}" for i in found["images"]]
    problems += [f"table wider than the text column: {w}" for w in found["wide"]]
    assert not problems, f"{stem} ({found['title']}):\n  " + "\n  ".join(problems)


def test_the_checks_catch_a_broken_page(browser, tmp_path):
    """The same checks on a page built to fail them: each problem kind is reported."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<html><body><article class="bd-article" style="width:600px">'
        '<div class="cell_output"><div class="output traceback">Traceback (most recent call last): boom</div></div>'
        '<img src="missing.png"><table style="width:900px"><tr><td>wide</td></tr></table>'
        "<script>console.error('broken script')</script></article></body></html>")
    problems = browser.open(page.as_uri())
    found = browser.evaluate(CHECK_PAGE)
    assert any("broken script" in p for p in problems)
    assert found["errors"] and "Traceback" in found["errors"][0]
    assert found["images"] and found["images"][0].endswith("missing.png")
    assert found["wide"] and found["wide"][0].startswith("900 px > 600 px")
