"""One look for every figure of the book: fonts, layout and the two palettes.

Why one module: a reader compares figures across chapters, so the saliency reference must
be the same colour everywhere, a model the same colour in every chapter, and no text may
shrink below 9 pt at the width the book renders a figure (about 7 inches at 100 dpi in
the jupyter-book theme; figures are drawn at that width or narrower, never scaled down).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import matplotlib as mpl

from lib import references

MIN_FONT_PT = 9
TEXT_WIDTH_IN = 7.0  # the book's text column at 100 dpi; wider figures are shrunk by the browser

# The reference RDMs, everywhere in the book: one colour per registry entry (Okabe–Ito
# orange / blue / pink: colour-blind safe), defined with the reference in lib.references.
REFERENCE_COLOURS = references.palette()
# The five stimulus conditions.
CONDITION_COLOURS = {"Baseline": "#009E73", "Control": "#7F7F7F", "Salient": "#E69F00",
                     "Semantic": "#56B4E9", "Semantic_Salient": "#CC79A7"}
# Models: a fixed colour per registry name where we know it, then a cycle for the rest.
MODEL_COLOURS = {
    "resnet50": "#1b9e77", "resnet101": "#66a61e", "clip_rn50": "#d95f02", "clip_rn101": "#e6ab02",
    "vit_b16": "#7570b3", "vit_b32": "#a6761d", "vit_l16": "#666666",
    "clip_vit_b16": "#e7298a", "clip_vit_b32": "#8c564b", "clip_vit_l14": "#17becf",
}
_MODEL_CYCLE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")
PUBLISHED_STYLE = {"color": "0.15", "ls": "--", "lw": 1.3}  # the original's curves: dark dashed
PUBLISHED_LABEL = "published (pretrained, original stimuli)"

RC = {
    "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9,
    "ytick.labelsize": 9, "legend.fontsize": 9, "legend.title_fontsize": 9, "figure.titlesize": 11,
    "figure.dpi": 100, "savefig.dpi": 100, "figure.constrained_layout.use": True,
    "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False,
    "image.cmap": "viridis",
}


def apply() -> None:
    """Make the book style the default for this kernel (chapters call it once via lib.plots)."""
    mpl.rcParams.update(RC)


@contextmanager
def book_style() -> Iterator[None]:
    """The book style for a block of code only (tests, one-off figures)."""
    with mpl.rc_context(RC):
        yield


def model_colours(models: Sequence[str]) -> dict[str, str]:
    """A colour per model: the fixed colour of a known model, else the next unused cycle colour."""
    out = {m: MODEL_COLOURS[m] for m in models if m in MODEL_COLOURS}
    spare = iter([c for c in _MODEL_CYCLE if c not in out.values()] + list(_MODEL_CYCLE) * len(models))
    for m in models:
        if m not in out:
            out[m] = next(spare)
    return out


def small_texts(fig, min_pt: float = MIN_FONT_PT) -> list[str]:
    """Texts of ``fig`` set below ``min_pt`` (a check the tests run on every figure)."""
    fig.canvas.draw()
    small = []
    for t in fig.findobj(mpl.text.Text):
        if t.get_visible() and t.get_text().strip() and t.get_fontsize() < min_pt - 1e-6:
            small.append(f"{t.get_text()!r} at {t.get_fontsize():.1f} pt")
    return small
