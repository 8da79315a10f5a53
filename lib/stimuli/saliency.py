"""Classic Itti–Koch saliency (as in pySaliencyMap), batched in torch.

Why torch and not the per-image OpenCV original: the stimulus search computes a map for
every candidate paste, so throughput bounds the whole build. Every step here is the
classic one (see ``../shared/PAPER.md``): 9-level binomial pyramid with reflect-101
borders, centre–surround at c ∈ {2,3,4}, s = c+3, c+4 with bilinear (half-pixel)
upsampling, even Gabor kernels on levels 2..8, the (1 − mean local max)² normalisation
on 16×16 tiles, weights 0.3/0.3/0.2 and a 7-tap bilateral filter. Two exact shortcuts:
bilinear resizing is linear, so normalised maps of the same level are summed *before*
being resized to the input size; and conspicuity maps of intensity and colour are
weighted and summed at their own level.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

N_LEVELS = 9
CENTRES = (2, 3, 4)
DELTAS = (3, 4)
TILE = 16
THETAS = (0.0, 45.0, 90.0, 135.0)
GABOR_SIGMA_X = 1.0768  # along the carrier
GABOR_SIGMA_Y = 1.1351
GABOR_WAVELENGTH = 3.75
GABOR_SIZE = 9
WEIGHT_INTENSITY, WEIGHT_COLOUR, WEIGHT_ORIENTATION = 0.3, 0.3, 0.2
BILATERAL_D, BILATERAL_SIGMA_COLOUR, BILATERAL_SIGMA_SPACE = 7, 3.0, 1.55
COLOUR_FLOOR = 1e-4


def _pyramid_size(n: int, level: int) -> int:
    for _ in range(level):
        n = (n + 1) // 2
    return n


def min_image_size() -> int:
    """Smallest side the model accepts: the coarsest centre level (4) must hold one full
    16-px normalisation tile with a pixel to spare, as the original's tile loop needs."""
    n = 1
    while _pyramid_size(n, max(CENTRES)) <= TILE:
        n += 1
    return n


MIN_SIZE = min_image_size()  # 257


def gabor_kernel(theta_deg: float, size: int = GABOR_SIZE) -> np.ndarray:
    """Even Gabor kernel of the classic model, centre tap 1.

    Rows are y (downwards), columns x; x' = x cosθ + y sinθ runs along the carrier, so
    θ = 0 has its cosine along the columns (it responds to vertical edges)."""
    r = size // 2
    y, x = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    t = math.radians(theta_deg)
    xp = x * math.cos(t) + y * math.sin(t)
    yp = -x * math.sin(t) + y * math.cos(t)
    g = np.exp(-(xp**2 / (2 * GABOR_SIGMA_X**2) + yp**2 / (2 * GABOR_SIGMA_Y**2)))
    g *= np.cos(2 * math.pi * xp / GABOR_WAVELENGTH)
    return (g / g[r, r]).astype(np.float32)


def reflect101_index(n: int, pad: int, device="cpu") -> torch.Tensor:
    """Indices of a length-n axis padded by ``pad`` on both sides, OpenCV's BORDER_REFLECT_101
    (folded repeatedly, so it works for axes shorter than the pad, as cv2 does)."""
    idx = np.arange(-pad, n + pad)
    if n == 1:
        idx[:] = 0
    else:
        for _ in range(64):
            bad = (idx < 0) | (idx >= n)
            if not bad.any():
                break
            idx = np.where(idx < 0, -idx, idx)
            idx = np.where(idx >= n, 2 * (n - 1) - idx, idx)
    return torch.as_tensor(idx, device=device)


def pad101(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Reflect-101 padding of the last two axes."""
    h, w = x.shape[-2:]
    if pad < h and pad < w:
        return F.pad(x, (pad, pad, pad, pad), mode="reflect")
    x = x.index_select(-2, reflect101_index(h, pad, x.device))
    return x.index_select(-1, reflect101_index(w, pad, x.device))


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """cv2.pyrDown on (N, C, H, W): 5-tap binomial blur, then keep even rows/columns.

    Separable and strided (shifted strided views, no convolution call), so the blur is
    only computed where it is kept."""
    h, w = x.shape[-2:]
    ho, wo = (h + 1) // 2, (w + 1) // 2
    p = pad101(x, 2)

    def taps(t: torch.Tensor, axis: int, n_out: int) -> torch.Tensor:
        def sl(k):
            return t.narrow(axis, k, 2 * n_out - 1)

        out = sl(0) + sl(4) + 4.0 * (sl(1) + sl(3)) + 6.0 * sl(2)
        idx = [slice(None)] * t.dim()
        idx[axis] = slice(None, None, 2)
        return out[tuple(idx)]

    rows = taps(p, -2, ho)  # (N, C, ho, w + 4)
    return taps(rows, -1, wo) * (1.0 / 256.0)


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """cv2.resize INTER_LINEAR (half-pixel centres, edge clamp) for upsampling."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def range_normalise(x: torch.Tensor) -> torch.Tensor:
    """Rescale each (N, C) map to [0, 1]; a constant map becomes 0 (as the original)."""
    mn = x.amin(dim=(-2, -1), keepdim=True)
    mx = x.amax(dim=(-2, -1), keepdim=True)
    span = mx - mn
    return (x - mn) / torch.where(span > 0, span, torch.ones_like(span))


def _tile_max(x: torch.Tensor) -> torch.Tensor:
    """Mean of the maxima of the 16×16 tiles starting before h-16 / w-16 (original loop)."""
    h, w = x.shape[-2:]
    ny, nx = len(range(0, h - TILE, TILE)), len(range(0, w - TILE, TILE))
    if ny == 0 or nx == 0:
        raise ValueError(f"map of {h}x{w} px has no {TILE}x{TILE} normalisation tile; input images "
                         f"must be at least {MIN_SIZE}x{MIN_SIZE} px")
    return F.max_pool2d(x[..., : ny * TILE, : nx * TILE], TILE).mean(dim=(-2, -1))


def _mean_local_max(x: torch.Tensor) -> torch.Tensor:
    return _tile_max(x)[..., None, None]


def itti_normalise(x: torch.Tensor) -> torch.Tensor:
    """N(·): range-normalise, then weight by (1 − mean local max)²."""
    x = range_normalise(x)
    return x * (1.0 - _mean_local_max(x)) ** 2


def bilateral(x: torch.Tensor, d: int = BILATERAL_D, sigma_colour: float = BILATERAL_SIGMA_COLOUR,
              sigma_space: float = BILATERAL_SIGMA_SPACE) -> torch.Tensor:
    """cv2.bilateralFilter for float maps (N, 1, H, W): circular window of radius d//2,
    reflect-101 border, Gaussian spatial and range weights."""
    r = d // 2
    h, w = x.shape[-2:]
    xp = pad101(x, r)
    num = torch.zeros_like(x)
    den = torch.zeros_like(x)
    cc = -0.5 / sigma_colour**2
    for i in range(-r, r + 1):
        for j in range(-r, r + 1):
            rr = i * i + j * j
            if math.sqrt(rr) > r:
                continue
            v = xp[..., r + i : r + i + h, r + j : r + j + w]
            wgt = torch.exp((v - x) ** 2 * cc) * math.exp(-0.5 * rr / sigma_space**2)
            num += wgt * v
            den += wgt
    out = num / den
    flat = (x.amax(dim=(-2, -1), keepdim=True) - x.amin(dim=(-2, -1), keepdim=True)) < 1.19e-7
    return torch.where(flat, x, out)


def _gabor_weight(device, dtype) -> torch.Tensor:
    return torch.stack([torch.from_numpy(gabor_kernel(t)) for t in THETAS])[:, None].to(device, dtype)


def _colour_level0_torch(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> (N, 3, H, W) channels I, RG, BY."""
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    intensity = 0.299 * r + 0.587 * g + 0.114 * b
    mx = torch.maximum(torch.maximum(r, g), b)
    mx = torch.where(mx <= 0, torch.full_like(mx, COLOUR_FLOOR), mx)
    rg = ((r - g) / mx).clamp_min(0)
    by = ((b - torch.minimum(r, g)) / mx).clamp_min(0)
    return torch.cat([intensity, rg, by], dim=1)


def _colour_planes_cv2(rgb_u8: np.ndarray) -> list[np.ndarray]:
    """One image (H, W, 3) uint8 -> full-size float32 planes I, RG, BY (OpenCV kernels)."""
    r8, g8, b8 = cv2.split(rgb_u8)
    scale = np.float32(1.0 / 255.0)
    r, g, b = (np.multiply(c, scale, dtype=np.float32) for c in (r8, g8, b8))
    intensity = cv2.addWeighted(cv2.addWeighted(r, 0.299, g, 0.587, 0.0), 1.0, b, 0.114, 0.0)
    mx = np.multiply(cv2.max(cv2.max(r8, g8), b8), scale, dtype=np.float32)
    mx[mx <= 0] = COLOUR_FLOOR
    rg = cv2.divide(cv2.subtract(r, g), mx)
    by = cv2.divide(cv2.subtract(b, np.multiply(cv2.min(r8, g8), scale, dtype=np.float32)), mx)
    np.maximum(rg, 0, out=rg)
    np.maximum(by, 0, out=by)
    return [intensity, rg, by]


def _level1_cv2(rgb_u8: np.ndarray) -> np.ndarray:
    """One image (H, W, 3) uint8 -> pyramid level 1 of I, RG, BY as (3, h1, w1)."""
    return np.stack([cv2.pyrDown(p) for p in _colour_planes_cv2(rgb_u8)])


def _level_sums(level1: torch.Tensor) -> list[torch.Tensor]:
    """Pyramid levels 2..8 of I, RG, BY plus the 4 Gabor channels, centre–surround maps,
    N(·), summed per centre level: for c = 2, 3, 4 an (N, 5, h_c, w_c) tensor whose channel
    0 is 0.3·intensity + 0.3·colour and channels 1..4 the orientations' sums."""
    gabor = _gabor_weight(level1.device, level1.dtype)
    levels: dict[int, torch.Tensor] = {}
    level = level1
    for lv in range(2, N_LEVELS):
        level = pyr_down(level)
        ori = F.conv2d(pad101(level[:, 0:1], GABOR_SIZE // 2), gabor)  # (N, 4, h, w)
        levels[lv] = torch.cat([level, ori], dim=1)  # I, RG, BY, G0, G45, G90, G135
    sums = []
    for c in CENTRES:
        centre = levels[c]
        size = tuple(centre.shape[-2:])
        acc = None
        for dlt in DELTAS:
            nfm = itti_normalise((centre - _resize(levels[c + dlt], size)).abs())
            acc = nfm if acc is None else acc + nfm
        ic = WEIGHT_INTENSITY * acc[:, 0:1] + WEIGHT_COLOUR * (acc[:, 1:2] + acc[:, 2:3])
        sums.append(torch.cat([ic, acc[:, 3:]], dim=1))
    return sums


def _combine(full: torch.Tensor) -> torch.Tensor:
    """(N, 5, H, W) full-size sums -> range-normalised saliency before smoothing (N, 1, H, W).

    N(·) of each orientation's sum is affine, a·(x − min), so it folds into one weighted
    channel sum with the intensity+colour channel instead of being materialised."""
    ori = full[:, 1:]
    mn = ori.amin(dim=(-2, -1))
    mx = ori.amax(dim=(-2, -1))
    span = torch.where(mx > mn, mx - mn, torch.ones_like(mx))
    tile_max = (_tile_max(ori) - mn) / span
    a = WEIGHT_ORIENTATION * (1.0 - tile_max) ** 2 / span  # (N, 4)
    sm = full[:, 0:1].clone()
    for k in range(4):
        sm += full[:, k + 1 : k + 2] * a[:, k, None, None, None]
    return range_normalise(sm)


def _saliency_torch(rgb_u8: torch.Tensor) -> torch.Tensor:
    """All-torch path (GPU): (N, H, W, 3) uint8 -> (N, H, W) saliency."""
    rgb = rgb_u8.permute(0, 3, 1, 2).to(torch.float32).contiguous() / 255.0
    n, _, height, width = rgb.shape
    sums = _level_sums(pyr_down(_colour_level0_torch(rgb)))
    full = torch.zeros(n, 5, height, width, device=rgb.device, dtype=rgb.dtype)
    for s in sums:
        full += _resize(s, (height, width))
    return bilateral(_combine(full))[:, 0]


_GABOR_NP = None


def _norm_np(x: np.ndarray) -> np.ndarray:
    """N(·) on a (C, h, w) stack of maps, per channel (small pyramid levels)."""
    _, h, w = x.shape
    flat = x.reshape(len(x), -1)
    mn = flat.min(axis=1)[:, None, None]
    mx = flat.max(axis=1)[:, None, None]
    span = np.where(mx > mn, mx - mn, 1.0).astype(np.float32)
    x = (x - mn) / span
    ny, nx = len(range(0, h - TILE, TILE)), len(range(0, w - TILE, TILE))
    if ny == 0 or nx == 0:
        raise ValueError(f"map of {h}x{w} px has no {TILE}x{TILE} normalisation tile; input images "
                         f"must be at least {MIN_SIZE}x{MIN_SIZE} px")
    t = x[:, : ny * TILE, : nx * TILE].reshape(len(x), ny, TILE, nx * TILE).max(axis=2)
    t = t.reshape(len(x), ny, nx, TILE).max(axis=3)
    return x * ((1.0 - t.mean(axis=(1, 2))) ** 2)[:, None, None]


def _tile_max_2d(x: np.ndarray) -> float:
    h, w = x.shape
    ny, nx = len(range(0, h - TILE, TILE)), len(range(0, w - TILE, TILE))
    t = x[: ny * TILE, : nx * TILE].reshape(ny, TILE, nx * TILE).max(axis=1)
    return float(t.reshape(ny, nx, TILE).max(axis=2).mean())


def _saliency_cv2(rgb_u8: np.ndarray) -> np.ndarray:
    """CPU path, one image, OpenCV/NumPy kernels, same arithmetic as :func:`_saliency_torch`.

    Why not torch on CPU: at these sizes the work is memory-bound, and per image the maps
    stay in cache; torch's batched ops were slower than the classic per-image code on the
    2-core machines (and its OpenMP threads degrade badly when cores are shared). The
    shortcuts of this module (one 3-channel pyramid, level sums resized once, orientation
    N(·) folded into a weighted sum) are what make it faster than the classic."""
    global _GABOR_NP
    if _GABOR_NP is None:
        _GABOR_NP = [gabor_kernel(t) for t in THETAS]
    height, width = rgb_u8.shape[:2]
    planes = [cv2.pyrDown(p) for p in _colour_planes_cv2(rgb_u8)]  # level 1 of I, RG, BY
    levels = {}
    for lv in range(2, N_LEVELS):
        planes = [cv2.pyrDown(p) for p in planes]
        ori = [cv2.filter2D(planes[0], cv2.CV_32F, k) for k in _GABOR_NP]
        levels[lv] = np.stack(planes + ori)  # (7, h, w): I, RG, BY, G0, G45, G90, G135
    full: list[np.ndarray | None] = [None] * 5
    for c in CENTRES:
        centre = levels[c]
        size = (centre.shape[2], centre.shape[1])
        acc = None
        for dlt in DELTAS:
            sur = np.stack([cv2.resize(m, size, interpolation=cv2.INTER_LINEAR) for m in levels[c + dlt]])
            nfm = _norm_np(np.abs(centre - sur))
            acc = nfm if acc is None else acc + nfm
        sums = [WEIGHT_INTENSITY * acc[0] + WEIGHT_COLOUR * (acc[1] + acc[2])] + list(acc[3:])
        for ch, m in enumerate(sums):
            up = cv2.resize(np.ascontiguousarray(m, dtype=np.float32), (width, height),
                            interpolation=cv2.INTER_LINEAR)
            full[ch] = up if full[ch] is None else cv2.add(full[ch], up, dst=full[ch])
    sm = full[0]
    for k in range(1, 5):
        mn, mx, _, _ = cv2.minMaxLoc(full[k])
        span = mx - mn if mx > mn else 1.0
        tm = (_tile_max_2d(full[k]) - mn) / span
        cv2.scaleAdd(full[k], WEIGHT_ORIENTATION * (1.0 - tm) ** 2 / span, sm, dst=sm)
    mn, mx, _, _ = cv2.minMaxLoc(sm)
    sm = (sm - np.float32(mn)) * np.float32(1.0 / (mx - mn)) if mx > mn else sm - np.float32(mn)
    return cv2.bilateralFilter(sm, BILATERAL_D, BILATERAL_SIGMA_COLOUR, BILATERAL_SIGMA_SPACE)


def _saliency_cpu(batch: np.ndarray) -> np.ndarray:
    """CPU path over a batch: images in parallel threads (OpenCV releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor
    import os

    workers = max(1, min(len(batch), os.cpu_count() or 1))
    if workers == 1:
        return np.stack([_saliency_cv2(im) for im in batch])
    prev = cv2.getNumThreads()
    cv2.setNumThreads(1)  # one image per core; OpenCV's own threads on top would oversubscribe
    try:
        with ThreadPoolExecutor(workers) as pool:
            return np.stack(list(pool.map(_saliency_cv2, batch)))
    finally:
        cv2.setNumThreads(prev)


def _as_rgb_batch(images) -> tuple[list[np.ndarray], bool]:
    """Normalise the accepted inputs to a list of (H, W, 3) uint8 arrays."""
    from lib.stimuli.imageio import to_rgb_uint8

    if isinstance(images, np.ndarray):
        if images.ndim == 3 and images.shape[-1] in (3, 4) or images.ndim == 2:
            return [to_rgb_uint8(images, "image")], True
        if images.ndim == 4:
            return [to_rgb_uint8(im, f"image {i}") for i, im in enumerate(images)], False
        raise ValueError(f"expected an (H, W, 3) image or an (N, H, W, 3) batch, got shape {images.shape}")
    return [to_rgb_uint8(im, f"image {i}") for i, im in enumerate(images)], False


def check_size(shape: tuple[int, ...], name: str = "image") -> None:
    h, w = shape[:2]
    if h < MIN_SIZE or w < MIN_SIZE:
        raise ValueError(
            f"{name} is {h}x{w} px, too small for the 9-level Itti–Koch pyramid: both sides must be "
            f">= {MIN_SIZE} px. Upscale it (or use larger images)."
        )


def itti_koch(
    images: np.ndarray | Sequence[np.ndarray],
    *,
    swap_rb: bool = False,
    device: str = "cpu",
    batch_size: int = 32,
    progress: bool = False,
) -> np.ndarray | list[np.ndarray]:
    """Itti–Koch saliency maps, float32 in [0, 1], same height and width as each image.

    ``images``: one RGB uint8 image (H, W, 3) -> (H, W); a batch (N, H, W, 3) -> (N, H, W);
    a list of images (sizes may differ) -> list of maps. Grayscale, RGBA and 16-bit
    inputs are converted. ``swap_rb=True`` reproduces the original analysis, which handed
    RGB arrays to code expecting BGR.
    """
    if device == "auto":
        from lib.config import pick_device

        device = pick_device("auto")
    items, single = _as_rgb_batch(images)
    for i, im in enumerate(items):
        check_size(im.shape, f"image {i}")
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, im in enumerate(items):
        groups[im.shape[:2]].append(i)
    out: list[np.ndarray | None] = [None] * len(items)
    bar = None
    if progress:
        from lib.progress import tqdm

        bar = tqdm(total=len(items), desc="saliency maps", unit="map")
    with torch.inference_mode():
        for idx in groups.values():
            for start in range(0, len(idx), batch_size):
                chunk = idx[start : start + batch_size]
                arr = np.stack([items[i] for i in chunk])
                if swap_rb:
                    arr = arr[..., ::-1]
                arr = np.ascontiguousarray(arr)
                if torch.device(device).type == "cpu":
                    maps = _saliency_cpu(arr)
                else:
                    maps = _saliency_torch(torch.from_numpy(arr).to(device)).cpu().numpy()
                for k, i in enumerate(chunk):
                    out[i] = maps[k]
                if bar is not None:
                    bar.update(len(chunk))
    if bar is not None:
        bar.close()
    if single:
        return out[0]
    if isinstance(images, np.ndarray):
        return np.stack(out)
    return out
