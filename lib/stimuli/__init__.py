"""Stimuli: image sources, Itti–Koch saliency, caption embeddings, the five-condition set.

Importing this package is light (no torch, no models): it registers the ``doctor``
checks of the stimulus inputs and the ``coco-nsd`` fetcher, and exposes the public API
lazily.
"""

from __future__ import annotations

from typing import Any

from lib.stimuli.distractors import CONDITIONS, EDITED  # numpy/pandas/cv2 only
from lib.stimuli import checks as _checks  # noqa: F401  (registers doctor + fetch)

__all__ = ["CONDITIONS", "EDITED", "StimulusSet", "build_stimulus_set"]


def __getattr__(name: str) -> Any:
    if name in ("StimulusSet", "build_stimulus_set", "describe_conditions"):
        from lib.stimuli import stimulus_set

        return getattr(stimulus_set, name)
    raise AttributeError(f"module 'lib.stimuli' has no attribute {name!r}")
