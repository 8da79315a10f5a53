"""``layer_rule``: the original study's layer tables (counts and names against the published
data), built without weights; and the engine reading each module at its last call."""

import numpy as np
import pytest
import torch

from lib import models as M
from lib import published

# layer counts of the original study (issue 9; = the published layer_rsa table)
ORIGINAL_COUNTS = {"resnet50": 125, "resnet101": 244, "clip_rn50": 169, "clip_rn101": 322, "vit_b16": 100,
                   "vit_b32": 100, "vit_l16": 196, "clip_vit_b16": 63, "clip_vit_b32": 63, "clip_vit_l14": 123}


def published_layers(model: str) -> list[str]:
    t = published.layer_rsa()
    one = t[(t.model == model) & (t.condition == "Baseline") & (t.reference == "saliency")]
    return list(one.sort_values("layer_index").layer)


def test_counts_above_are_the_published_ones():
    assert {m: len(published_layers(m)) for m in M.MODEL_NAMES} == ORIGINAL_COUNTS


@pytest.mark.parametrize("model", M.MODEL_NAMES)
def test_original_rule_reproduces_the_original_layer_table(model):
    table = M.architecture_table(model, "original")
    assert len(table) == ORIGINAL_COUNTS[model]
    assert (table.call_index == table.n_calls - 1).all()  # the last call of every module
    assert table.layer.is_unique and table.module.is_unique
    assert list(table.layer) == published_layers(model)
    if M.spec(model).source == "torchvision":
        assert list(table.layer) == list(table.module)


def test_open_clip_modules_carry_the_names_openai_gave_them():
    """The original ran OpenAI's CLIP code: its activations are relu1-3 (open_clip: act1-3)
    and a block registers attn before ln_1; the engine still hooks open_clip's modules."""
    rn = M.architecture_table("clip_rn50", "original").set_index("layer")
    assert rn.loc["layer1.0.relu2", "module"] == "layer1.0.act2"
    vit = M.architecture_table("clip_vit_b16", "original")
    block = vit[vit.module.str.startswith("transformer.resblocks.0.")]
    assert list(block.layer) == [f"transformer.resblocks.0.{n}" for n in ("attn", "ln_1", "mlp.c_fc", "mlp.c_proj",
                                                                         "ln_2")]
    assert (block.layer == block.module).all()


def test_original_rule_on_torchvision_resnet_keeps_shared_relu_once_at_its_last_call():
    every = M.architecture_table("resnet50", "every_call")
    orig = M.architecture_table("resnet50", "original")
    relu = orig[orig.module == "layer1.0.relu"].iloc[0]
    assert (relu.call_index, relu.n_calls) == (2, 3)
    assert list(every[every.module == "layer1.0.relu"].layer) == [f"layer1.0.relu#{k}" for k in range(3)]
    # registration order: the bottleneck's relu comes after bn3, before the downsample
    names = list(orig.layer)
    assert names.index("layer1.0.bn3") + 1 == names.index("layer1.0.relu") == names.index("layer1.0.downsample.0") - 1
    # every_call has one layer per call: 16 bottlenecks x 2 extra relu calls
    assert len(every) == len(orig) + 32


def test_meta_table_equals_the_table_of_the_built_model():
    lm = M.load_model("torchvision:resnet18", weights="random")
    for rule in M.LAYER_RULES:
        assert lm.layers(rule=rule).equals(M.architecture_table("torchvision:resnet18", rule).assign(
            model="torchvision:resnet18"))
    with pytest.raises(M.ModelError, match="layer_rule"):
        M.architecture_table("torchvision:resnet18", "last")


def test_clip_vit_table_is_batch_first_with_token_shapes():
    """OpenAI's CLIP ran its transformer sequence-first; open_clip >= 2.24 runs it batch
    first. Either way the table's batch_axis lets the engine read (image, tokens, dim)."""
    table = M.architecture_table("clip_vit_b32", "original")
    assert set(table.batch_axis) == {0}
    assert table.loc[table.type == "MultiheadAttention", "shape"].iloc[0] == "50x768"
    assert table.loc[table.layer == "conv1", "shape"].item() == "768x7x7"


@pytest.fixture(scope="module")
def resnet18_original():
    return M.load_model("torchvision:resnet18", weights="random", seed=1, layer_rule="original")


@pytest.mark.parametrize("budget_gb,batch_size", [(6.0, None), (0.02, 2)])  # one pass; layer groups, early stops
def test_engine_reads_each_module_at_its_last_call(resnet18_original, budget_gb, batch_size):
    """Grams from the engine under layer_rule=original equal Grams of the activations a
    plain hook keeps (overwritten on every call, as the original's dict of outputs)."""
    from lib import extract as E

    lm = resnet18_original
    table = lm.layers(r"^layer[12]\.")
    kept: dict[str, torch.Tensor] = {}
    named = dict(lm.module.named_modules())
    handles = [named[q].register_forward_hook(lambda m, i, o, q=q: kept.__setitem__(q, o.detach().clone()))
               for q in table.module]
    x = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        lm.module(x)
    for h in handles:
        h.remove()
    report = {}
    grams = E.compute_grams(lm, x, table, budget_bytes=budget_gb * 1e9, batch_size=batch_size,
                            progress=False, report=report)
    assert report["mode"] == ("single" if batch_size is None else "grouped")
    if batch_size:
        assert report["n_groups"] > 1
    for row, g in zip(table.itertuples(), grams):
        a = kept[row.module].reshape(4, -1).double()
        np.testing.assert_allclose(g, (a @ a.T).numpy(), rtol=1e-5, err_msg=row.layer)
