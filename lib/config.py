"""Profiles: every chapter parameter, validated, with repository paths and device choice.

A profile (``params/<name>.yaml``) sets every parameter in :data:`SCHEMA`. Papermill
injects whatever it is given, silently, so validation happens here, before any work: an
unknown or misspelled name, a wrong type, a value outside its choices or range, an empty
list, or a broken rule between parameters (:func:`check_rules`) is an error that says
what is valid and how to fix it.
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
    # Lists and strings: the fewest items (characters) accepted, e.g. 1 = non-empty.
    min_items: int | None = None


MIN_PERMUTATIONS = 99  # p-values down to 0.01
MIN_BOOTSTRAP = 20  # fewer resamples cannot place percentile CI bounds
MIN_IMAGE_SIDE = 257  # lib.stimuli.saliency.MIN_SIZE (a test keeps the two equal; importing it costs torch)
NSD_SUBJECTS = range(1, 9)


def _p(types, help, **kw) -> Param:
    return Param(types if isinstance(types, tuple) else (types,), help, **kw)


SCHEMA: dict[str, Param] = {
    # --- run-wide
    "seed": _p(int, "seed for every random choice (placements, random weights, permutations)", low=0),
    "device": _p(str, "compute device", choices=("auto", "cpu", "cuda")),
    "cache_dir": _p(str, "artifact cache folder (relative paths are relative to the repo)", min_items=1),
    "data_dir": _p(str, "folder holding downloaded data (COCO, NSD, Algonauts)", min_items=1),
    "force": _p(bool, "recompute every cached artifact"),
    # --- stimuli
    "source": _p(str, "where base images and captions come from", choices=("demo", "coco_nsd", "folder")),
    "folder_path": _p(str, "image folder (with captions.yaml) for source=folder", nullable=True),
    "n_images": _p(int, "number of base images to consider (null = all)", nullable=True, low=3),
    "nsd_shared1000": _p(bool, "coco_nsd: keep only the NSD shared-1000 images"),
    "caption_model": _p(str, "sentence-transformers model for caption embeddings", min_items=1),
    "selection_mode": _p(str, "how conditions are chosen", choices=("threshold", "quantile")),
    "sem_similar_max": _p(float, "threshold mode: semantic distance below which a distractor is similar",
                          low=0, high=2),
    "sem_dissimilar_min": _p(float, "threshold mode: semantic distance above which it is dissimilar", low=0, high=2),
    "sal_little_max": _p(float, "threshold mode: saliency change below which it is 'little'", low=0),
    "sal_alot_min": _p(float, "threshold mode: saliency change above which it is 'a lot'", low=0),
    "quantile_low": _p(float, "quantile mode: lower quantile (similar / little)", low=0, high=1, low_open=True,
                       high_open=True),
    "quantile_high": _p(float, "quantile mode: upper quantile (dissimilar / a lot)", low=0, high=1, low_open=True,
                        high_open=True),
    "n_distractors": _p(int, "candidate distractor images tried per base image (null = all)", nullable=True, low=1),
    "n_placements": _p(int, "candidate paste placements per distractor image", low=1),
    "swap_rb": _p(bool, "reproduce the original analysis's R/B channel swap in saliency"),
    "saliency_batch_size": _p(int, "images per batched saliency computation", low=1),
    # --- models and extraction
    "models": _p(list, "networks to analyse (registry names, timm:<name>, open_clip:<arch>:<tag>, "
                       "torchvision:<name>, file:<model>@<checkpoint>)", item_type=str, min_items=1),
    "weights": _p(str, "weights policy", choices=("auto", "pretrained", "random")),
    "preprocessing": _p(str, "image preprocessing", choices=("clip", "native")),
    "layers": _p(str, "layer set: all, blocks, or a regular expression over layer names", min_items=1),
    "metric": _p(str, "RDM distance", choices=("cosine", "correlation")),
    "batch_size": _p(int, "images per forward pass (null = all at once)", nullable=True, low=1),
    "memory_budget_gb": _p((int, float), "memory for held activations, in GB", low=0, low_open=True),
    # --- inference
    "n_permutations": _p(int, "permutations for RSA p-values (99 or more: the smallest p-value is "
                              "1/(n_permutations+1))", low=MIN_PERMUTATIONS),
    "n_bootstrap": _p(int, "bootstrap resamples for confidence intervals", low=MIN_BOOTSTRAP),
    "alpha": _p(float, "significance level (FDR across layers)", low=0, high=1, low_open=True, high_open=True),
    # --- brain
    "brain_source": _p(str, "fMRI data", choices=("synthetic", "algonauts")),
    "algonauts_dir": _p(str, "Algonauts 2023 challenge data folder (subjXX/ inside)", min_items=1),
    "subjects": _p(list, "NSD subjects to use (distinct ids 1-8, at least 2)", item_type=int, min_items=2),
    "roi_rdm_mode": _p(str, "how hemispheres combine into an ROI RDM", choices=("mean", "concat")),
    "noise_ceiling": _p(str, "noise-ceiling method", choices=("loso", "bootstrap")),
    "synthetic_noise": _p(float, "synthetic subjects: noise standard deviation relative to signal", low=0),
    # --- replication choices (issue 9)
    "distractor_pool": _p(str, "where candidate distractors come from: coco_train2017 = every COCO train2017 "
                          "image, uncropped, in the annotation file's order (the original; coco_nsd only); "
                          "bases = the other base images of the source", choices=("coco_train2017", "bases")),
    "paste_geometry": _p(str, "distractor size and resampling: original = INTER_LINEAR, floored height "
                         "int(sqrt(int(0.1*area)/aspect)) and width int(h*aspect), a candidate that does not "
                         "fit is skipped; fitted = rounded sizes, shrunk to fit, area/cubic resampling",
                         choices=("original", "fitted")),
    "thresholds_caption_model": _p(str, "caption model the absolute semantic thresholds (sem_*) were set in "
                                   "(the paper's 0.32 / 0.92: use-v4)"),
    "thresholds_swap_rb": _p(bool, "colour order the absolute saliency thresholds (sal_*) were set in: true = "
                             "R/B-swapped maps (the paper's 0.019 / 0.24)"),
    "saliency_threshold_transfer": _p(str, "threshold mode, colour order differing from the thresholds': "
                                      "quantile = the fractions of candidates below/above the thresholds on "
                                      "maps in the thresholds' colour order define the cuts on this run's "
                                      "maps; none = such a run is an error", choices=("none", "quantile")),
    "max_distractor_reuse": _p(int, "most base images one distractor may serve within one condition (their "
                               "images share that patch, which pulls them together in the condition's RDM); "
                               "null = no cap (the original)", nullable=True, low=1),
    "layer_rule": _p(str, "which module calls are layers: every_call = each call of a module (this project); "
                     "original = registration order, a module called several times kept once, at its last "
                     "call (as the original hooked)", choices=("every_call", "original")),
    "search_workers": _p(int, "parallel workers of the distractor search over base images (null = all cores)",
                         nullable=True, low=1),
    "roi_policy": _p(str, "original = an ROI is dropped when any subject lacks vertices in either hemisphere; "
                     "per_hemisphere = a one-hemisphere ROI uses that hemisphere, skipped only where both "
                     "are empty", choices=("original", "per_hemisphere")),
    "summary_rule": _p(str, "layer summaries: original = block means (± SEM over layers, ddof 1) over the "
                       "layers inside bottlenecks / transformer blocks, |mean dRSA| per block, the layer-filtered "
                       "panels, brain SEM over subjects with ddof 0 (lib.summaries); all_layers = every layer",
                       choices=("original", "all_layers")),
    "brain_saliency_crop": _p(str, "images of the brain-side saliency maps: uncropped COCO images (the "
                              "original) or the NSD crops the subjects saw", choices=("uncropped", "cropped")),

    # --- statistics (issue 11)

    # --- training dynamics (issue 13)
    "checkpoints": _p(str, "training dynamics: folder or glob of one run's checkpoint files "
                      "(null = train the demo's miniature series)", nullable=True),
    "architecture": _p(str, "training dynamics: network the checkpoints belong to (demo_resnet, or a "
                       "model name such as torchvision:resnet50 or timm:resnet18)"),
    "checkpoint_regex": _p(str, "training dynamics: regex with named groups epoch, batch and/or step that reads "
                           "the training time from checkpoint names (null = built-in names)", nullable=True),
    "train_steps": _p(int, "demo training series: optimizer steps", low=1, high=100_000),
    "n_checkpoints": _p(int, "demo training series: checkpoints saved, log-spaced, including the initial one",
                        low=2, high=200),

    # --- scale-out and architecture (issue 12)
    "references": _p(list, "reference representations to compare layers with (lib.references registry: saliency, "
                           "semantic, clip_text)", item_type=str, min_items=2),
    "cluster": _p(str, "where heavy steps run: null = in this process, local = a LocalCluster on this machine, "
                       "or a Dask scheduler address tcp://HOST:8786 (workers must share cache_dir)", nullable=True),

    # --- reliability (issue 14)
    "max_image_side": _p(int, "folder images whose longer side exceeds this are downscaled on load "
                              f"(bounds memory; at least {MIN_IMAGE_SIDE}, the saliency pyramid's minimum)",
                         low=MIN_IMAGE_SIDE),

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
        raise ConfigError(f"parameter {name!r} must be in {_range_text(p)}, got {value!r} ({p.help}). "
                          f"{_suggest(name)}")
    if p.min_items is not None and isinstance(value, (list, str)) and len(value) < p.min_items:
        what = "an empty" if not value else f"only {len(value)} items in the"
        need = "a non-empty value" if p.min_items == 1 else f"at least {p.min_items} items"
        raise ConfigError(f"parameter {name!r} needs {need}, got {what} {type(value).__name__} {value!r} "
                          f"({p.help}). {_suggest(name)}")
    return value


def _suggest(name: str) -> str:
    """How to fix a bad value: the override syntax and the demo profile's value."""
    demo = PARAMS_DIR / f"{DEFAULT_PROFILE}.yaml"
    try:
        example = (yaml.safe_load(demo.read_text()) or {}).get(name)
    except (OSError, yaml.YAMLError):
        example = None
    shown = yaml.safe_dump(example, default_flow_style=True).strip().removesuffix("...").strip()
    hint = f" (the {DEFAULT_PROFILE} profile uses {shown})" if example is not None else ""
    return f"Fix it in the profile or with -p {name}=<value>{hint}."


def _rule(ok: bool, message: str) -> str | None:
    return None if ok else message


def check_rules(params: dict[str, Any]) -> None:
    """Rules that relate parameters to each other, checked once the profile and the
    overrides are merged; the first broken rule is a :class:`ConfigError`."""
    import re

    g = params.get
    problems = [
        _rule(g("quantile_low", 0) < g("quantile_high", 1),
              f"quantile_low ({g('quantile_low')}) must be below quantile_high ({g('quantile_high')}); "
              "e.g. -p quantile_low=0.25 -p quantile_high=0.75"),
        _rule(g("sem_similar_max", 0) < g("sem_dissimilar_min", 1),
              f"sem_similar_max ({g('sem_similar_max')}) must be below sem_dissimilar_min "
              f"({g('sem_dissimilar_min')}): a distractor cannot be both similar and dissimilar"),
        _rule(g("sal_little_max", 0) < g("sal_alot_min", 1),
              f"sal_little_max ({g('sal_little_max')}) must be below sal_alot_min ({g('sal_alot_min')})"),
        _rule("n_permutations" not in params or "alpha" not in params
              or 1.0 / (g("n_permutations") + 1) < g("alpha"),
              f"with n_permutations={g('n_permutations')} the smallest possible p-value, 1/(n_permutations+1), is "
              f"not below alpha={g('alpha')}: nothing could ever be significant; raise n_permutations"),
        _rule(len(set(g("subjects", []))) == len(g("subjects", [])),
              f"subjects {g('subjects')} lists a subject twice; list each NSD subject once"),
        _rule(all(s in NSD_SUBJECTS for s in g("subjects", [])),
              f"subjects {g('subjects')}: NSD subjects are numbered 1 to 8"),
        _rule(len(set(g("models", []))) == len(g("models", [])),
              f"models {g('models')} lists a model twice; list each once"),
        _rule({"saliency", "semantic"} <= set(g("references", ["saliency", "semantic"])),
              f"references {g('references')} must include saliency and semantic (the chapters compare "
              "with both); add others after them, e.g. -p references='[saliency, semantic, clip_text]'"),
        _rule(g("source") != "folder" or bool(g("folder_path")),
              "source=folder needs a folder: -p folder_path=<folder with images and captions.yaml>"),
    ]
    layers = g("layers")
    if layers not in (None, "all", "blocks"):
        try:
            re.compile(layers)
        except re.error as err:
            problems.append(f"layers={layers!r} is neither all, blocks nor a valid regular expression ({err})")
    broken = [m for m in problems if m]
    if broken:
        raise ConfigError("; ".join(broken))


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
    check_rules(params)
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
