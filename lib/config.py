"""Profiles: every chapter parameter, validated, with repository paths and device choice.

A profile (``params/<name>.yaml``) sets every parameter in :data:`SCHEMA`. Papermill
injects whatever it is given, silently, so validation happens here: an unknown or
misspelled name, a wrong type or a value outside its choices is an error that lists
what is valid.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
PARAMS_DIR = REPO_ROOT / "params"
DATA_DIR = REPO_ROOT / "data"
DEFAULT_PROFILE = "demo"


class ConfigError(ValueError):
    """A profile or an override that cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class Param:
    """One chapter parameter: accepted types, help text and optional allowed values."""

    types: tuple[type, ...]
    help: str
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    item_type: type | None = None  # element type for list parameters
    # Allowed range for numbers (None = unbounded); ``*_open`` excludes the bound itself.
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False


def _p(types, help, **kw) -> Param:
    return Param(types if isinstance(types, tuple) else (types,), help, **kw)


SCHEMA: dict[str, Param] = {
    # --- run-wide
    "seed": _p(int, "seed for every random choice (placements, random weights, permutations)"),
    "device": _p(str, "compute device", choices=("auto", "cpu", "cuda")),
    "cache_dir": _p(str, "artifact cache folder (relative paths are relative to the repo)"),
    "data_dir": _p(str, "folder holding downloaded data (COCO, NSD, Algonauts)"),
    "force": _p(bool, "recompute every cached artifact"),
    # --- stimuli
    "source": _p(str, "where base images and captions come from", choices=("demo", "coco_nsd", "folder")),
    "folder_path": _p(str, "image folder (with captions.yaml) for source=folder", nullable=True),
    "n_images": _p(int, "number of base images to consider (null = all)", nullable=True),
    "nsd_shared1000": _p(bool, "coco_nsd: keep only the NSD shared-1000 images"),
    "caption_model": _p(str, "sentence-transformers model for caption embeddings"),
    "selection_mode": _p(str, "how conditions are chosen", choices=("threshold", "quantile")),
    "sem_similar_max": _p(float, "threshold mode: semantic distance below which a distractor is similar"),
    "sem_dissimilar_min": _p(float, "threshold mode: semantic distance above which it is dissimilar"),
    "sal_little_max": _p(float, "threshold mode: saliency change below which it is 'little'"),
    "sal_alot_min": _p(float, "threshold mode: saliency change above which it is 'a lot'"),
    "quantile_low": _p(float, "quantile mode: lower quantile (similar / little)"),
    "quantile_high": _p(float, "quantile mode: upper quantile (dissimilar / a lot)"),
    "n_distractors": _p(int, "candidate distractor images tried per base image (null = all)", nullable=True),
    "n_placements": _p(int, "candidate paste placements per distractor image"),
    "swap_rb": _p(bool, "reproduce the original analysis's R/B channel swap in saliency"),
    "saliency_batch_size": _p(int, "images per batched saliency computation"),
    # --- models and extraction
    "models": _p(list, "networks to analyse (registry names, timm:<name>, open_clip:<arch>:<tag>)", item_type=str),
    "weights": _p(str, "weights policy", choices=("auto", "pretrained", "random")),
    "preprocessing": _p(str, "image preprocessing", choices=("clip", "native")),
    "layers": _p(str, "layer set: all, blocks, or a regular expression over layer names"),
    "metric": _p(str, "RDM distance", choices=("cosine", "correlation")),
    "batch_size": _p(int, "images per forward pass (null = all at once)", nullable=True),
    "memory_budget_gb": _p((int, float), "memory for held activations, in GB"),
    # --- inference
    "n_permutations": _p(int, "permutations for RSA p-values"),
    "n_bootstrap": _p(int, "bootstrap resamples for confidence intervals"),
    "alpha": _p(float, "significance level (FDR across layers)"),
    # --- brain
    "brain_source": _p(str, "fMRI data", choices=("synthetic", "algonauts")),
    "algonauts_dir": _p(str, "Algonauts 2023 challenge data folder (subjXX/ inside)"),
    "subjects": _p(list, "NSD subjects to use", item_type=int),
    "roi_rdm_mode": _p(str, "how hemispheres combine into an ROI RDM", choices=("mean", "concat")),
    "noise_ceiling": _p(str, "noise-ceiling method", choices=("loso", "bootstrap")),
    "synthetic_noise": _p(float, "synthetic subjects: noise standard deviation relative to signal"),
    # --- replication choices (issue 9)

    # --- statistics (issue 11)

    # --- training dynamics (issue 13)

    # --- scale-out and architecture (issue 12)
    "cluster": _p(str, "where heavy steps run: null = in this process, local = a LocalCluster on this machine, "
                       "or a Dask scheduler address tcp://HOST:8786 (workers must share cache_dir)", nullable=True),

    # --- reliability (issue 14)

}

# Injected by the build, not set by profiles.
RUN_KEYS = ("profile", "run_dir")


def profile_names() -> list[str]:
    return sorted(p.stem for p in PARAMS_DIR.glob("*.yaml"))


def _type_name(p: Param) -> str:
    names = "/".join(t.__name__ for t in p.types)
    if p.item_type:
        names += f"[{p.item_type.__name__}]"
    return names + (" or null" if p.nullable else "")


def _check_type(name: str, value: Any, p: Param) -> Any:
    if value is None:
        if p.nullable:
            return None
        raise ConfigError(f"parameter {name!r} may not be null; expected {_type_name(p)} ({p.help})")
    ok = isinstance(value, p.types) and not (isinstance(value, bool) and bool not in p.types)
    if not ok and float in p.types and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ConfigError(
            f"parameter {name!r} must be {_type_name(p)}, got {type(value).__name__} {value!r} ({p.help})"
        )
    if p.item_type is not None:
        bad = [v for v in value if not isinstance(v, p.item_type) or isinstance(v, bool)]
        if bad:
            raise ConfigError(f"parameter {name!r} must be a list of {p.item_type.__name__}, got {value!r}")
    if p.choices is not None and value not in p.choices:
        raise ConfigError(f"parameter {name!r} must be one of {list(p.choices)}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not _in_range(value, p):
        raise ConfigError(f"parameter {name!r} must be in {_range_text(p)}, got {value!r} ({p.help})")
    return value


def _in_range(value: float, p: Param) -> bool:
    if p.low is not None and (value < p.low or (p.low_open and value == p.low)):
        return False
    return not (p.high is not None and (value > p.high or (p.high_open and value == p.high)))


def _range_text(p: Param) -> str:
    left = "(" if p.low_open or p.low is None else "["
    right = ")" if p.high_open or p.high is None else "]"
    lo = "-inf" if p.low is None else f"{p.low:g}"
    hi = "inf" if p.high is None else f"{p.high:g}"
    return f"{left}{lo}, {hi}{right}"


def unknown_name_error(name: str, valid: list[str], what: str = "parameter") -> ConfigError:
    close = difflib.get_close_matches(name, valid, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return ConfigError(f"unknown {what} {name!r}.{hint} Valid {what}s: {', '.join(valid)}")


def validate(values: dict[str, Any], *, complete: bool = True, origin: str = "profile") -> dict[str, Any]:
    """Check names, types and choices; with ``complete`` every schema key must be present."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name in RUN_KEYS:
            out[name] = value
            continue
        if name not in SCHEMA:
            raise unknown_name_error(name, sorted(SCHEMA))
        out[name] = _check_type(name, value, SCHEMA[name])
    if complete:
        missing = [k for k in SCHEMA if k not in values]
        if missing:
            raise ConfigError(f"{origin} does not set {', '.join(missing)}; every profile sets every parameter")
    return out


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """``["models=[\"resnet50\"]", "n_images=200"]`` -> dict; values are read as YAML."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"override {pair!r} is not key=value (e.g. -p n_images=20)")
        key, raw = pair.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise ConfigError(f"override {pair!r}: value is not valid YAML ({err})") from None
    return out


def load_profile(name: str = DEFAULT_PROFILE, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load ``params/<name>.yaml``, apply overrides, validate everything."""
    path = PARAMS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise unknown_name_error(name, profile_names(), what="profile")
    with open(path) as fh:
        values = yaml.safe_load(fh) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a mapping of parameter: value")
    params = validate(values, origin=f"profile {name!r} ({path})")
    params.update(validate(overrides or {}, complete=False))
    params["profile"] = name
    return params


def collect(namespace: dict[str, Any]) -> dict[str, Any]:
    """Parameters for a chapter: schema keys found in ``namespace`` (the notebook's globals,
    i.e. its parameters cell plus what papermill injected) on top of the profile named
    there (demo when run interactively), validated."""
    name = namespace.get("profile") or DEFAULT_PROFILE
    found = {k: namespace[k] for k in SCHEMA if k in namespace}
    params = load_profile(name, found)
    params["run_dir"] = namespace.get("run_dir")
    return params


def resolve_path(path: str | os.PathLike) -> Path:
    """Relative paths in profiles are relative to the repository root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p


def pick_device(preference: str = "auto") -> str:
    """``auto`` -> cuda when a GPU is visible, else cpu; ``cuda`` without one is an error."""
    import torch

    if preference == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' was asked for but no CUDA GPU is visible; use -p device=auto or cpu")
    return preference
