"""Extraction engine: exact RDMs (vs scipy on stored activations), batch-size and budget
invariance, one layer per call, sequence-first outputs, cache behaviour and bad input."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.spatial.distance import pdist

from lib import extract as E
from lib import models as M

N = 5


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    out = []
    for i in range(N):  # smooth-ish images of different sizes, so layers differ per image
        base = rng.integers(0, 256, (8, 10, 3)).astype(np.uint8)
        out.append(np.kron(base, np.ones((24 + 2 * i, 30, 1), dtype=np.uint8)))
    return out


@pytest.fixture(scope="module")
def nets():
    return {name: M.load_model(name, weights="random", seed=0)
            for name in ("timm:resnet18", "timm:vit_tiny_patch16_224", "open_clip:ViT-S-32:none")}


def stored_activations(lm, x, table):
    """Independent reference: clone every hooked call's output (float64), then scipy."""
    named = dict(lm.module.named_modules())
    acts, calls, handles = {}, {}, []
    for q in table.module.unique():
        def hook(mod, inp, out, q=q):
            k = calls.get(q, 0)
            calls[q] = k + 1
            acts[(q, k)] = M.first_tensor(out).detach().clone().double()
        handles.append(named[q].register_forward_hook(hook))
    with torch.no_grad():
        lm.module(x)
    for h in handles:
        h.remove()
    out = []
    for r in table.itertuples():
        a = acts[(r.module, r.call_index)]
        if r.batch_axis:
            a = a.movedim(r.batch_axis, 0)
        out.append(a.reshape(len(a), -1).numpy())
    return out


def reference_rdms(lm, x, table, metric="cosine"):
    return np.stack([pdist(a, metric) for a in stored_activations(lm, x, table)])


@pytest.mark.parametrize("name", ["timm:resnet18", "timm:vit_tiny_patch16_224", "open_clip:ViT-S-32:none"])
def test_engine_equals_direct_cosine_any_batch_and_budget(nets, images, name):
    lm = nets[name]
    table = lm.layer_table
    x = lm.preprocess(images)
    ref = reference_rdms(lm, x, table)
    all_bytes = table.bytes.sum() * N
    configs = [(None, 8e9), (3, all_bytes / 2)] + ([(2, all_bytes / 3)] if "resnet" in name else [])
    for batch, budget in configs:
        rep = {}
        grams = E.compute_grams(lm, x, table, batch_size=batch, budget_bytes=budget, progress=False, report=rep)
        got = E.grams_to_rdms(grams, table, "cosine", name)
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0, err_msg=f"batch {batch} budget {budget}")
        if batch is None:
            assert rep["mode"] == "single" and rep["forward_passes"] == 1
        else:
            assert rep["mode"] == "grouped" and rep["n_groups"] > 1
            assert rep["forward_passes"] == rep["n_groups"] * math.ceil(N / rep["batch_size"])


def test_correlation_metric_matches_scipy(nets, images):
    lm = nets["timm:resnet18"]
    table = lm.layers(r"^layer[34]")
    x = lm.preprocess(images)
    ref = reference_rdms(lm, x, table, "correlation")
    for batch in (None, 2):
        grams = E.compute_grams(lm, x, table, metric="correlation", batch_size=batch, progress=False)
        np.testing.assert_allclose(E.grams_to_rdms(grams, table, "correlation", "r18"), ref, atol=1e-5, rtol=0)


def test_shared_module_calls_are_separate_layers(images):
    lm = M.load_model("torchvision:resnet18", weights="random")
    table = lm.layers(r"^layer1\.0\.")
    x = lm.preprocess(images[:4])
    got = E.grams_to_rdms(E.compute_grams(lm, x, table, progress=False), table, "cosine", "tv")
    np.testing.assert_allclose(got, reference_rdms(lm, x, table), atol=1e-5, rtol=0)
    i0, i1 = (table.index[table.layer == f"layer1.0.relu#{k}"][0] for k in (0, 1))
    assert np.abs(got[i0] - got[i1]).max() > 1e-3  # not the last call twice


def test_sequence_first_transformer_is_made_batch_first(nets, images):
    """The same CLIP ViT run sequence-first (OpenAI layout) gives identical RDMs."""
    import copy

    lm = nets["open_clip:ViT-S-32:none"]
    seq = copy.deepcopy(lm.module)
    seq.transformer.batch_first = False
    for blk in seq.transformer.resblocks:
        blk.attn.batch_first = False
    lm_seq = M.LoadedModel("seqfirst", seq, lm.preprocess, "random", "x", "cpu", 0)
    t_seq = lm_seq.layer_table
    inside = t_seq.block.str.startswith("transformer.resblocks")
    assert (t_seq.batch_axis[inside] == 1).all() and (t_seq.batch_axis[~inside] == 0).all()
    x = lm.preprocess(images)
    a = E.grams_to_rdms(E.compute_grams(lm, x, lm.layer_table, progress=False), lm.layer_table, "cosine", "a")
    budget = t_seq.bytes.sum() * N / 2
    b = E.grams_to_rdms(E.compute_grams(lm_seq, x, t_seq, batch_size=3, budget_bytes=budget, progress=False),
                        t_seq, "cosine", "b")
    np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)


def test_grouped_forward_stops_after_the_groups_last_layer(nets, images):
    lm = nets["timm:resnet18"]
    table = lm.layer_table
    x = lm.preprocess(images)
    calls = []
    h = lm.module.fc.register_forward_hook(lambda *a: calls.append(1))
    rep = {}
    E.compute_grams(lm, x, table, batch_size=4, budget_bytes=table.bytes.sum() * N / 3, progress=False, report=rep)
    h.remove()
    assert rep["n_groups"] >= 3
    assert len(calls) == math.ceil(N / 4)  # only the last group's passes reach the head


def test_plan_respects_budget():
    table = pd.DataFrame({"layer": [f"l{i}" for i in range(6)], "bytes": [400, 300, 200, 100, 100, 50]})
    single = E.plan_extraction(table, 10, budget_bytes=1e9)
    assert single.mode == "single" and single.groups == [list(range(6))]
    plan = E.plan_extraction(table, 10, budget_bytes=4_000_000, batch_size=2, working_set=1_000_000)
    assert plan.mode == "grouped" and sum(plan.groups, []) == list(range(6))
    room = 4_000_000 - 2 * 1_000_000
    assert all(h <= room for h in plan.held_bytes)
    tight = E.plan_extraction(table, 10, budget_bytes=3_000, batch_size=1, working_set=1)
    assert tight.notes and "over the budget" in tight.notes[0]  # a layer alone exceeds: said, still runs


def test_out_of_memory_lowers_batch_and_continues(nets, images, monkeypatch, capsys):
    lm = nets["timm:resnet18"]
    table = lm.layers(r"^layer4")
    x = lm.preprocess(images)
    expected = E.grams_to_rdms(E.compute_grams(lm, x, table, progress=False), table, "cosine", "m")
    real = E._forward

    def flaky(module, batch):
        if len(batch) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(module, batch)

    monkeypatch.setattr(E, "_forward", flaky)
    rep = {}
    got = E.grams_to_rdms(E.compute_grams(lm, x, table, progress=False, report=rep), table, "cosine", "m")
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    assert rep["batch_size"] <= 2 and any("out of memory" in n for n in rep["notes"])
    assert "out of memory" in capsys.readouterr().out


def _toy(module):
    return M.LoadedModel("toy", module.eval(), None, "random", "x", "cpu", 0)


def test_nan_activation_names_model_layer_and_image():
    lm = _toy(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()))
    x = torch.rand(4, 3, 16, 16)
    x[2, 0, 5, 5] = float("nan")
    table = lm.layer_table
    grams = E.compute_grams(lm, x, table, progress=False)
    with pytest.raises(E.ExtractionError) as err:
        E.grams_to_rdms(grams, table, "cosine", "toy", ids=["a", "b", "c", "d"])
    assert "toy" in str(err.value) and "layer 0" in str(err.value) and "'c'" in str(err.value)


def test_zero_norm_row_names_model_layer_and_image():
    lm = _toy(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, bias=False), torch.nn.ReLU()))
    x = torch.rand(4, 3, 16, 16)
    x[1] = 0
    table = lm.layer_table
    with pytest.raises(E.ExtractionError, match=r"toy, layer 0: .*\['b'\].*zero norm"):
        E.grams_to_rdms(E.compute_grams(lm, x, table, progress=False), table, "cosine", "toy", ids="abcd")


class FakeStimulusSet:
    """Follows helper A's StimulusSet contract for what the engine needs."""

    def __init__(self, images_by_condition, ids):
        self._imgs = images_by_condition
        self.ids = ids
        self.cache_key = "fake-ss-1"
        self.calls = []

    def images(self, condition):
        self.calls.append(condition)
        return self._imgs[condition]


def _report(rdms):
    return rdms.descriptors[E.REPORT]


def test_extract_cache_and_stimulus_set(tiny_params, images):
    params = dict(tiny_params, models=["timm:resnet18"], layers=r"^layer4\.1")
    conds = ("Baseline", "Salient")
    ss = FakeStimulusSet({"Baseline": images, "Salient": images[::-1]}, [f"img{i}" for i in range(N)])
    out = E.stimulus_set_rdms(ss, params, conditions=conds, progress=False)
    assert set(out) == {("timm:resnet18", c) for c in conds}
    base = out[("timm:resnet18", "Baseline")]
    assert base.n_rdm == 6 and base.pattern_descriptors["image_id"] == ss.ids
    for key in ("model", "layer", "call_index", "depth", "rel_depth", "block", "type", "shape", "bytes"):
        assert len(base.rdm_descriptors[key]) == 6
    assert list(base.rdm_descriptors["layer"]) == ["layer4.1.conv1", "layer4.1.bn1", "layer4.1.act1",
                                                   "layer4.1.conv2", "layer4.1.bn2", "layer4.1.act2"]
    # reversing the images permutes the RDM: same values, different order
    sal = out[("timm:resnet18", "Salient")]
    assert not np.allclose(base.dissimilarities, sal.dissimilarities)
    np.testing.assert_allclose(np.sort(base.dissimilarities, 1), np.sort(sal.dissimilarities, 1), atol=1e-6)
    assert [_report(r)["from_cache"] for r in out.values()] == [False, False]

    # second call: from the cache, identical, images not even loaded, network not built
    ss.calls.clear()
    built = []
    real_load = E.load_model
    E.load_model = lambda *a, **k: built.append(a) or real_load(*a, **k)
    try:
        again = E.stimulus_set_rdms(ss, params, conditions=conds, progress=False)
    finally:
        E.load_model = real_load
    assert ss.calls == [] and built == []
    np.testing.assert_array_equal(again[("timm:resnet18", "Baseline")].dissimilarities, base.dissimilarities)
    assert all(_report(r)["from_cache"] for r in again.values())
    # the report of a cached artifact carries what was measured when it was computed
    assert _report(again[("timm:resnet18", "Baseline")])["seconds_total"] == _report(base)["seconds_total"]

    # any key ingredient changes -> recomputed
    for change in ({"metric": "correlation"}, {"layers": r"^layer4\.0"}, {"preprocessing": "native"},
                   {"seed": 1}, {"models": ["torchvision:resnet18"]}):
        got = E.stimulus_set_rdms(ss, dict(params, **change), conditions=("Baseline",), progress=False)
        assert [_report(r)["from_cache"] for r in got.values()] == [False], change
    ss.cache_key = "fake-ss-2"
    got = E.stimulus_set_rdms(ss, params, conditions=("Baseline",), progress=False)
    assert _report(got[("timm:resnet18", "Baseline")])["from_cache"] is False
    # batch size and memory budget do not change the result: cache hit
    got = E.stimulus_set_rdms(ss, dict(params, batch_size=2, memory_budget_gb=0.5), conditions=("Baseline",),
                              progress=False)
    assert _report(got[("timm:resnet18", "Baseline")])["from_cache"] is True
    rep = E.engine_report(got)
    assert {"model", "n_images", "seconds_total", "peak_rss_gb", "mode", "condition"} <= set(rep.columns)


def test_report_shows_only_the_current_run(tiny_params, images):
    """Two extractions with different settings in one process (and the engine imported
    twice): each result's report and layer table describe that run only."""
    import importlib

    params = dict(tiny_params, models=["timm:resnet18"], layers=r"^layer4\.1\.conv")
    ss = FakeStimulusSet({"Baseline": images, "Control": images[1:]}, [f"img{i}" for i in range(N)])
    first = E.stimulus_set_rdms(ss, params, conditions=("Baseline",), progress=False)
    engine = importlib.reload(E)  # a reused kernel re-importing the engine
    ss.ids = ss.ids[1:]
    ss.cache_key = "fake-ss-other"
    second = engine.stimulus_set_rdms(ss, dict(params, layers=r"^layer3\.0\.conv1$"), conditions=("Control",),
                                      progress=False)
    rep = engine.engine_report(second)
    assert len(rep) == 1 and rep["condition"].tolist() == ["Control"] and rep["n_images"].tolist() == [N - 1]
    assert rep["layers"].tolist() == [r"^layer3\.0\.conv1$"] and rep["n_layers"].tolist() == [1]
    tables = engine.layer_tables(second)
    assert list(tables) == ["timm:resnet18"] and tables["timm:resnet18"]["layer"].tolist() == ["layer3.0.conv1"]
    # the first run's objects still describe the first run
    assert E.engine_report(first)["n_layers"].tolist() == [2]
    assert engine.layer_tables(first)["timm:resnet18"]["layer"].tolist() == ["layer4.1.conv1", "layer4.1.conv2"]
    # the engine module keeps no results between calls
    assert not [k for k, v in vars(engine).items()
                if isinstance(v, (list, dict, pd.DataFrame)) and v and not k.startswith("__")
                and k not in ("DESCRIPTORS", "LAYER_DETAILS", "__all__")]


def test_engine_restores_threads_and_rng(tiny_params, images):
    before = torch.get_num_threads()
    torch.set_num_threads(3)  # not 1: the small-n Grams run on one thread and must restore this
    try:
        torch.manual_seed(123)
        expected = torch.rand(3)
        torch.manual_seed(123)
        E.extract_rdms("timm:resnet18", images, images_key="restore",
                       params=dict(tiny_params, layers=r"^layer4\.1\.conv2"), progress=False)
        assert torch.get_num_threads() == 3
        assert torch.equal(torch.rand(3), expected)  # loading a seeded random network did not reseed the caller
    finally:
        torch.set_num_threads(before)


def test_small_gram_runs_on_one_thread_and_equals_float64():
    seen = []
    real = torch.Tensor.__matmul__

    def spy(a, b):
        seen.append(torch.get_num_threads())
        return real(a, b)

    x = torch.rand(6, 3 * E.GRAM_CHUNK + 5)
    before = torch.get_num_threads()
    torch.Tensor.__matmul__ = spy
    try:
        with E.torch_threads(2):
            g = E.gram(x)
            assert torch.get_num_threads() == 2
    finally:
        torch.Tensor.__matmul__ = real
    assert seen == [1] * 4  # four chunks, each on one thread
    assert torch.get_num_threads() == before
    np.testing.assert_allclose(g.numpy(), x.double().numpy() @ x.double().numpy().T, rtol=1e-6)


def test_extract_rejects_unknown_model_and_too_few_images(tiny_params, images):
    with pytest.raises(M.ModelError, match="timm:<name>"):
        E.extract_rdms("resnet_fifty", images, images_key="k", params=tiny_params)
    with pytest.raises(E.ExtractionError, match="at least 3 images"):
        E.extract_rdms("timm:resnet18", images[:2], images_key="k2", params=tiny_params, progress=False)


def test_rsa_rdm_uses_the_engine_arithmetic():
    from lib.rsa import rdm

    rng = np.random.default_rng(1)
    feats = rng.normal(size=(6, 3, 4, 5))
    r = rdm(feats)
    np.testing.assert_allclose(r.dissimilarities[0], pdist(feats.reshape(6, -1), "cosine"), atol=1e-12)
    g = E.gram(torch.tensor(feats.reshape(6, -1), dtype=torch.float32))
    np.testing.assert_allclose(E.grams_to_rdms([g.numpy()], pd.DataFrame({"layer": ["x"]}), "cosine", "m")[0],
                               r.dissimilarities[0], atol=1e-6)
