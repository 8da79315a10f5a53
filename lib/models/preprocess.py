"""Image preprocessing: the paper's CLIP transform for every network, or a model's own."""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch

from lib.models.base import ModelError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGE_SIZE = 224


def clip_transform(size: int = IMAGE_SIZE) -> Callable:
    """CLIP's transform (bicubic resize of the short side, centre crop, CLIP mean/std):
    the original study used it for every network, supervised ones included."""
    from torchvision import transforms as T

    return T.Compose([
        T.Resize(size, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(size),
        T.ToTensor(),
        T.Normalize(CLIP_MEAN, CLIP_STD),
    ])


def _to_pil(image: np.ndarray):
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ModelError(f"images must be uint8 (H, W, 3) arrays, got {arr.dtype} {arr.shape}")
    return Image.fromarray(arr)


class Preprocess:
    """uint8 (H, W, 3) images -> normalised float tensor batch (n, 3, 224, 224)."""

    def __init__(self, transform: Callable, kind: str):
        self.transform = transform
        self.kind = kind

    def __call__(self, images: Iterable[np.ndarray]) -> torch.Tensor:
        tensors = [self.transform(_to_pil(im)) for im in images]
        if not tensors:
            raise ModelError("no images to preprocess")
        return torch.stack(tensors)
