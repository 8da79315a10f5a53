"""The offline interactive figures: every layer and every RDM cell carries its hover text,
the script is inline (no network), and the sizes stay page-friendly."""

import re

import numpy as np
import pandas as pd

from lib.plots import interactive


def _table():
    rows = []
    for m in ("resnet50", "timm:tiny"):
        for k in range(6):
            rows.append({"model": m, "layer": f"layer{k}", "depth": k, "rel_depth": k / 5, "block": str(k // 2),
                         "reference": "saliency", "rho": 0.1 * k - 0.2, "ci_low": 0.1 * k - 0.3,
                         "ci_high": 0.1 * k - 0.1, "q": 0.01 if k == 3 else 0.5, "label": m, "weights": "random",
                         "arch": "ResNet", "training": "supervised"})
    return pd.DataFrame(rows)


def test_depth_profiles_hover_text_names_every_layer_and_its_values():
    html = interactive.depth_profiles_html(_table(), "saliency", alpha=0.05)
    tips = re.findall(r'data-tip="([^"]*)"', html)
    assert len(tips) == 12
    assert any("layer3" in t and "q = 0.010 (significant)" in t for t in tips)
    assert "published: resnet50" in html  # the original's curve drawn beside this run's
    assert "<script src" not in html and "http" not in html.split("<script>")[1]  # no CDN


def test_rdm_cells_carry_both_images_and_the_value():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 50, 3), dtype=np.uint8) for _ in range(4)]
    m = rng.random((4, 4))
    m = (m + m.T) / 2
    np.fill_diagonal(m, 0)
    html = interactive.rdm_html({"saliency RDM": m}, ["a", "b", "c", "d"], images)
    cells = re.findall(r'<rect [^>]*data-i="(\d)" data-j="(\d)" data-tip="([^"]*)"', html)
    assert len(cells) == 16
    i, j, tip = next(c for c in cells if c[:2] == ("1", "2"))
    assert tip.startswith("b vs c") and interactive._fmt(m[1, 2]) in tip
    assert html.count("data:image/jpeg;base64,") == 4 and len(html) < 60_000
