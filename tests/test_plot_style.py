"""The book's figures keep every text at ≥ 9 pt at the rendered width and use one palette."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from lib.plots import brain as brain_plots
from lib.plots import rsa as rsa_plots
from lib.plots import style


def _layers(reference="saliency"):
    rows = []
    for m, arch in (("resnet50", "ResNet"), ("vit_b16", "ViT")):
        for k in range(12):
            rho = np.sin(k / 3) / 5
            rows.append({"model": m, "layer": f"l{k}", "depth": k, "rel_depth": k / 11, "block": str(k // 3),
                         "reference": reference, "rho": rho, "ci_low": rho - 0.1, "ci_high": rho + 0.1,
                         "q": 0.01 if k % 4 == 0 else 0.4, "label": m, "weights": "pretrained", "arch": arch,
                         "training": "supervised", "condition": "Baseline"})
    return pd.DataFrame(rows)


def test_rsa_figures_have_no_text_below_9pt_and_fit_the_text_column():
    base = _layers()
    delta = pd.concat([base.assign(condition=c, rho=base["rho"] * f) for c, f in (("Control", 0.1), ("Salient", 0.5))])
    figures = [rsa_plots.layer_profiles(base, "saliency"), rsa_plots.delta_profiles(delta, "saliency")]
    for fig in figures:
        assert style.small_texts(fig) == []
        assert fig.get_figwidth() <= style.TEXT_WIDTH_IN + 1e-9
        plt.close(fig)


def test_layer_profiles_draw_the_published_curve_with_its_label():
    fig = rsa_plots.layer_profiles(_layers(), "saliency")
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert style.PUBLISHED_LABEL in labels and "this run (pretrained)" in labels
    ax = fig.axes[0]
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert dashed and len(dashed[0].get_xdata()) > 50  # the original's ResNet-50 has its own layers
    plt.close(fig)


def test_one_reference_palette_everywhere():
    assert rsa_plots.REFERENCE_COLOURS is style.REFERENCE_COLOURS
    assert brain_plots.REF_COLOURS is style.REFERENCE_COLOURS


@pytest.mark.parametrize("models", [["resnet50", "x", "y"], ["a", "b"]])
def test_model_colours_are_distinct_and_stable(models):
    colours = style.model_colours(models)
    assert len(set(colours.values())) == len(models)
    assert colours == style.model_colours(models)
    if "resnet50" in models:
        assert colours["resnet50"] == style.MODEL_COLOURS["resnet50"]
