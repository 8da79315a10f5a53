"""Reading and converting images to the one form every step uses: RGB uint8 (H, W, 3).

Why one place: sources deliver grayscale scans, RGBA PNGs, CMYK JPEGs and 16-bit TIFFs;
converting them here keeps saliency, pasting and the networks seeing the same pixels.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")


def to_rgb_uint8(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Convert grayscale, RGBA (composited on white), bool, 16-bit or float [0, 1] arrays to
    RGB uint8 (H, W, 3); anything else is an error naming the image."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ValueError(f"{name}: expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {a.shape}")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16 or (np.issubdtype(a.dtype, np.integer) and a.dtype != np.uint8 and a.max(initial=0) > 255):
        a = np.clip(np.round(a.astype(np.float64) / 65535.0 * 255.0), 0, 255).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        if np.nanmax(a, initial=0.0) > 1.0 + 1e-6 or np.nanmin(a, initial=0.0) < -1e-6:
            raise ValueError(f"{name}: float images must lie in [0, 1], got range "
                             f"[{np.nanmin(a):.3g}, {np.nanmax(a):.3g}]")
        a = np.clip(np.round(np.nan_to_num(a) * 255.0), 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        a = a.astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    elif a.shape[-1] == 4:
        alpha = a[..., 3:4].astype(np.float32) / 255.0
        a = np.round(a[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(a)


class ImageReadError(ValueError):
    """An image file that cannot be decoded; the message names the file and the fix."""


def read_image(path: str | os.PathLike, max_side: int | None = None) -> np.ndarray:
    """Read any PIL-readable file (CMYK, palette, 16-bit, RGBA included) as RGB uint8.

    ``max_side``: an image whose longer side is larger is downscaled (aspect kept) while
    it is decoded, so a 6000x4000 photo never exists at full size as a float array (JPEG
    decodes straight at a reduced scale). A truncated or non-image file is an
    :class:`ImageReadError` naming it."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} does not exist")
    try:
        with Image.open(path) as im:
            if max_side is not None and max(im.size) > max_side:
                im.draft("RGB", _fit(im.size, max_side))  # JPEG: decode at 1/2, 1/4 or 1/8 scale
                im = _plain_mode(im)
                im = im.resize(_fit(im.size, max_side), Image.Resampling.BOX)
            im.load()
            return _to_array(im, path)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        if isinstance(err, (FileNotFoundError, ImageReadError)):
            raise
        raise ImageReadError(
            f"cannot read image {path}: {err}. The file is truncated or not an image; copy or export it "
            "again, or remove it from the folder"
        ) from None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) from the file header, without decoding the pixels."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageReadError(f"cannot read image {path}: {err}. The file is truncated or not an image; copy "
                             "or export it again, or remove it from the folder") from None


def _fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(w, h) scaled so that the longer side is ``max_side``."""
    w, h = size
    scale = max_side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


_CONVERT = ("CMYK", "P", "PA", "LA", "YCbCr", "HSV", "LAB", "1", "F")


def _plain_mode(im):
    """RGB(A), L or 32-bit integer: the modes numpy conversion and resampling handle alike."""
    if im.mode in _CONVERT:
        return im.convert("RGBA" if im.mode in ("PA", "LA") or "transparency" in im.info else "RGB")
    if im.mode in ("I;16", "I;16B", "I;16L"):
        return im.convert("I")
    return im


def _to_array(im, path: Path) -> np.ndarray:
    im = _plain_mode(im)
    if im.mode == "I":
        arr = np.asarray(im).astype(np.float64)
        scale = 65535.0 if arr.max(initial=0) <= 65535 else float(arr.max())
        return to_rgb_uint8((arr / scale).clip(0, 1), str(path))
    return to_rgb_uint8(np.asarray(im), str(path))


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(to_rgb_uint8(image)).save(path)
