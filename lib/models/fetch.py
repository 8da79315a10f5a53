"""``python -m lib doctor`` checks and ``python -m lib fetch weights`` for model weights."""

from __future__ import annotations

from typing import Any, Iterable

from lib import doctor
from lib.models import weights as W
from lib.models.base import ModelError
from lib.models.registry import MODEL_NAMES, spec


@doctor.requirement
def weights_checks(params: dict[str, Any]) -> Iterable[doctor.Check]:
    policy = params.get("weights", "auto")
    for name in params.get("models", []):
        try:
            wf = W.weight_file(name)
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
                               f"for pretrained weights: {W.fetch_command([name])}")
        else:
            yield doctor.Check(f"weights {name}", False, "pretrained weights not in the local caches",
                               W.fetch_command([name]))


@doctor.fetcher("weights", "download pretrained weights into the HF/torch caches (--models a,b,...)")
def fetch_weights(params: dict[str, Any], models: str | list[str] | None = None, **_: Any) -> None:
    names = models if models else params.get("models", list(MODEL_NAMES))
    if isinstance(names, str):
        names = [names]
    names = [n.strip() for item in names for n in str(item).split(",") if n.strip()]
    for name in names:
        spec(name)
    missing = [n for n in names if not W.weight_file(n).local]
    if missing and not W.network_available():
        raise ModelError(f"cannot reach huggingface.co to download weights of {', '.join(missing)}; run "
                         f"'{W.fetch_command(missing)}' on a machine with internet and copy its "
                         f"~/.cache/huggingface (and ~/.cache/torch, ~/.cache/clip) here")
    for name in names:
        path = W.download_weights(name)
        print(f"{name}: {path}")
