"""Progress bars for long work: tqdm's notebook-aware bar (text in a terminal).

ipywidgets is not a dependency, so ``tqdm.auto`` would warn "IProgress not found" in
every kernel; :mod:`lib` filters that one warning once (``lib/__init__.py``), here and in
the libraries it imports (sentence-transformers, huggingface_hub).
"""

from __future__ import annotations

from tqdm.auto import tqdm

__all__ = ["tqdm"]
