"""One image-set type for stimulus sets and brain image sets, one id scheme, and the
alignment check every comparison of two RDMs goes through.

Why: RDMs are only comparable when their rows are the same images in the same order.
Counting rows is not enough (two sets of 73 images line up by length and still differ),
so image ids travel with every RDM (rsatoolbox ``pattern_descriptors["image_id"]``) and
comparisons check them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

IMAGE_ID = "image_id"  # the pattern descriptor that carries image ids on every RDM


class AlignmentError(ValueError):
    """Two things compared over images that are not the same images in the same order."""


def nsd_image_id(nsd_id: int) -> str:
    """The one id of an NSD image (``nsd-00013``), on stimulus and brain sides alike."""
    return f"nsd-{int(nsd_id):05d}"


def check_aligned(a: Sequence[Any], b: Sequence[Any], what_a: str, what_b: str) -> None:
    """``a`` and ``b`` must be the same image ids in the same order; the error names both
    sides and the first difference (or the count mismatch)."""
    a, b = [str(v) for v in a], [str(v) for v in b]
    if len(a) != len(b):
        raise AlignmentError(f"{what_a} is over {len(a)} images but {what_b} over {len(b)}; compute both on the "
                             "same image set")
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            extra = "" if sorted(a) != sorted(b) else " (same images, different order)"
            raise AlignmentError(f"{what_a} and {what_b} are not over the same images: position {i} is {x!r} in "
                                 f"the first and {y!r} in the second{extra}. Compute both on the same image set")


def rdm_ids(rdms) -> list[str]:
    """Image ids carried by an rsatoolbox RDMs (error when it carries none)."""
    desc = rdms.pattern_descriptors or {}
    if IMAGE_ID not in desc or desc[IMAGE_ID] is None or len(desc[IMAGE_ID]) != rdms.n_cond:
        raise AlignmentError(f"an RDM without {IMAGE_ID!r} pattern descriptors cannot be lined up with others "
                             f"(it has {sorted(desc)}); build it with pattern_descriptors={{'{IMAGE_ID}': ids}}")
    return [str(v) for v in desc[IMAGE_ID]]


@dataclass
class ImageSet:
    """Images with ids and captions, identified by ``cache_key`` for downstream caches.

    Loaders are called at most once and only when needed (a cache hit downstream never
    decodes images). ``saliency_maps`` / ``caption_embeddings`` give the inputs of the
    saliency and semantic references (precomputed for stimulus sets, computed on demand
    for brain image sets).
    """

    ids: list[str]
    cache_key: str
    captions: dict[str, list[str]]
    load_images: Callable[[], list[np.ndarray]]
    load_saliency_maps: Callable[[], list[np.ndarray]] | None = None
    load_caption_embeddings: Callable[[], np.ndarray] | None = None
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.ids = [str(i) for i in self.ids]
        if len(set(self.ids)) != len(self.ids):
            dup = sorted({i for i in self.ids if self.ids.count(i) > 1})
            raise ValueError(f"image set {self.cache_key}: duplicate image ids {dup[:10]}")
        missing = [i for i in self.ids if i not in self.captions]
        if missing:
            raise ValueError(f"image set {self.cache_key}: no captions for {missing[:10]}")

    def __len__(self) -> int:
        return len(self.ids)

    def _once(self, name: str, loader: Callable[[], Any] | None) -> Any:
        if loader is None:
            raise ValueError(f"image set {self.cache_key} has no {name}")
        if name not in self._memo:
            value = loader()
            if len(value) != len(self.ids):
                raise AlignmentError(f"image set {self.cache_key}: {len(value)} {name} for {len(self.ids)} ids")
            self._memo[name] = value
        return self._memo[name]

    def images(self) -> list[np.ndarray]:
        return self._once("images", self.load_images)

    def saliency_maps(self) -> list[np.ndarray]:
        return self._once("saliency maps", self.load_saliency_maps)

    def caption_embeddings(self) -> np.ndarray:
        return self._once("caption embeddings", self.load_caption_embeddings)

    def caption_lists(self) -> list[list[str]]:
        """Captions per image, ids order."""
        return [list(self.captions[i]) for i in self.ids]


__all__ = ["ImageSet", "AlignmentError", "check_aligned", "rdm_ids", "nsd_image_id", "IMAGE_ID"]
