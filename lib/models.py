"""Model registry: the paper's ten networks by short name, weights policy, preprocessing and
the layer table the extraction engine works from.

Why a registry: every chapter names networks the same way (``resnet50``, ``clip_vit_b16``,
or any ``timm:<name>`` / ``open_clip:<arch>:<pretrained>``), the weights actually used are
decided in one place (cache first, one brief network probe at most, seeded random as the
fallback the book warns about) and every network gets the paper's CLIP preprocessing.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
import torch
from torch import nn

from lib import doctor

# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class ModelSpec:
    """How to build one network: library, architecture and pretrained tag."""

    label: str
    arch: str  # "ResNet" | "ViT"
    training: str  # "supervised" | "CLIP"
    source: str  # "timm" | "open_clip"
    name: str  # timm model name, or open_clip architecture
    tag: str  # timm pretrained tag, or open_clip pretrained tag


REGISTRY: dict[str, ModelSpec] = {
    "resnet50": ModelSpec("ResNet-50", "ResNet", "supervised", "timm", "resnet50", "tv_in1k"),
    "resnet101": ModelSpec("ResNet-101", "ResNet", "supervised", "timm", "resnet101", "tv_in1k"),
    "vit_b16": ModelSpec("ViT-B/16", "ViT", "supervised", "timm", "vit_base_patch16_224", "augreg_in21k_ft_in1k"),
    "vit_b32": ModelSpec("ViT-B/32", "ViT", "supervised", "timm", "vit_base_patch32_224", "augreg_in21k_ft_in1k"),
    "vit_l16": ModelSpec("ViT-L/16", "ViT", "supervised", "timm", "vit_large_patch16_224", "augreg_in21k_ft_in1k"),
    "clip_rn50": ModelSpec("CLIP RN50", "ResNet", "CLIP", "open_clip", "RN50", "openai"),
    "clip_rn101": ModelSpec("CLIP RN101", "ResNet", "CLIP", "open_clip", "RN101", "openai"),
    "clip_vit_b16": ModelSpec("CLIP ViT-B/16", "ViT", "CLIP", "open_clip", "ViT-B-16", "openai"),
    "clip_vit_b32": ModelSpec("CLIP ViT-B/32", "ViT", "CLIP", "open_clip", "ViT-B-32", "openai"),
    "clip_vit_l14": ModelSpec("CLIP ViT-L/14", "ViT", "CLIP", "open_clip", "ViT-L-14", "openai"),
}
MODEL_NAMES: tuple[str, ...] = tuple(REGISTRY)

# The module types the paper hooked (every call of each is one layer).
PAPER_TYPES: tuple[type, ...] = (
    nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.LayerNorm, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d,
    nn.Dropout, nn.MultiheadAttention,
)
WEIGHT_POLICIES = ("auto", "pretrained", "random")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGE_SIZE = 224


class ModelError(ValueError):
    """A model name, weight or layer request that cannot be served; says how to fix it."""


def _name_help() -> str:
    return (f"registry names: {', '.join(MODEL_NAMES)}; or 'timm:<name>' (e.g. timm:resnet18) "
            f"or 'open_clip:<arch>:<pretrained>' (e.g. open_clip:RN50:openai) "
            f"or 'torchvision:<name>' (e.g. torchvision:resnet50)")


def spec(name: str) -> ModelSpec:
    """Resolve a short name or a ``timm:`` / ``open_clip:`` form into a :class:`ModelSpec`."""
    if name in REGISTRY:
        return REGISTRY[name]
    if name.startswith("timm:"):
        full = name[5:]
        if not full:
            raise ModelError(f"model {name!r} names no timm model; {_name_help()}")
        arch_name, _, tag = full.partition(".")
        kind = "ViT" if "vit" in arch_name.lower() else ("ResNet" if "resnet" in arch_name.lower() else "other")
        return ModelSpec(full, kind, "supervised", "timm", arch_name, tag)
    if name.startswith("open_clip:"):
        parts = name.split(":")
        if len(parts) != 3 or not parts[1]:
            raise ModelError(f"model {name!r} is not of the form open_clip:<arch>:<pretrained>; {_name_help()}")
        arch_name, tag = parts[1], parts[2]
        kind = "ViT" if "vit" in arch_name.lower() else ("ResNet" if arch_name.upper().startswith("RN") else "other")
        return ModelSpec(f"open_clip {arch_name} ({tag})", kind, "CLIP", "open_clip", arch_name, tag)
    import difflib

    close = difflib.get_close_matches(name, MODEL_NAMES, n=2)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    if name.startswith("torchvision:"):
        arch_name = name.split(":", 1)[1]
        kind = "ViT" if arch_name.startswith("vit") else ("ResNet" if "resnet" in arch_name else "other")
        return ModelSpec(f"torchvision {arch_name}", kind, "supervised", "torchvision", arch_name, "DEFAULT")
    raise ModelError(f"unknown model {name!r}.{hint} Valid: {_name_help()}")


def describe(name: str) -> dict[str, str]:
    """Label, architecture family and training regime of a model name (for plots/tables)."""
    s = spec(name)
    return {"label": s.label, "arch": s.arch, "training": s.training}


# ----------------------------------------------------------------------------- weights


@dataclass(frozen=True)
class WeightFile:
    """Where a model's pretrained weights live (or would live) in the normal caches."""

    repo_id: str | None
    filenames: tuple[str, ...]
    url: str | None
    local: str | None  # path of a cached copy, None if absent


def _timm_weight_file(s: ModelSpec) -> WeightFile:
    import timm

    full = f"{s.name}.{s.tag}" if s.tag else s.name
    try:
        cfg = timm.models.get_pretrained_cfg(full)
    except Exception:  # noqa: BLE001 - unknown tag: no pretrained weights
        cfg = None
    if cfg is None:
        if not timm.is_model(s.name):
            raise ModelError(f"timm has no model {s.name!r}; {_name_help()}")
        return WeightFile(None, (), None, None)
    repo = getattr(cfg, "hf_hub_id", None) or None
    names = ("model.safetensors", "pytorch_model.bin")
    local = _cached_hub_file(repo, names) if repo else None
    url = getattr(cfg, "url", None) or None
    if local is None and url:
        path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))
        local = path if os.path.isfile(path) else None
    return WeightFile(repo, names, url, local)


def _cached_hub_file(repo: str, names: tuple[str, ...]) -> str | None:
    """The first of ``names`` already in the local Hugging Face cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    for fn in names:
        hit = try_to_load_from_cache(repo, fn)
        if isinstance(hit, str) and os.path.isfile(hit):
            return hit
    return None


def _open_clip_weight_file(s: ModelSpec) -> WeightFile:
    import open_clip

    if s.name not in open_clip.list_models():
        raise ModelError(f"open_clip has no architecture {s.name!r}; {_name_help()}")
    cfg = open_clip.get_pretrained_cfg(s.name, s.tag) if s.tag and s.tag != "none" else {}
    if not cfg:
        return WeightFile(None, (), None, None)
    local = None
    repo, names = None, ()
    if cfg.get("hf_hub"):
        repo, fn = os.path.split(cfg["hf_hub"].rstrip("/") + ("/" if cfg["hf_hub"].endswith("/") else ""))
        names = (fn,) if fn else ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
        local = _cached_hub_file(repo, names)
    url = cfg.get("url") or None
    if local is None and url:
        path = os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(url))
        local = path if os.path.isfile(path) else None
    return WeightFile(repo, names, url, local)


def _torchvision_weight_file(s: ModelSpec) -> WeightFile:
    import torchvision

    try:
        url = torchvision.models.get_model_weights(s.name).DEFAULT.url
    except Exception as err:  # noqa: BLE001 - unknown architecture
        raise ModelError(f"torchvision has no model {s.name!r} with weights ({err}); {_name_help()}") from None
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))
    return WeightFile(None, (), url, path if os.path.isfile(path) else None)


def weight_file(name: str) -> WeightFile:
    """Pretrained-weight location of a model, looked up in local caches only (no network)."""
    s = spec(name)
    if s.source == "torchvision":
        return _torchvision_weight_file(s)
    return _timm_weight_file(s) if s.source == "timm" else _open_clip_weight_file(s)


_NET: dict[str, bool] = {}


def network_available(timeout: float = 2.0) -> bool:
    """One brief probe of huggingface.co per process (never when HF_HUB_OFFLINE is set).

    Why: offline, timm/hub downloads spend ~50 s in retries; this answers in <= timeout.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    if "hf" not in _NET:
        result = [False]

        def probe():
            import socket

            try:
                with socket.create_connection(("huggingface.co", 443), timeout=timeout):
                    result[0] = True
            except OSError:
                pass

        t = threading.Thread(target=probe, daemon=True)
        t.start()
        t.join(timeout + 0.5)
        _NET["hf"] = result[0]
    return _NET["hf"]


def fetch_command(names: Iterable[str]) -> str:
    return f"python -m lib fetch weights --models {','.join(names)}"


def download_weights(name: str) -> str:
    """Download a model's pretrained weights into the normal HF / torch caches; returns the path."""
    s = spec(name)
    wf = weight_file(name)
    if wf.local:
        return wf.local
    if wf.repo_id is None and wf.url is None:
        raise ModelError(f"model {name!r} has no pretrained weights (tag {s.tag!r}); use weights=random")
    errors = []
    if wf.repo_id:
        from huggingface_hub import hf_hub_download

        for fn in wf.filenames:
            try:
                return hf_hub_download(wf.repo_id, fn)
            except Exception as err:  # noqa: BLE001 - try the next file name / the url
                errors.append(f"{wf.repo_id}/{fn}: {err}")
    if wf.url:
        target_dir = (os.path.join(torch.hub.get_dir(), "checkpoints") if s.source != "open_clip"
                      else os.path.expanduser("~/.cache/clip"))
        os.makedirs(target_dir, exist_ok=True)
        path = os.path.join(target_dir, os.path.basename(wf.url))
        try:
            torch.hub.download_url_to_file(wf.url, path, progress=True)
            return path
        except Exception as err:  # noqa: BLE001
            errors.append(f"{wf.url}: {err}")
    raise ModelError(f"could not download weights of {name!r}: " + "; ".join(errors))


def resolve_weights(name: str, policy: str = "auto", *, allow_download: bool = True) -> tuple[str, str | None]:
    """Decide ``("pretrained", path)`` or ``("random", None)`` for a model under a policy.

    ``auto``: a cached file, else (network reachable) a download, else random.
    ``pretrained``: the same but an error, with the fetch command, when nothing works.
    """
    if policy not in WEIGHT_POLICIES:
        raise ModelError(f"weights policy must be one of {list(WEIGHT_POLICIES)}, got {policy!r}")
    if policy == "random":
        spec(name)
        return "random", None
    wf = weight_file(name)
    if wf.local:
        return "pretrained", wf.local
    has_remote = wf.repo_id is not None or wf.url is not None
    if has_remote and allow_download and network_available():
        try:
            return "pretrained", download_weights(name)
        except ModelError:
            if policy == "pretrained":
                raise
    if policy == "pretrained":
        where = wf.repo_id or wf.url or "nowhere (this tag has no pretrained weights)"
        raise ModelError(
            f"pretrained weights of {name!r} are not in the local caches ({where}) and cannot be "
            f"downloaded now. Fetch them on a machine with internet: {fetch_command([name])} "
            f"(or run with -p weights=auto / random)"
        )
    return "random", None


def weights_tag(name: str, policy: str, seed: int) -> str:
    """Cache-key ingredient naming the weights a run will use (builds no model; may
    download under ``auto``/``pretrained`` when the network is reachable)."""
    used, _ = resolve_weights(name, policy)
    s = spec(name)
    if used == "pretrained":
        return f"pretrained:{s.source}:{s.name}:{s.tag}"
    import importlib

    lib_version = importlib.import_module(s.source).__version__
    return f"random:seed{seed}:{s.source}-{lib_version}"


# ----------------------------------------------------------------------------- preprocessing


def _clip_transform(size: int = IMAGE_SIZE) -> Callable:
    from torchvision import transforms as T

    return T.Compose([
        T.Resize(size, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(size),
        T.ToTensor(),
        T.Normalize(CLIP_MEAN, CLIP_STD),
    ])


def _to_pil(image: np.ndarray):
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ModelError(f"images must be uint8 (H, W, 3) arrays, got {arr.dtype} {arr.shape}")
    return Image.fromarray(arr)


class Preprocess:
    """uint8 (H, W, 3) images -> normalised float tensor batch (n, 3, 224, 224)."""

    def __init__(self, transform: Callable, kind: str):
        self.transform = transform
        self.kind = kind

    def __call__(self, images: Iterable[np.ndarray]) -> torch.Tensor:
        tensors = [self.transform(_to_pil(im)) for im in images]
        if not tensors:
            raise ModelError("no images to preprocess")
        return torch.stack(tensors)


# ----------------------------------------------------------------------------- loading


@dataclass
class LoadedModel:
    """A network ready for extraction: image tower in eval mode and its preprocessing."""

    name: str
    module: nn.Module
    preprocess: Preprocess
    weights_used: str  # "pretrained" | "random"
    weights_hash: str
    device: str
    seed: int
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def layer_table(self) -> pd.DataFrame:
        """Every call of every module of the paper's types, in execution order."""
        return self.layers("all")

    def layers(self, layer_set: str | list[str] = "all") -> pd.DataFrame:
        """Layer table for a layer set: ``all``, ``blocks``, a regex, or a list of names."""
        if "_probe" not in self._tables:
            self._tables["_probe"] = probe_layers(self.module, device=self.device)
        return select_layers(self._tables["_probe"], layer_set, model=self.name)


def _state_hash(module: nn.Module) -> str:
    h = hashlib.blake2b(digest_size=8)
    for k, v in module.state_dict().items():
        h.update(k.encode())
        t = v.detach().cpu().contiguous().reshape(-1)
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _fix_zero_norm_init(module: nn.Module) -> int:
    """Random init: set all-zero norm-layer scales (zero-init residual branches) to 1.

    Why: timm and open_clip zero the last BatchNorm of each bottleneck at init, which makes
    that layer's output identically zero for every image -- its RDM would be undefined.
    """
    fixed = 0
    for m in module.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)) and getattr(m, "weight", None) is not None:
            if not torch.any(m.weight):
                with torch.no_grad():
                    m.weight.fill_(1.0)
                fixed += 1
    return fixed


def _build(s: ModelSpec, used: str, path: str | None) -> tuple[nn.Module, Preprocess]:
    if s.source == "timm":
        import timm

        full = f"{s.name}.{s.tag}" if s.tag else s.name
        if used == "pretrained":
            model = timm.create_model(full, pretrained=True, pretrained_cfg_overlay={"file": path})
        else:
            model = timm.create_model(s.name, pretrained=False)
        cfg = timm.data.resolve_data_config({}, model=model)
        native = timm.data.create_transform(**cfg)
        return model, Preprocess(native, "native")
    if s.source == "torchvision":
        import torchvision

        model = torchvision.models.get_model(s.name, weights=None)
        if used == "pretrained":
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model, Preprocess(torchvision.models.get_model_weights(s.name).DEFAULT.transforms(), "native")
    import logging

    import open_clip

    pcfg = open_clip.get_pretrained_cfg(s.name, s.tag) if s.tag and s.tag != "none" else {}
    quick = bool(pcfg.get("quick_gelu", False))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # open_clip logs "initialized randomly" on the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = open_clip.create_model(s.name, pretrained=path if used == "pretrained" else None,
                                           force_quick_gelu=quick)
    finally:
        root.setLevel(level)
    native = open_clip.image_transform(model.visual.image_size, is_train=False,
                                       mean=pcfg.get("mean", CLIP_MEAN), std=pcfg.get("std", CLIP_STD))
    return model.visual, Preprocess(native, "native")


def load_model(name: str, weights: str = "auto", seed: int = 0, preprocessing: str = "clip",
               device: str = "cpu", params: dict[str, Any] | None = None) -> LoadedModel:
    """Build a network's image tower under a weights policy; record what was used.

    Random weights are seeded (``torch.manual_seed(seed)`` right before construction).
    ``params`` (optional) lets the provenance record land in the run's records.
    """
    if preprocessing not in ("clip", "native"):
        raise ModelError(f"preprocessing must be 'clip' or 'native', got {preprocessing!r}")
    s = spec(name)
    used, path = resolve_weights(name, weights)
    torch.manual_seed(seed)
    try:
        module, native = _build(s, used, path)
    except ModelError:
        raise
    except Exception as err:
        raise ModelError(f"could not build {name!r} ({s.source} {s.name}, weights {used}): {err}") from err
    fixed = _fix_zero_norm_init(module) if used == "random" else 0
    module.eval().to(device)
    for p in module.parameters():
        p.requires_grad_(False)
    pre = Preprocess(_clip_transform(), "clip") if preprocessing == "clip" else native
    digest = _state_hash(module)
    if params is not None:
        from lib import provenance

        if used == "random":
            note = f" ({fixed} zero-initialised norm scales set to 1)" if fixed else ""
            provenance.record(params, "random_weights",
                              f"{name}: seeded random weights (seed {seed}){note}", model=name,
                              seed=seed, state_hash=digest, policy=weights)
        else:
            provenance.record(params, "pretrained_weights", f"{name}: pretrained {s.source} {s.name}.{s.tag}",
                              model=name, file=path, state_hash=digest, policy=weights)
    return LoadedModel(name, module, pre, used, digest, device, seed)


# ----------------------------------------------------------------------------- layer table


def is_block(module: nn.Module) -> bool:
    """Residual bottleneck / transformer block containers (by class name, across libraries)."""
    cls = type(module).__name__
    return cls.endswith("Block") or cls.endswith("Bottleneck") or cls in ("BasicBlock",)


def candidate_modules(model: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """name -> (module, kind) for the paper's layer types ("layer") and blocks ("block")."""
    out: dict[str, tuple[nn.Module, str]] = {}
    for qname, m in model.named_modules():
        if not qname:
            continue
        if isinstance(m, PAPER_TYPES):
            out[qname] = (m, "layer")
        elif is_block(m):
            out[qname] = (m, "block")
    return out


def first_tensor(out: Any) -> torch.Tensor | None:
    """Module output -> the tensor the paper analysed (first element of tuples/lists)."""
    while isinstance(out, (tuple, list)):
        if not out:
            return None
        out = out[0]
    return out if isinstance(out, torch.Tensor) else None


def _outermost_blocks(names: list[str]) -> list[str]:
    names = sorted(names)
    keep = []
    for n in names:
        if not any(n.startswith(k + ".") for k in keep):
            keep.append(n)
    return keep


@torch.inference_mode()
def probe_layers(model: nn.Module, device: str = "cpu", size: int = IMAGE_SIZE, seed: int = 0) -> pd.DataFrame:
    """Run 1 and then 2 synthetic images through the model and list every hooked call.

    The batch axis of each output is the one whose size goes 1 -> 2 (handles
    sequence-first transformer outputs); per-image size plans the memory budget.
    """
    cands = candidate_modules(model)
    g = torch.Generator().manual_seed(seed)
    x2 = torch.randn(2, 3, size, size, generator=g).to(device)
    runs: list[list[tuple[str, tuple[int, ...]]]] = []
    for x in (x2[:1], x2):
        events: list[tuple[str, tuple[int, ...]]] = []
        handles = []
        for qname, (m, _) in cands.items():
            def hook(mod, inp, out, _q=qname, _ev=events):
                t = first_tensor(out)
                _ev.append((_q, tuple(t.shape) if t is not None else ()))
            handles.append(m.register_forward_hook(hook))
        try:
            model(x)
        finally:
            for h in handles:
                h.remove()
        runs.append(events)
    if [e[0] for e in runs[0]] != [e[0] for e in runs[1]]:
        raise ModelError("the model calls its modules in a different order for 1 and 2 images; cannot map layers")
    blocks = _outermost_blocks([q for q, (m, k) in cands.items() if k == "block"])
    rows, counts = [], {}
    seen_block = False
    for (qname, s1), (_, s2) in zip(*runs):
        if not s1:
            counts[qname] = counts.get(qname, 0) + 1
            continue
        m, kind = cands[qname]
        k = counts.get(qname, 0)
        counts[qname] = k + 1  # every call counts, so the engine's call numbering matches
        axes = [i for i, (a, b) in enumerate(zip(s1, s2)) if a == 1 and b == 2] if len(s1) == len(s2) else []
        if len(axes) != 1:
            continue  # no batch axis (e.g. a module applied to shared parameters): not an image layer
        parent = next((b for b in blocks if qname == b or qname.startswith(b + ".")), None)
        if parent is not None:
            seen_block = True
            block = parent
        else:
            block = "head" if seen_block else "stem"
        per_image = [d for i, d in enumerate(s1) if i != axes[0]]
        numel = int(np.prod(per_image)) if per_image else 1
        rows.append(dict(module=qname, call_index=k, kind=kind, block=block, type=type(m).__name__,
                         shape="x".join(map(str, per_image)), numel=numel, batch_axis=axes[0]))
    df = pd.DataFrame(rows)
    n_calls = df["module"].map(counts)
    df["n_calls"] = n_calls
    df["name"] = [m if c == 1 else f"{m}#{k}" for m, k, c in zip(df.module, df.call_index, n_calls)]
    df["bytes"] = df["numel"] * 4
    return df


TABLE_COLUMNS = ["model", "layer", "module", "call_index", "n_calls", "depth", "rel_depth", "block",
                 "type", "shape", "numel", "bytes", "batch_axis"]


def select_layers(probe: pd.DataFrame, layer_set: str | list[str] = "all", model: str = "") -> pd.DataFrame:
    """Filter a probe table to a layer set and number depth 0..L-1 (rel_depth in [0, 1])."""
    layers = probe[probe.kind == "layer"]
    if isinstance(layer_set, (list, tuple)):
        missing = [n for n in layer_set if n not in set(probe.name)]
        if missing:
            raise ModelError(f"{model}: no layers named {missing}; layer names are: {', '.join(probe.name)}")
        df = probe[probe.name.isin(layer_set)]
    elif layer_set == "all":
        df = layers
    elif layer_set == "blocks":
        df = probe[probe.kind == "block"]
        if df.empty:
            raise ModelError(f"{model}: found no residual/transformer blocks; use layers=all or a regex")
    else:
        try:
            rx = re.compile(layer_set)
        except re.error as err:
            raise ModelError(f"layers={layer_set!r} is not all, blocks or a valid regular expression: {err}") from None
        df = layers[[bool(rx.search(n)) for n in layers.name]]
        if df.empty:
            raise ModelError(f"{model}: layer regex {layer_set!r} matches no layer; layer names are: "
                             f"{', '.join(layers.name)}")
    df = df.reset_index(drop=True).copy()
    df["layer"] = df["name"]
    df["model"] = model
    df["depth"] = np.arange(len(df))
    df["rel_depth"] = df["depth"] / max(len(df) - 1, 1)
    return df[TABLE_COLUMNS]


# ----------------------------------------------------------------------------- doctor / fetch


@doctor.requirement
def _weights_checks(params: dict[str, Any]) -> Iterable[doctor.Check]:
    policy = params.get("weights", "auto")
    for name in params.get("models", []):
        try:
            wf = weight_file(name)
        except ModelError as err:
            yield doctor.Check(f"model {name}", False, str(err), "fix the models parameter")
            continue
        if policy == "random":
            yield doctor.Check(f"weights {name}", True, "seeded random weights (weights=random)")
        elif wf.local:
            yield doctor.Check(f"weights {name}", True, f"pretrained, cached at {wf.local}")
        elif policy == "auto":
            yield doctor.Check(f"weights {name}", True,
                               "not cached: weights=auto will use seeded random weights (the book warns)",
                               f"for pretrained weights: {fetch_command([name])}")
        else:
            yield doctor.Check(f"weights {name}", False, "pretrained weights not in the local caches",
                               fetch_command([name]))


@doctor.fetcher("weights", "download pretrained weights into the HF/torch caches (--models a,b,...)")
def fetch_weights(params: dict[str, Any], models: str | list[str] | None = None, **_: Any) -> None:
    names = models if models else params.get("models", list(MODEL_NAMES))
    if isinstance(names, str):
        names = [names]
    names = [n.strip() for item in names for n in str(item).split(",") if n.strip()]
    for name in names:
        spec(name)
    missing = [n for n in names if not weight_file(n).local]
    if missing and not network_available():
        raise ModelError(f"cannot reach huggingface.co to download weights of {', '.join(missing)}; run "
                         f"'{fetch_command(missing)}' on a machine with internet and copy its "
                         f"~/.cache/huggingface (and ~/.cache/torch, ~/.cache/clip) here")
    for name in names:
        path = download_weights(name)
        print(f"{name}: {path}")
