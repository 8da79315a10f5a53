"""The pretrained path, offline: seeded weights written into each source's real cache layout
and file format are found under ``auto`` and ``pretrained`` and loaded exactly; unknown tags
are errors; the identity names the file's content, library version and layer settings."""

import hashlib
import os

import pytest
import torch

from lib import models as M
from lib.checkpoints import CheckpointError


@pytest.fixture
def caches(monkeypatch, tmp_path):
    """Hugging Face hub and torch hub caches in tmp_path, set the way a user sets them."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def write_hf_snapshot(cache, repo: str, filename: str, state: dict[str, torch.Tensor], rev: str = "0123abcd") -> str:
    """A file as huggingface_hub stores it: models--org--name/snapshots/<rev>/<file>, refs/main = rev."""
    root = cache / "hub" / ("models--" + repo.replace("/", "--"))
    snap = root / "snapshots" / rev
    snap.mkdir(parents=True)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(rev)
    path = snap / filename
    if filename.endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return str(path)


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def assert_same_state(module: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    got = module.state_dict()
    assert set(got) == set(expected)
    for k, v in expected.items():
        assert torch.equal(got[k], v.to(got[k].dtype)), k


@pytest.mark.parametrize("filename", ["model.safetensors", "pytorch_model.bin"])
def test_timm_weights_from_hf_cache(caches, filename):
    import timm

    torch.manual_seed(123)
    donor = timm.create_model("resnet18", pretrained=False).state_dict()
    path = write_hf_snapshot(caches, "timm/resnet18.a1_in1k", filename, donor)
    assert M.weight_file("timm:resnet18.a1_in1k").local == path
    for policy in ("auto", "pretrained"):
        lm = M.load_model("timm:resnet18.a1_in1k", weights=policy)
        assert lm.weights_used == "pretrained"
        assert_same_state(lm.module, donor)
    ident = lm.identity
    assert (ident.source, ident.name, ident.tag, ident.file) == ("timm", "resnet18", "a1_in1k", path)
    assert ident.weights_digest == sha256(path) and ident.library_version == timm.__version__
    tag = M.weights_tag("timm:resnet18.a1_in1k", "auto", 0)
    assert tag.startswith("pretrained:timm:resnet18:a1_in1k:") and sha256(path) in tag and timm.__version__ in tag


def test_hf_home_locates_the_hub_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # the hub cache is $HF_HOME/hub
    path = write_hf_snapshot(tmp_path, "timm/resnet18.a1_in1k", "model.safetensors", {"w": torch.zeros(1)})
    assert M.weight_file("timm:resnet18.a1_in1k").local == path


def test_tagless_timm_name_means_the_default_tag_written_out(caches):
    import timm

    torch.manual_seed(5)
    donor = timm.create_model("resnet18", pretrained=False).state_dict()
    default = timm.models.get_pretrained_cfg("resnet18")
    write_hf_snapshot(caches, default.hf_hub_id, "model.safetensors", donor)
    lm = M.load_model("timm:resnet18", weights="pretrained")
    assert lm.identity.tag == default.tag and M.spec("timm:resnet18").tag == default.tag
    assert_same_state(lm.module, donor)


def _clip_state(arch: str, seed: int) -> dict[str, torch.Tensor]:
    """Seeded float16 tensors with the shapes of a whole open_clip model (as the hub stores
    OpenAI's weights); shapes from a meta-device build, so no slow init."""
    import open_clip

    with torch.device("meta"):
        shapes = {k: (v.shape, v.dtype) for k, v in open_clip.create_model(arch, device="meta").state_dict().items()}
    g = torch.Generator().manual_seed(seed)
    return {k: (torch.randn(s, generator=g).half() if dt.is_floating_point else torch.zeros(s, dtype=dt))
            for k, (s, dt) in shapes.items()}


# one policy per format: a whole CLIP RN50 is ~100 M parameters, each load takes seconds
@pytest.mark.parametrize("filename,policy", [("open_clip_model.safetensors", "auto"),
                                             ("open_clip_pytorch_model.bin", "pretrained")])
def test_open_clip_openai_weights_from_hf_cache(caches, filename, policy):
    import open_clip

    state = _clip_state("RN50", seed=7)
    path = write_hf_snapshot(caches, "timm/resnet50_clip.openai", filename, state)
    assert M.weight_file("clip_rn50").local == path
    lm = M.load_model("clip_rn50", weights=policy)
    assert lm.weights_used == "pretrained"
    assert_same_state(lm.module, {k[len("visual."):]: v for k, v in state.items() if k.startswith("visual.")})
    assert lm.identity.weights_digest == sha256(path) and lm.identity.library_version == open_clip.__version__


def test_torchvision_imagenet1k_v1_from_torch_hub_checkpoints(caches):
    import torchvision

    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    target = caches / "torch" / "hub" / "checkpoints" / os.path.basename(url)  # resnet18-f37072fd.pth
    target.parent.mkdir(parents=True)
    torch.manual_seed(11)
    donor = torchvision.models.resnet18().state_dict()
    torch.save(donor, target)
    for policy in ("auto", "pretrained"):
        lm = M.load_model("torchvision:resnet18:IMAGENET1K_V1", weights=policy)
        assert lm.weights_used == "pretrained"
        assert_same_state(lm.module, donor)
    assert lm.identity.file == str(target) and lm.identity.weights_digest == sha256(target)
    # the registry's supervised networks look for torchvision's IMAGENET1K_V1 files
    tv = torchvision.models
    for short, enum in [("resnet50", tv.ResNet50_Weights), ("resnet101", tv.ResNet101_Weights),
                        ("vit_b16", tv.ViT_B_16_Weights), ("vit_b32", tv.ViT_B_32_Weights),
                        ("vit_l16", tv.ViT_L_16_Weights)]:
        wf = M.weight_file(short)
        assert wf.url == enum.IMAGENET1K_V1.url
        assert wf.url_path == str(caches / "torch" / "hub" / "checkpoints" / os.path.basename(enum.IMAGENET1K_V1.url))


def test_file_source_loads_the_checkpoint_and_names_mismatches(caches, tmp_path):
    import torchvision

    torch.manual_seed(3)
    donor = torchvision.models.resnet18().state_dict()
    ckpt = tmp_path / "run" / "epoch3.pt"
    ckpt.parent.mkdir()
    torch.save({"state_dict": {f"module.{k}": v for k, v in donor.items()}}, ckpt)  # DataParallel, wrapped
    name = f"file:torchvision:resnet18@{ckpt}"
    lm = M.load_model(name, weights="auto")
    assert lm.weights_used == "pretrained"
    assert_same_state(lm.module, donor)
    ident = lm.identity
    assert (ident.source, ident.name, ident.library) == ("file", "torchvision:resnet18", "torchvision")
    assert lm.identity.weights_digest == sha256(ckpt)
    with pytest.raises(M.ModelError) as err:  # wrong architecture: the file and the keys are named
        M.load_model(f"file:torchvision:resnet34@{ckpt}", weights="pretrained")
    assert str(ckpt) in str(err.value) and "missing keys" in str(err.value) and "layer1.2" in str(err.value)
    assert isinstance(err.value.__cause__, CheckpointError)
    for policy in ("auto", "pretrained"):  # a missing file is never silently random
        with pytest.raises(M.ModelError, match="does not exist"):
            M.load_model(f"file:torchvision:resnet18@{tmp_path / 'nope.pt'}", weights=policy)


@pytest.mark.parametrize("bad,listed", [
    ("timm:resnet50.tv_in1K", "tv_in1k"),
    ("open_clip:RN50:opena", "openai"),
    ("torchvision:resnet50:IMAGENET1K_V3", "IMAGENET1K_V1"),
])
def test_unknown_tag_is_an_error_listing_valid_tags(caches, bad, listed):
    for policy in ("auto", "pretrained", "random"):
        with pytest.raises(M.ModelError) as err:
            M.load_model(bad, weights=policy)
        msg = str(err.value)
        assert "Valid tags" in msg and listed in msg and "Did you mean" in msg
        assert "network" not in msg and "internet" not in msg


def test_untrained_counterpart_is_the_same_architecture_on_seeded_random_weights(caches):
    import timm

    torch.manual_seed(21)
    donor = timm.create_model("resnet18", pretrained=False).state_dict()
    write_hf_snapshot(caches, "timm/resnet18.a1_in1k", "model.safetensors", donor)
    trained = M.load_model("timm:resnet18.a1_in1k", weights="auto")
    untrained = M.load_untrained("timm:resnet18.a1_in1k", seed=4)
    again = M.load_untrained("timm:resnet18.a1_in1k", seed=4)
    assert untrained.weights_used == "random" and untrained.identity.weights == "random"
    assert untrained.identity.seed == 4 and untrained.identity.weights_digest is None
    assert untrained.weights_hash == again.weights_hash != trained.weights_hash
    t_shapes = {k: v.shape for k, v in trained.module.state_dict().items()}
    assert t_shapes == {k: v.shape for k, v in untrained.module.state_dict().items()}
    assert trained.layer_table.drop(columns="model").equals(untrained.layer_table.drop(columns="model"))
    assert untrained.identity == M.model_identity("timm:resnet18.a1_in1k", "random", seed=4)


def test_identity_records_timm_fused_attention_which_changes_the_layer_table():
    from timm.layers import config as timm_config

    before = timm_config._USE_FUSED_ATTN
    try:
        tables, idents = {}, {}
        for fused in (True, False):
            timm_config.set_fused_attn(fused)
            tables[fused] = M.architecture_table("timm:vit_tiny_patch16_224")
            idents[fused] = M.model_identity("timm:vit_tiny_patch16_224", "random")
    finally:
        timm_config._USE_FUSED_ATTN = before
    assert dict(idents[True].settings) == {"timm_fused_attn": True}
    assert dict(idents[False].settings) == {"timm_fused_attn": False}
    assert idents[True] != idents[False]
    # without fused attention each of the 12 blocks has one more hooked call (attention dropout)
    assert len(tables[False]) == len(tables[True]) + 12


def test_float16_clip_vit_as_the_original_on_gpu():
    """Registry CLIP ViTs run in float16 on CUDA (auto), float32 elsewhere; the float16
    code path (OpenAI's: fp16 conv/linear/attention, LayerNorm in fp32) runs on the CPU."""
    assert M.effective_dtype(M.spec("clip_vit_b16"), "cuda") == "float16"
    assert M.effective_dtype(M.spec("clip_vit_l14"), "cuda:1") == "float16"
    assert M.effective_dtype(M.spec("clip_vit_b16"), "cpu") == "float32"
    assert M.effective_dtype(M.spec("clip_rn50"), "cuda") == "float32"
    assert M.effective_dtype(M.spec("vit_b16"), "cuda") == "float32"
    assert M.effective_dtype(M.spec("clip_rn50"), "cuda", "float16") == "float16"
    with pytest.raises(M.ModelError, match="precision"):
        M.effective_dtype(M.spec("clip_rn50"), "cpu", "half")
    lm = M.load_model("open_clip:ViT-S-32:none", weights="random", precision="float16")
    assert lm.identity.dtype == "float16"
    assert lm.module.conv1.weight.dtype == torch.float16 and lm.module.ln_pre.weight.dtype == torch.float32
    with torch.inference_mode():
        out = lm.module(torch.randn(2, 3, 224, 224))  # float32 images are cast on entry
    assert out.dtype == torch.float16 and torch.isfinite(out).all()


def test_wrap_any_module_with_its_transform():
    from torchvision import transforms as T

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 2))
    transform = T.Compose([T.Resize((224, 224)), T.ToTensor()])
    lm = M.wrap(net, transform, name="tiny")
    assert lm.name == "tiny" and lm.weights_used == "given" and not lm.module.training
    assert list(lm.layer_table.layer) == ["0", "1", "4"]
    import numpy as np

    x = lm.preprocess([np.zeros((10, 20, 3), np.uint8)])
    assert x.shape == (1, 3, 224, 224)
    first = lm.identity
    with torch.no_grad():
        net[4].bias.add_(1.0)
    assert M.wrap(net, transform, name="tiny").identity.weights_digest != first.weights_digest


def test_a_new_source_is_one_class(monkeypatch, tmp_path):
    """The protocol is all a source needs: parse, locate weights, build; weights policy,
    identity, preprocessing and layer tables come for free."""
    from lib.checkpoints import load_into

    def net():
        return torch.nn.Sequential(torch.nn.Conv2d(3, 2, 5, stride=4), torch.nn.ReLU(), torch.nn.Flatten(),
                                   torch.nn.Linear(2 * 55 * 55, 3))

    class ToySource(M.ModelSource):
        prefix, library = "toy", "torch"

        def parse(self, rest, full):
            return M.ModelSpec(rest, "other", "supervised", "toy", rest, "v1")

        def weight_file(self, s):
            path = tmp_path / f"{s.name}.pt"
            return M.WeightFile(None, (), None, None, str(path) if path.exists() else None)

        def build(self, s, path, dtype="float32"):
            module = net()
            return (load_into(module, path) if path else module), None

    monkeypatch.setitem(M.SOURCES, "toy", ToySource())
    torch.manual_seed(9)
    donor = net().state_dict()
    torch.save(donor, tmp_path / "small.pt")
    lm = M.load_model("toy:small", weights="pretrained")
    assert_same_state(lm.module, donor)
    assert lm.identity.weights_digest == sha256(tmp_path / "small.pt")
    assert list(lm.layer_table.layer) == ["0", "1", "3"]
    assert M.load_model("toy:other", weights="auto").weights_used == "random"  # no file: auto falls back
    with pytest.raises(M.ModelError, match="lib fetch weights"):
        M.load_model("toy:other", weights="pretrained")
