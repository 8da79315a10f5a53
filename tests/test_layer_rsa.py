"""Chapter pipeline (lib.layer_rsa) and figures on a fake stimulus set with planted effects."""

import matplotlib

matplotlib.use("Agg")


import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import rsatoolbox  # noqa: E402

from lib import layer_rsa, rsa  # noqa: E402
from lib.plots import rsa as prsa  # noqa: E402

N = 16
MODELS = ["resnet50", "clip_rn50", "vit_b16", "clip_vit_b16"]


class FakeStimulusSet:
    def __init__(self, rng):
        self.ids = [f"img{i}" for i in range(N)]
        self.sal = rng.normal(size=(N, 6))
        self.sem = rng.normal(size=(N, 6))

    def reference_rdm(self, kind):
        x = self.sal if kind == "saliency" else self.sem
        return rsatoolbox.rdm.RDMs(rsa.rdm(x).get_vectors(), pattern_descriptors={"image_id": self.ids})


def _model_rdms(ss, model, cond, rng, k=12):
    """Early layers anti-aligned with saliency (CLIP ResNet strongly), late layers semantic
    (CLIP more); distractor conditions add noise."""
    clip = model.startswith("clip")
    sal = ss.reference_rdm("saliency").get_vectors()[0]
    sem = ss.reference_rdm("semantic").get_vectors()[0]
    z = lambda v: (v - v.mean()) / v.std()  # noqa: E731
    vecs = []
    for i in range(k):
        rel = i / (k - 1)
        w_sal = -(1.5 if clip and "rn" in model else 0.6) * (1 - rel)
        w_sem = (2.0 if clip else 0.8) * rel
        noise = 1.0 + (1.5 if cond in ("Semantic", "Semantic_Salient") else 0.1 if cond != "Baseline" else 0)
        vecs.append(5.0 + w_sal * z(sal) + w_sem * z(sem) + noise * rng.normal(size=sal.shape))
    blocks = [f"b{i // 3}" for i in range(k)]
    return rsatoolbox.rdm.RDMs(
        np.vstack(vecs),
        rdm_descriptors={"model": [model] * k, "layer": [f"l{i}" for i in range(k)], "depth": list(range(k)),
                         "rel_depth": list(np.linspace(0, 1, k)), "block": blocks, "type": ["Conv2d"] * k},
        pattern_descriptors={"image_id": ss.ids},
    )


@pytest.fixture(scope="module")
def run():
    rng = np.random.default_rng(0)
    ss = FakeStimulusSet(rng)
    rdms = {(m, c): _model_rdms(ss, m, c, rng) for m in MODELS for c in rsa.CONDITIONS}
    params = {"models": MODELS, "weights": "random", "n_permutations": 99, "n_bootstrap": 200, "seed": 0,
              "alpha": 0.05, "run_dir": None}
    inp = layer_rsa.load_inputs(params, stimulus_set=ss, rdms=rdms, progress=False)
    base = layer_rsa.baseline_table(inp, params)
    tables = {"delta": layer_rsa.delta_table(inp, params), "part": layer_rsa.partial_table(inp, params),
              "arch": layer_rsa.contrast_table(inp, params, "arch", n_bins=4),
              "train": layer_rsa.contrast_table(inp, params, "training", n_bins=4)}
    return params, inp, base, tables


def test_inputs_and_model_info(run):
    params, inp, base, tables = run
    assert inp.model_names == MODELS
    assert set(inp.models["training"]) == {"CLIP", "supervised"}
    assert set(inp.models["arch"]) == {"ResNet", "ViT"}
    assert inp.random_models == MODELS  # weights=random resolves without the engine
    assert set(base["reference"]) == {"saliency", "semantic"} and len(base) == 4 * 12 * 2
    assert {"label", "arch", "training", "weights"} <= set(base.columns)


def test_pairs():
    models = layer_rsa.model_info(MODELS + ["resnet101"])
    pairs = layer_rsa.model_pairs(models, "training")
    assert ("ResNet", ["clip_rn50"], ["resnet50", "resnet101"]) in pairs
    assert ("ViT", ["clip_vit_b16"], ["vit_b16"]) in pairs
    assert len(layer_rsa.model_pairs(models, "arch")) == 2
    assert layer_rsa.model_pairs(layer_rsa.model_info(["resnet50"]), "arch") == []
    with pytest.raises(ValueError, match="training"):
        layer_rsa.model_pairs(models, "depth")


def test_weights_warning_records_provenance(run, tmp_path):
    params, inp, base, tables = run
    p = dict(params, run_dir=str(tmp_path))
    box = layer_rsa.weights_warning(inp, p)
    assert "RANDOM" in box.data
    assert "random_weights" in (tmp_path / "provenance.jsonl").read_text()
    inp2 = layer_rsa.LayerRSAInputs(inp.ids, inp.references, inp.rdms, inp.models.assign(weights="pretrained"))
    assert layer_rsa.weights_warning(inp2, p) is None


def test_figures_render(run):
    params, inp, base, tables = run
    delta, part, c = tables["delta"], tables["part"], tables["train"]
    figs = [prsa.layer_profiles(base, "saliency"), prsa.contrast_plot(c, "semantic"),
            prsa.delta_profiles(delta, "saliency"), prsa.saliency_vs_semantic(base), prsa.partial_profiles(part)]
    for f in figs:
        assert f.axes
        import matplotlib.pyplot as plt

        plt.close(f)


def test_unknown_condition_in_inputs(run):
    params, inp, base, tables = run
    with pytest.raises(rsa.RSAInputError, match="valid conditions"):
        layer_rsa.load_inputs(params, conditions=["Baseline", "Distractor"], stimulus_set=object(), rdms={})
    assert isinstance(base, pd.DataFrame)


def test_dashboard_claims_recover_planted_effects(run):
    """The book's claim rows (lib.dashboard) find what the fixture planted: early saliency
    suppression, deeper in CLIP ResNets, and CLIP's semantic gain; untrained networks make
    the same numbers 'not testable here'."""
    import dataclasses

    from lib import dashboard

    params, inp, base, tables = run
    trained = dataclasses.replace(inp, models=inp.models.assign(weights="pretrained"))
    sal = {r.key: r for r in dashboard.saliency_rows(trained, params, base, tables["delta"])}
    assert sal["early_suppression"].status == "supported" and sal["early_suppression"].estimate < 0
    assert sal["clip_deepens_suppression"].status == "supported"
    sem = {r.key: r for r in dashboard.semantic_rows(trained, params, tables["delta"])}
    assert sem["clip_semantics_resnet"].status == "supported" and sem["clip_semantics_vit"].status == "supported"
    untrained = {r.key: r for r in dashboard.saliency_rows(inp, params, base, tables["delta"])}
    assert untrained["early_suppression"].status == "not testable here (random weights)"
    assert untrained["early_suppression"].estimate == sal["early_suppression"].estimate
