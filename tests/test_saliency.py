"""Itti–Koch saliency against an independent, per-image OpenCV/NumPy implementation written
the way pySaliencyMap does it (cv2.pyrDown, cv2.resize, cv2.filter2D, cv2.bilateralFilter),
plus level-by-level checks against hand computations."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from lib.stimuli import saliency as S

# --- the classic implementation, per image, in OpenCV (kept independent of lib) -----------


def _classic_gabor(theta_deg: float) -> np.ndarray:
    # 9x9 even Gabor from the formula in PAPER.md, centre tap 1
    k = np.zeros((9, 9), np.float32)
    t = math.radians(theta_deg)
    for row in range(9):
        for col in range(9):
            x, y = col - 4, row - 4
            xp = x * math.cos(t) + y * math.sin(t)
            yp = -x * math.sin(t) + y * math.cos(t)
            k[row, col] = math.exp(-(xp * xp / (2 * 1.0768**2) + yp * yp / (2 * 1.1351**2))) * math.cos(
                2 * math.pi * xp / 3.75)
    return k


# first rows of pySaliencyMapDefs.GaborKernel_0 (the hard-coded table of the original)
GABOR0_TABLE_CENTRE_ROW = [0.000921261, 0.006375831, -0.174308068, -0.067914552, 1.0,
                           -0.067914552, -0.174308068, 0.006375831, 0.000921261]
GABOR0_TABLE_CENTRE_COL = [0.002010422, 0.030415784, 0.211749204, 0.678352526, 1.0,
                           0.678352526, 0.211749204, 0.030415784, 0.002010422]


def _range_norm(src):
    mn, mx, _, _ = cv2.minMaxLoc(src)
    return src / (mx - mn) + mn / (mn - mx) if mx != mn else src - mn


def _avg_local_max(src, step=16):
    h, w = src.shape
    vals = [cv2.minMaxLoc(src[y:y + step, x:x + step])[1]
            for y in range(0, h - step, step) for x in range(0, w - step, step)]
    return sum(vals) / len(vals)


def _norm(src):
    dst = _range_norm(src)
    m = _avg_local_max(dst)
    return dst * (1 - m) * (1 - m)


def _pyr(src):
    out = [src]
    for _ in range(1, 9):
        out.append(cv2.pyrDown(out[-1]))
    return out


def _csd(maps):
    out = []
    for c in range(2, 5):
        size = (maps[c].shape[1], maps[c].shape[0])
        for s in (c + 3, c + 4):
            out.append(cv2.absdiff(maps[c], cv2.resize(maps[s], size, interpolation=cv2.INTER_LINEAR)))
    return out


def classic_saliency(rgb_uint8: np.ndarray) -> np.ndarray:
    """pySaliencyMap's SMGetSM for a still RGB image (no R/B swap), float32 in [0, 1]."""
    src = np.float32(rgb_uint8) / 255.0
    R, G, B = cv2.split(src)
    I = cv2.cvtColor(src, cv2.COLOR_RGB2GRAY)
    h, w = I.shape
    mx = cv2.max(B, cv2.max(R, G))
    mx[mx <= 0] = 0.0001
    RG = (R - G) / mx
    BY = (B - cv2.min(R, G)) / mx
    RG[RG < 0] = 0
    BY[BY < 0] = 0

    def cm(fms):
        return sum(cv2.resize(_norm(f), (w, h), interpolation=cv2.INTER_LINEAR) for f in fms)

    icm = cm(_csd(_pyr(I)))
    ccm = cm(_csd(_pyr(RG))) + cm(_csd(_pyr(BY)))
    gi = _pyr(I)
    ocm = np.zeros((h, w), np.float32)
    for th in (0, 45, 90, 135):
        k = _classic_gabor(th)
        filt = [np.empty((1, 1)), np.empty((1, 1))] + [cv2.filter2D(gi[j], cv2.CV_32F, k) for j in range(2, 9)]
        ocm += _norm(cm(_csd(filt)))
    sm = 0.3 * icm + 0.3 * ccm + 0.2 * ocm
    sm = _range_norm(sm).astype(np.float32)
    return cv2.bilateralFilter(sm, 7, 3, 1.55)


# --- fixtures --------------------------------------------------------------------------


def _photos():
    from skimage import data
    from sklearn.datasets import load_sample_image

    ims = [data.astronaut(), data.coffee(), data.chelsea(), load_sample_image("china.jpg"),
           load_sample_image("flower.jpg"), data.rocket()]
    return ims


@pytest.fixture(scope="module")
def photos():
    return _photos()


# --- level-by-level -----------------------------------------------------------------------


def test_gabor_kernel_matches_formula_and_original_table():
    for th in (0, 45, 90, 135):
        np.testing.assert_allclose(S.gabor_kernel(th), _classic_gabor(th), atol=1e-6)
    k0 = S.gabor_kernel(0)
    # the original hard-coded table agrees with the formula (its constants are rounded)
    np.testing.assert_allclose(k0[4], GABOR0_TABLE_CENTRE_ROW, atol=5e-5)
    np.testing.assert_allclose(k0[:, 4], GABOR0_TABLE_CENTRE_COL, atol=5e-5)
    # 90 deg is 0 deg transposed; 45 and 135 are mirror images
    np.testing.assert_allclose(S.gabor_kernel(90), k0.T, atol=1e-6)
    np.testing.assert_allclose(S.gabor_kernel(135), S.gabor_kernel(45)[:, ::-1], atol=1e-6)
    assert S.gabor_kernel(45)[4, 4] == 1.0


def _hand_pyr_down(a: np.ndarray) -> np.ndarray:
    """Binomial [1 4 6 4 1]/16 blur with reflect-101 borders (numpy's 'reflect'), then
    every second row/column starting at 0."""
    k = np.array([1, 4, 6, 4, 1], np.float64) / 16
    p = np.pad(a.astype(np.float64), 2, mode="reflect")
    rows = sum(k[i] * p[i:i + a.shape[0], :] for i in range(5))
    both = sum(k[j] * rows[:, j:j + a.shape[1]] for j in range(5))
    return both[::2, ::2]


@pytest.mark.parametrize("shape", [(425, 640), (257, 301), (31, 17)])
def test_pyramid_level_matches_hand_computation_and_cv2(shape):
    rng = np.random.default_rng(0)
    a = rng.random(shape).astype(np.float32)
    got = S.pyr_down(torch.from_numpy(a)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(got, _hand_pyr_down(a), atol=1e-6)
    np.testing.assert_allclose(got, cv2.pyrDown(a), atol=1e-6)


def test_full_pyramid_matches_cv2_down_to_tiny_levels():
    rng = np.random.default_rng(1)
    a = rng.random((425, 640)).astype(np.float32)
    ref = _pyr(a)
    x = torch.from_numpy(a)[None, None]
    for lv in range(1, 9):
        x = S.pyr_down(x)
        assert x.shape[-2:] == ref[lv].shape
        np.testing.assert_allclose(x[0, 0].numpy(), ref[lv], atol=1e-5)


def test_reflect101_padding_matches_cv2_on_small_axes():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    got = S.pad101(torch.from_numpy(a)[None, None], 4)[0, 0].numpy()
    np.testing.assert_array_equal(got, cv2.copyMakeBorder(a, 4, 4, 4, 4, cv2.BORDER_REFLECT_101))


def test_gabor_filtering_matches_filter2d_on_small_levels():
    rng = np.random.default_rng(2)
    gab = torch.stack([torch.from_numpy(S.gabor_kernel(t)) for t in S.THETAS])[:, None]
    for shape in [(27, 40), (4, 5), (2, 3)]:
        a = rng.random(shape).astype(np.float32)
        got = torch.nn.functional.conv2d(S.pad101(torch.from_numpy(a)[None, None], 4), gab)[0].numpy()
        for i, th in enumerate(S.THETAS):
            np.testing.assert_allclose(got[i], cv2.filter2D(a, cv2.CV_32F, _classic_gabor(th)), atol=1e-5)


def test_normalisation_matches_original_loop():
    rng = np.random.default_rng(3)
    for shape in [(107, 160), (17, 17), (54, 80)]:
        a = rng.random(shape).astype(np.float32) ** 3
        got = S.itti_normalise(torch.from_numpy(a)[None, None])[0, 0].numpy()
        np.testing.assert_allclose(got, _norm(a), atol=1e-6)


def test_bilateral_matches_cv2():
    rng = np.random.default_rng(4)
    a = cv2.GaussianBlur(rng.random((60, 90)).astype(np.float32), (0, 0), 2)
    a = _range_norm(a).astype(np.float32)
    got = S.bilateral(torch.from_numpy(a)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(got, cv2.bilateralFilter(a, 7, 3, 1.55), atol=2e-4)


def test_upsampling_matches_cv2_inter_linear():
    rng = np.random.default_rng(5)
    a = rng.random((14, 20)).astype(np.float32)
    got = S._resize(torch.from_numpy(a)[None, None], (107, 160))[0, 0].numpy()
    np.testing.assert_allclose(got, cv2.resize(a, (160, 107), interpolation=cv2.INTER_LINEAR), atol=1e-5)


# --- whole maps -----------------------------------------------------------------------------


def test_maps_match_classic_implementation_on_real_photos(photos):
    maps = S.itti_koch(photos)
    for im, m in zip(photos, maps):
        ref = classic_saliency(im)
        assert m.shape == im.shape[:2] and m.dtype == np.float32
        assert m.min() >= 0 and m.max() <= 1 + 1e-6
        r = np.corrcoef(m.ravel(), ref.ravel())[0, 1]
        assert r >= 0.99, r
        assert np.abs(m - ref).max() < 0.02


def test_batch_and_single_agree(photos):
    im = photos[0]
    batch = np.stack([im, im[:, ::-1].copy(), im])
    maps = S.itti_koch(batch, batch_size=2)
    assert maps.shape == (3, *im.shape[:2])
    np.testing.assert_allclose(maps[0], S.itti_koch(im), atol=1e-5)
    np.testing.assert_allclose(maps[2], maps[0], atol=1e-5)


def test_swap_rb_is_the_classic_model_on_bgr(photos):
    im = photos[4]  # flower: strongly coloured, so the swap matters
    swapped = S.itti_koch(im, swap_rb=True)
    ref = classic_saliency(im[..., ::-1].copy())
    assert np.corrcoef(swapped.ravel(), ref.ravel())[0, 1] >= 0.99
    assert not np.allclose(swapped, S.itti_koch(im), atol=1e-3)


def test_converts_grayscale_rgba_and_16bit():
    from skimage import data

    gray = data.camera()
    m_gray = S.itti_koch(gray)
    np.testing.assert_allclose(m_gray, S.itti_koch(np.repeat(gray[..., None], 3, -1)), atol=1e-6)
    rgba = np.concatenate([data.coffee(), np.full((*data.coffee().shape[:2], 1), 255, np.uint8)], -1)
    np.testing.assert_allclose(S.itti_koch(rgba), S.itti_koch(data.coffee()), atol=1e-6)
    sixteen = data.coffee().astype(np.uint16) * 257
    np.testing.assert_allclose(S.itti_koch(sixteen[None])[0], S.itti_koch(data.coffee()), atol=1e-6)


def test_too_small_image_names_the_minimum_size():
    assert S.MIN_SIZE == 257
    with pytest.raises(ValueError, match="257"):
        S.itti_koch(np.zeros((200, 300, 3), np.uint8))
    assert S.itti_koch(np.zeros((257, 257, 3), np.uint8)).shape == (257, 257)  # the minimum works



def test_torch_path_matches_classic(photos):
    """The all-torch path (used on GPUs) agrees with the classic maps and the CPU path."""
    ims = [photos[0], photos[3]]
    for im in ims:
        with torch.inference_mode():
            got = S._saliency_torch(torch.from_numpy(im[None].copy()))[0].numpy()
        ref = classic_saliency(im)
        assert np.corrcoef(got.ravel(), ref.ravel())[0, 1] >= 0.99
        np.testing.assert_allclose(got, S.itti_koch(im), atol=2e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(photos):
    im = photos[3]
    np.testing.assert_allclose(S.itti_koch(im, device="cuda"), S.itti_koch(im), atol=2e-3)
