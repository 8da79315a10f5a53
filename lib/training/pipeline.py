"""The chapter's one call: the profile's checkpoint series -> layer RDMs of every checkpoint.

``checkpoints: null`` trains the demo's miniature series (``lib.training.demo``) on the
stimulus set's photographs; a folder or glob reads a user's own series with
``lib.checkpoints.find_checkpoints`` for the network named by ``architecture``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from lib import doctor
from lib.checkpoints import CheckpointError, find_checkpoints
from lib.training import demo
from lib.training.series import SeriesRDMs, series_rdms


@dataclass
class TrainingRun:
    """What the chapter shows: the series' RDMs and, for the demo, its training record."""

    series: SeriesRDMs
    is_demo: bool
    record: dict[str, Any] | None  # demo training: losses, steps per epoch, seconds


def demo_spec(params: dict[str, Any], images_key: str) -> demo.TrainingSpec:
    return demo.TrainingSpec(images_key=images_key, train_steps=params["train_steps"],
                             n_checkpoints=params["n_checkpoints"], seed=params["seed"])


def series_location(params: dict[str, Any]) -> str:
    """The ``checkpoints`` folder or glob; relative ones are relative to the repository,
    like every path in a profile."""
    from lib.config import resolve_path

    return str(resolve_path(params["checkpoints"]))


@doctor.requirement
def _series_checks(params: dict[str, Any]) -> Iterable[doctor.Check]:
    """``python -m lib doctor``: the checkpoint series is there and its names are understood."""
    if params.get("checkpoints") is None:
        yield doctor.Check("training series", True, "the demo trains its own miniature series")
        return
    try:
        found = find_checkpoints(series_location(params), params.get("checkpoint_regex"), hash_files=False)
    except CheckpointError as err:
        yield doctor.Check("training series", False, str(err), "fix the checkpoints / checkpoint_regex parameters")
        return
    yield doctor.Check("training series", True,
                       f"{len(found)} checkpoints of {params['architecture']}, {found[0].name} … {found[-1].name}")


def load_run(params: dict[str, Any], stimulus_set, store=None, progress: bool = False) -> TrainingRun:
    """The profile's series (trained here when ``checkpoints`` is null) and its RDMs on the
    stimulus set's Baseline images."""
    from lib.store import store_for

    store = store if store is not None else store_for(params)
    images = stimulus_set.images("Baseline")
    record = None
    if params["checkpoints"] is None:
        if params["architecture"] != demo.ARCHITECTURE:
            raise CheckpointError(
                f"architecture={params['architecture']!r} needs checkpoints: set -p checkpoints=<folder or glob> "
                f"of that network's checkpoint files, or leave architecture={demo.ARCHITECTURE} to train the demo "
                f"series")
        spec = demo_spec(params, stimulus_set.cache_key)
        folder, record = demo.demo_series(images, stimulus_set.embeddings, spec, store.root, progress=progress)
        checkpoints = find_checkpoints(folder, steps_per_epoch=record["steps_per_epoch"])
    else:
        checkpoints = find_checkpoints(series_location(params), params["checkpoint_regex"])
    series = series_rdms(params["architecture"], checkpoints, images, images_key=f"{stimulus_set.cache_key}/Baseline",
                         ids=list(stimulus_set.ids), params=params, store=store, progress=progress)
    return TrainingRun(series, params["checkpoints"] is None, record)
