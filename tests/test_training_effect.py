"""Trained vs untrained (issue 11): what training adds, with a paired stimulus bootstrap.

Offline: the "pretrained" weights are a fixed state dict written to tmp_path and read back
with lib.checkpoints; the untrained twin is the same architecture built under a seed. The
extraction engine is replaced by a forward pass of these tiny networks, so the test checks
the wiring of ``untrained_rdms`` (weights=random, same seed, Baseline only) and the
statistics of ``training_effect_table``, not the engine.
"""

import numpy as np
import pandas as pd
import pytest
import rsatoolbox
import torch
from torch import nn

from lib import layer_rsa, rsa
from lib.checkpoints import load_into

N, D = 18, 8
LAYERS = ("fc1", "act1", "drop", "fc2")


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(D, D), nn.ReLU(), nn.Dropout(0.5), nn.Linear(D, D))


def _rdms(model: nn.Module, x: np.ndarray, name: str, ids) -> rsatoolbox.rdm.RDMs:
    model.eval()
    feats, h = [], torch.as_tensor(x, dtype=torch.float32)
    with torch.no_grad():
        for layer in model:
            h = layer(h)
            feats.append(h.numpy().astype(np.float64))
    vecs = np.vstack([rsa.rdm(f).get_vectors() for f in feats])
    k = len(feats)
    return rsatoolbox.rdm.RDMs(vecs, rdm_descriptors={
        "model": [name] * k, "layer": list(LAYERS), "depth": list(range(k)), "rel_depth": list(np.linspace(0, 1, k)),
        "block": ["b0", "b0", "b1", "b1"], "type": ["Linear", "ReLU", "Dropout", "Linear"]},
        pattern_descriptors={"image_id": ids})


@pytest.fixture
def world(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    ids = [f"img{i}" for i in range(N)]
    x = rng.normal(size=(N, D))
    semantic = rsatoolbox.rdm.RDMs(rsa.rdm(x[:, :4]).get_vectors(), pattern_descriptors={"image_id": ids})
    saliency = rsatoolbox.rdm.RDMs(rsa.rdm(rng.normal(size=(N, 3))).get_vectors(), pattern_descriptors={"image_id": ids})
    # "pretrained" weights: keep the 4 semantic dimensions, drop the rest (a fixed state dict on disk)
    keep = torch.diag(torch.tensor([1.0] * 4 + [0.0] * 4))
    state = {"0.weight": keep, "0.bias": torch.full((D,), 5.0), "3.weight": keep, "3.bias": torch.zeros(D)}
    path = tmp_path / "trained.pt"
    torch.save({"state_dict": state}, path)
    trained = _net()
    load_into(trained, path)

    def fake_stimulus_set_rdms(ss, params, conditions=None, progress=True, store=None):
        assert params["weights"] == "random" and conditions == ["Baseline"]
        out = {}
        for m in params["models"]:
            torch.manual_seed(params["seed"])  # the engine's seeded random weights
            out[(m, "Baseline")] = _rdms(_net(), x, m, ids)
        return out

    monkeypatch.setattr("lib.extract.stimulus_set_rdms", fake_stimulus_set_rdms)
    models = pd.DataFrame([{"model": "tiny", "label": "tiny", "arch": "MLP", "training": "supervised",
                            "weights": "pretrained"}])
    inp = layer_rsa.LayerRSAInputs(ids=ids, references={"saliency": saliency, "semantic": semantic},
                                   rdms={("tiny", "Baseline"): _rdms(trained, x, "tiny", ids)}, models=models,
                                   conditions=["Baseline"])
    params = {"n_bootstrap": 300, "seed": 0, "alpha": 0.05, "weights": "auto"}
    return inp, params, x, ids


def test_untrained_twin_is_seeded_random_architecture(world):
    inp, params, x, ids = world
    twins = layer_rsa.untrained_rdms(params, ["tiny"], stimulus_set=object())
    again = layer_rsa.untrained_rdms(params, ["tiny"], stimulus_set=object())
    assert np.array_equal(twins["tiny"].get_vectors(), again["tiny"].get_vectors())  # seeded: reproducible
    assert not np.allclose(twins["tiny"].get_vectors(), inp.rdms[("tiny", "Baseline")].get_vectors())
    assert layer_rsa.untrained_rdms(params, []) == {}


def test_training_effect_recovers_what_the_weights_add(world):
    inp, params, x, ids = world
    twins = layer_rsa.untrained_rdms(params, ["tiny"], stimulus_set=object())
    eff = layer_rsa.training_effect_table(inp, twins, params)
    sem = eff[eff.reference == "semantic"].set_index("layer")
    # independent numbers: rsa_table of each side
    t_tr = rsa.rsa_table(inp.rdms[("tiny", "Baseline")], inp.references, n_permutations=0, n_bootstrap=0)
    t_un = rsa.rsa_table(twins["tiny"], inp.references, n_permutations=0, n_bootstrap=0)
    for lay in LAYERS:
        a = t_tr[(t_tr.layer == lay) & (t_tr.reference == "semantic")].rho.iloc[0]
        b = t_un[(t_un.layer == lay) & (t_un.reference == "semantic")].rho.iloc[0]
        assert sem.loc[lay, "rho_trained"] == pytest.approx(a) and sem.loc[lay, "rho_untrained"] == pytest.approx(b)
        assert sem.loc[lay, "rho"] == pytest.approx(a - b)
    # the trained weights keep exactly the semantic dimensions: training raises semantic RSA, CI above 0
    assert (sem.loc[["fc1", "fc2"], "ci_low"] > 0).all()
    # Dropout at eval repeats ReLU's RDM on both sides: listed once, counted once
    assert sem.loc["drop", "duplicate_of"] == "act1" and sem.loc["drop", "q"] == sem.loc["act1", "q"]
    assert "training raises semantic RSA" in layer_rsa.training_effect_markdown(eff, "semantic", 0.05)


def test_paired_bootstrap_of_identical_models_is_exactly_zero(world):
    inp, params, x, ids = world
    same = {"tiny": inp.rdms[("tiny", "Baseline")]}
    eff = layer_rsa.training_effect_table(inp, same, params)
    assert np.allclose(eff[["rho", "ci_low", "ci_high"]].to_numpy(dtype=float), 0.0)


def test_no_pretrained_model_means_an_empty_section(world):
    inp, params, x, ids = world
    rnd = layer_rsa.LayerRSAInputs(inp.ids, inp.references, inp.rdms, inp.models.assign(weights="random"),
                                   inp.conditions)
    eff = layer_rsa.training_effect(rnd, params)  # extracts nothing
    assert eff.empty and "rho_trained" in eff.columns
    assert "no trained network to contrast" in layer_rsa.training_effect_markdown(eff, "semantic", 0.05)
    with pytest.raises(rsa.RSAInputError, match="no untrained RDMs"):
        layer_rsa.training_effect_table(inp, {}, params)
