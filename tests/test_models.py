"""Model registry, weights policy, preprocessing and layer tables (random weights, offline)."""

import time

import numpy as np
import pytest
import torch

from lib import models as M
from lib.models import weights as W


@pytest.fixture
def empty_caches(monkeypatch, tmp_path):
    """Hugging Face and torch hub caches pointed at empty folders (read at call time)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


@pytest.fixture(scope="module")
def resnet18():
    return M.load_model("timm:resnet18", weights="random", seed=0)


def test_registry_names_and_descriptions():
    assert len(M.MODEL_NAMES) == 10
    assert M.describe("resnet50") == {"label": "ResNet-50", "arch": "ResNet", "training": "supervised"}
    assert M.describe("clip_vit_b16") == {"label": "CLIP ViT-B/16", "arch": "ViT", "training": "CLIP"}
    kinds = {(M.describe(n)["arch"], M.describe(n)["training"]) for n in M.MODEL_NAMES}
    assert kinds == {("ResNet", "supervised"), ("ViT", "supervised"), ("ResNet", "CLIP"), ("ViT", "CLIP")}
    assert M.spec("timm:vit_tiny_patch16_224").arch == "ViT"
    assert M.spec("open_clip:RN50:openai").source == "open_clip"


@pytest.mark.parametrize("bad", ["resnet5O", "timm:", "open_clip:RN50", "nonsense"])
def test_unknown_model_lists_names_and_forms(bad):
    with pytest.raises(M.ModelError) as err:
        M.spec(bad)
    msg = str(err.value)
    assert "resnet50" in msg and "timm:<name>" in msg and "open_clip:<arch>:<pretrained>" in msg


def test_unknown_timm_architecture_is_a_model_error():
    with pytest.raises(M.ModelError, match="timm has no model"):
        M.resolve_weights("timm:no_such_net_xyz", "auto")


def test_pretrained_missing_offline_is_quick_error_with_fetch_command(empty_caches):
    assert M.weight_file("resnet50").local is None  # also imports torchvision outside the timed part
    t = time.perf_counter()
    with pytest.raises(M.ModelError) as err:
        M.resolve_weights("resnet50", "pretrained")
    assert "python -m lib fetch weights --models resnet50" in str(err.value)
    assert M.resolve_weights("resnet50", "auto") == ("random", None)
    assert time.perf_counter() - t < 5  # no hub retries


def test_random_weights_are_seeded(resnet18):
    again = M.load_model("timm:resnet18", weights="random", seed=0)
    other = M.load_model("timm:resnet18", weights="random", seed=1)
    assert again.weights_hash == resnet18.weights_hash
    assert other.weights_hash != resnet18.weights_hash
    assert resnet18.weights_used == "random"
    # zero-initialised bottleneck norms are set to 1 so every layer carries signal
    assert all(torch.any(m.weight) for m in resnet18.module.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_random_weights_recorded_in_provenance(tmp_path):
    from lib import provenance

    params = {"run_dir": str(tmp_path)}
    lm = M.load_model("timm:resnet18", weights="random", seed=3, params=params)
    rec = provenance.read(tmp_path)
    assert rec and rec[0]["kind"] == "random_weights" and rec[0]["state_hash"] == lm.weights_hash


def test_clip_preprocessing_matches_open_clip_transform():
    import open_clip
    from PIL import Image

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (300, 410, 3), dtype=np.uint8)
    ours = M.Preprocess(M.clip_transform(), "clip")([img, img[:250]])
    theirs = open_clip.image_transform(224, is_train=False)(Image.fromarray(img))
    assert ours.shape == (2, 3, 224, 224)
    torch.testing.assert_close(ours[0], theirs, atol=1e-5, rtol=0)
    with pytest.raises(M.ModelError, match="uint8"):
        M.Preprocess(M.clip_transform(), "clip")([img.astype(np.float32)])


def test_layer_table_resnet(resnet18):
    t = resnet18.layer_table
    assert list(t.depth) == list(range(len(t)))
    assert t.rel_depth.iloc[0] == 0 and t.rel_depth.iloc[-1] == 1 and t.rel_depth.is_monotonic_increasing
    counts = t.type.value_counts().to_dict()
    assert counts == {"Conv2d": 20, "BatchNorm2d": 20, "ReLU": 17, "MaxPool2d": 1, "Linear": 1}
    assert t.block.iloc[0] == "stem" and t.block.iloc[-1] == "head"
    assert set(t.block) - {"stem", "head"} == {f"layer{i}.{j}" for i in range(1, 5) for j in range(2)}
    assert t.loc[t.layer == "conv1", "numel"].item() == 64 * 112 * 112
    blocks = resnet18.layers("blocks")
    assert list(blocks.layer) == [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    sel = resnet18.layers(r"^layer4\..*conv")
    assert len(sel) == 4 and list(sel.depth) == list(range(4))  # downsample.0 is no "conv"


def test_regex_matching_nothing_lists_layer_names(resnet18):
    with pytest.raises(M.ModelError) as err:
        resnet18.layers("no_such_layer")
    assert "layer1.0.conv1" in str(err.value)


def test_shared_module_gives_one_layer_per_call():
    """torchvision's BasicBlock calls one ReLU module twice: two layers, not one."""
    lm = M.load_model("torchvision:resnet18", weights="random")
    t = lm.layer_table
    relu = t[t.module == "layer1.0.relu"]
    assert list(relu.layer) == ["layer1.0.relu#0", "layer1.0.relu#1"]
    assert list(relu.call_index) == [0, 1] and set(relu.n_calls) == {2}
    assert (t.type == "ReLU").sum() == 1 + 8 * 2


def test_clip_vit_layers_are_batch_first():
    lm = M.load_model("open_clip:ViT-S-32:none", weights="random")
    t = lm.layer_table
    assert (t.batch_axis == 0).all()
    assert (t.type == "MultiheadAttention").sum() == 12
    assert t.loc[t.type == "MultiheadAttention", "shape"].iloc[0] == "50x384"
    # layer_rule=original lists a block as OpenAI's code registered it (attn before ln_1)
    first = [f"transformer.resblocks.0.{n}" for n in ("ln_1", "attn", "ln_2", "mlp.c_fc", "mlp.c_proj")]
    assert [n for n in t.layer if n in first] == first
    orig = lm.layers(rule="original")
    assert [n for n in orig.layer if n in first] == [first[i] for i in (1, 0, 3, 4, 2)]


def test_doctor_checks(empty_caches):
    checks = list(M.weights_checks({"weights": "pretrained", "models": ["resnet50", "bogus"]}))
    assert [c.ok for c in checks] == [False, False]
    assert "lib fetch weights --models resnet50" in checks[0].fix
    checks = list(M.weights_checks({"weights": "auto", "models": ["clip_rn50"]}))
    assert checks[0].ok and "random" in checks[0].detail


def test_fetch_weights_parses_model_list(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(W, "download_weights", lambda n: seen.append(n) or f"/cache/{n}")
    monkeypatch.setattr(W, "network_available", lambda: True)
    M.fetch_weights({"models": ["resnet50"]}, models="clip_rn50, vit_b16")
    assert seen == ["clip_rn50", "vit_b16"]
    M.fetch_weights({"models": ["resnet50"]}, models=["resnet101,vit_b32", "clip_rn101"])
    assert seen[2:] == ["resnet101", "vit_b32", "clip_rn101"]
    M.fetch_weights({"models": ["resnet50"]})
    assert seen[-1] == "resnet50" and "/cache/resnet50" in capsys.readouterr().out


def test_fetch_weights_offline_says_what_to_do(empty_caches):
    with pytest.raises(M.ModelError, match="machine with internet"):
        M.fetch_weights({"models": ["resnet50"]}, models=["clip_rn50"])


def test_random_init_gives_zero_initialised_layers_values():
    """torchvision zeroes the ViT head (and timm/open_clip some norm scales): with random
    weights such a layer would answer 0 to every image, an undefined RDM."""
    from torchvision.models.vision_transformer import VisionTransformer

    from lib.models.loading import _fix_zero_init

    torch.manual_seed(0)
    vit = VisionTransformer(image_size=32, patch_size=16, num_layers=1, num_heads=1, hidden_dim=8, mlp_dim=8)
    assert not torch.any(vit.heads.head.weight)
    assert _fix_zero_init(vit) == 1
    assert torch.any(vit.heads.head.weight) and float(vit.heads.head.weight.detach().std()) == pytest.approx(0.02, rel=0.5)
    out = vit.eval()(torch.randn(3, 3, 32, 32))
    assert torch.linalg.vector_norm(out, dim=1).min() > 0
    assert _fix_zero_init(vit) == 0  # nothing left to fix; trained weights are never touched by it
