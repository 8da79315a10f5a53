"""Which weights a model runs on, and the identity that names them in cache keys.

Policies: ``auto`` = a cached file, else (network reachable) a download, else seeded random
weights (the book warns); ``pretrained`` = the same but an error instead of random;
``random`` = seeded random weights. A mistyped tag never reaches this point: parsing the
name already failed with the list of valid tags.
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass
from typing import Any, Iterable

import torch

from lib.models.base import DTYPES, ModelError, ModelSpec, WeightFile, hf_cache_dir, source_of
from lib.models.registry import spec

WEIGHT_POLICIES = ("auto", "pretrained", "random")
PRECISIONS = ("auto", *DTYPES)

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


def weight_file(name: str) -> WeightFile:
    """Pretrained-weight location of a model, looked up in local caches only (no network)."""
    s = spec(name)
    return source_of(s).weight_file(s)


def download_weights(name: str) -> str:
    """Download a model's pretrained weights into its library's normal cache; returns the path."""
    s = spec(name)
    wf = weight_file(name)
    if wf.local:
        return wf.local
    if not wf.remote:
        raise ModelError(f"model {name!r} has no pretrained weights (tag {s.tag!r}); use weights=random")
    errors = []
    if wf.repo_id:
        from huggingface_hub import hf_hub_download

        for fn in wf.filenames:
            try:
                return hf_hub_download(wf.repo_id, fn, cache_dir=hf_cache_dir())
            except Exception as err:  # noqa: BLE001 - try the next file name / the url
                errors.append(f"{wf.repo_id}/{fn}: {err}")
    if wf.url:
        os.makedirs(os.path.dirname(wf.url_path), exist_ok=True)
        try:
            torch.hub.download_url_to_file(wf.url, wf.url_path, progress=True)
            return wf.url_path
        except Exception as err:  # noqa: BLE001
            errors.append(f"{wf.url}: {err}")
    raise ModelError(f"could not download weights of {name!r}: " + "; ".join(errors))


def resolve_weights(name: str, policy: str = "auto", *, allow_download: bool = True) -> tuple[str, str | None]:
    """Decide ``("pretrained", path)`` or ``("random", None)`` for a model under a policy."""
    if policy not in WEIGHT_POLICIES:
        raise ModelError(f"weights policy must be one of {list(WEIGHT_POLICIES)}, got {policy!r}")
    if policy == "random":
        spec(name)
        return "random", None
    wf = weight_file(name)
    if wf.local:
        return "pretrained", wf.local
    if wf.remote and allow_download and network_available():
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


def effective_dtype(s: ModelSpec, device: str, precision: str = "auto") -> str:
    """``auto``: the precision the original ran the network in on this device (float16
    for the CLIP ViT towers on a GPU, as OpenAI's clip.load), else float32."""
    if precision not in PRECISIONS:
        raise ModelError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    return s.cuda_dtype if str(device).startswith("cuda") else "float32"


def file_digest(path: str) -> str:
    """sha256 of a weights file, remembered by file identity (:mod:`lib.filehash`)."""
    from lib.filehash import file_digest as digest

    return digest(os.path.realpath(path))


@dataclass(frozen=True)
class ModelIdentity:
    """Everything that decides a network's outputs, for cache keys and records.

    ``weights``: "pretrained" (``file`` and its sha256 in ``weights_digest``), "random"
    (``seed``), or "given" (a wrapped module: ``weights_digest`` hashes its state dict).
    ``library``/``library_version``: the code that builds the network. ``settings``:
    library settings that change the layer table (timm's fused attention). ``dtype``: the
    precision the network runs in.
    """

    source: str
    name: str
    tag: str
    weights: str
    seed: int | None
    file: str | None
    weights_digest: str | None
    library: str
    library_version: str
    settings: tuple[tuple[str, Any], ...]
    dtype: str

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["settings"] = dict(self.settings)
        return d


def identity_for(s: ModelSpec, used: str, path: str | None, seed: int, dtype: str) -> ModelIdentity:
    """The identity of ``s`` built on the resolved weights (``used``, ``path``)."""
    code = source_of(s).code_source(s)
    return ModelIdentity(
        source=s.source, name=s.name, tag=s.tag, weights=used,
        seed=seed if used == "random" else None,
        file=path, weights_digest=file_digest(path) if path else None,
        library=code.library, library_version=code.version(),
        settings=tuple(sorted(code.settings().items())), dtype=dtype)


def model_identity(name: str, weights: str = "auto", seed: int = 0, device: str = "cpu",
                   precision: str = "auto") -> ModelIdentity:
    """The identity a :func:`load_model` call with these arguments will have, without
    building the network (may download under ``auto``/``pretrained`` when online)."""
    s = spec(name)
    used, path = resolve_weights(name, weights)
    return identity_for(s, used, path, seed, effective_dtype(s, device, precision))


def weights_tag(name: str, policy: str, seed: int, device: str = "cpu") -> str:
    """Cache-key string naming the weights a run will use (builds no model): source, name,
    tag, the weights file's sha256 (or the seed), the library version and settings, and
    the precision on ``device``."""
    ident = model_identity(name, policy, seed, device)
    what = f"sha256:{ident.weights_digest}" if ident.weights == "pretrained" else f"seed{seed}"
    settings = ",".join(f"{k}={v}" for k, v in ident.settings)
    return (f"{ident.weights}:{ident.source}:{ident.name}:{ident.tag}:{what}:"
            f"{ident.library}-{ident.library_version}:{ident.dtype}" + (f":{settings}" if settings else ""))
