"""What a run used: weights, data, synthetic stand-ins. Recorded by chapters, shown by the
Reproducibility page, and warned about prominently wherever it matters.

Chapters run in separate kernels, so records go to ``<run_dir>/provenance.jsonl`` (one
JSON object a line, appended). Outside a build (``run_dir`` is None) nothing is written.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

KINDS = ("random_weights", "pretrained_weights", "synthetic_data", "data", "note")
WARNING_KINDS = ("random_weights", "synthetic_data")


def record(params: dict[str, Any], kind: str, message: str, **details: Any) -> None:
    """Append one provenance record for this run (no-op outside a build)."""
    if kind not in KINDS:
        raise ValueError(f"unknown provenance kind {kind!r}; one of {list(KINDS)}")
    run_dir = params.get("run_dir")
    if not run_dir:
        return
    path = Path(run_dir) / "provenance.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps({"kind": kind, "message": message, **details}, default=str) + "\n")


def read(run_dir: str | Path | None) -> list[dict[str, Any]]:
    """All records of a run, de-duplicated (chapters re-record what they share)."""
    if not run_dir:
        return []
    path = Path(run_dir) / "provenance.jsonl"
    if not path.is_file():
        return []
    seen, out = set(), []
    for line in path.read_text().splitlines():
        if line.strip() and line not in seen:
            seen.add(line)
            out.append(json.loads(line))
    return out


def admonition(message: str, kind: str = "warning", title: str | None = None):
    """An admonition box that renders in JupyterLab and in the built book alike."""
    from IPython.display import HTML

    title = title or kind.capitalize()
    body = html.escape(message).replace("\n\n", "</p><p>")
    return HTML(
        f'<div class="admonition {kind}"><p class="admonition-title">{html.escape(title)}</p>'
        f"<p>{body}</p></div>"
    )


def warn(params: dict[str, Any], kind: str, message: str, **details: Any):
    """Record a warning-worthy fact (random weights, synthetic data) and return its box."""
    record(params, kind, message, **details)
    return admonition(message, "warning", title="Random weights" if kind == "random_weights" else "Synthetic data")
