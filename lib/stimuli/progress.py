"""tqdm progress bars without tqdm.auto's "IProgress not found" warning in notebooks
(ipywidgets is not a dependency; the text bar is fine)."""

from __future__ import annotations

import warnings


def tqdm(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm as _tqdm

        return _tqdm(*args, **kwargs)
