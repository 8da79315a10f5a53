"""RSA across training: depth × time tables, trajectories with bootstrap CIs, verdicts.

The two measures the original's training-dynamics analysis is about:

- *early-layer saliency RSA*: the mean Spearman ρ with the saliency reference over the
  layers in the first fifth of the network (relative depth ≤ 0.2);
- *last-layer semantic RSA*: ρ of the deepest hooked layer with the semantic reference.

CIs are percentile intervals of a stimulus bootstrap (``lib.inference``); the same
resamples serve every checkpoint, so a change between two checkpoints gets a paired CI.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd
import rsatoolbox

from lib import inference as inf
from lib import verdicts
from lib.checkpoints import (Checkpoint, TrainingTime, parse_training_time, steps_per_epoch_from,
                             training_order)
from lib.rsa import check_same_stimuli, spearman_matrix
from lib.training.series import SeriesRDMs

EARLY_MAX_REL_DEPTH = 0.2
EARLY = "early-layer saliency RSA"
LAST = "last-layer semantic RSA"
MEASURES = {EARLY: "saliency", LAST: "semantic"}
PUBLISHED_LABEL = "published (original ResNet-50 training run, original stimuli)"


def run_label(architecture: str, n_images: int, demo: bool) -> str:
    """Legend label of this run's series."""
    what = "demo miniature, trained here" if demo else "your checkpoints"
    return f"this run ({architecture}, {what}, {n_images} images)"


def _time_columns(ck: Checkpoint | None = None, **kw) -> dict:
    if ck is not None:
        return {"checkpoint": ck.name, "time": ck.time.label(), "kind": ck.time.kind, "step": ck.step,
                "epochs": ck.epochs}
    return kw


def rsa_over_training(series: SeriesRDMs, references: Mapping[str, rsatoolbox.rdm.RDMs]) -> pd.DataFrame:
    """Spearman ρ of every layer of every checkpoint with each reference (tidy table:
    checkpoint, time, step, epochs, order, layer, depth, rel_depth, reference, rho)."""
    ref_vecs = np.vstack([r.get_vectors() for r in references.values()])
    frames = []
    for order, (ck, rdms) in enumerate(zip(series.checkpoints, series.rdms)):
        for name, ref in references.items():
            check_same_stimuli(rdms, ref, f"layer RDMs of {ck.name}", f"reference {name!r}")
        rho = spearman_matrix(rdms.get_vectors(), ref_vecs)
        desc = rdms.rdm_descriptors
        for j, name in enumerate(references):
            frames.append(pd.DataFrame({**_time_columns(ck), "order": order, "layer": desc["layer"],
                                        "depth": desc["depth"], "rel_depth": desc["rel_depth"],
                                        "reference": name, "rho": rho[:, j]}))
    return pd.concat(frames, ignore_index=True)


@dataclass
class Trajectories:
    """The two measures per checkpoint, with their bootstrap draws (paired across checkpoints)."""

    table: pd.DataFrame  # checkpoint, time, step, epochs, order, measure, rho, ci_low, ci_high
    draws: dict[str, np.ndarray]  # measure -> (n_checkpoints, n_bootstrap)
    checkpoints: list[Checkpoint]

    def change(self, measure: str, start: int, end: int, level: float = 0.95) -> tuple[float, float, float]:
        """Estimate and paired-bootstrap CI of measure[end] − measure[start] (checkpoint positions)."""
        rho = self.table[self.table["measure"] == measure].sort_values("order")["rho"].to_numpy()
        d = self.draws[measure][end] - self.draws[measure][start]
        lo, hi = inf.percentile_ci(d[:, None], level)
        return float(rho[end] - rho[start]), float(lo[0]), float(hi[0])


def _layer_rows(rel_depth: np.ndarray, measure: str) -> np.ndarray:
    if measure == EARLY:
        return np.flatnonzero(rel_depth <= EARLY_MAX_REL_DEPTH + 1e-9)
    return np.array([int(np.argmax(rel_depth))])


def trajectories(series: SeriesRDMs, references: Mapping[str, rsatoolbox.rdm.RDMs], *, n_bootstrap: int,
                 seed: int, level: float = 0.95) -> Trajectories:
    """Early-layer saliency and last-layer semantic RSA of each checkpoint with stimulus-
    bootstrap CIs (the same resamples for every checkpoint)."""
    n = series.rdms[0].n_cond
    counts = inf.bootstrap_counts(n, n_bootstrap, seed + 1)
    rows, draws = [], {m: [] for m in MEASURES}
    for order, (ck, rdms) in enumerate(zip(series.checkpoints, series.rdms)):
        rel = np.asarray(rdms.rdm_descriptors["rel_depth"], float)
        vecs = rdms.get_vectors()
        for measure, ref_name in MEASURES.items():
            ref = references[ref_name]
            check_same_stimuli(rdms, ref, f"layer RDMs of {ck.name}", f"reference {ref_name!r}")
            sel = _layer_rows(rel, measure)
            rho = float(np.nanmean(spearman_matrix(vecs[sel], ref.get_vectors())))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a resample leaving a layer constant
                boot = np.nanmean(inf.bootstrap_spearman(vecs[sel], ref.get_vectors(), counts)[:, :, 0], axis=1)
            lo, hi = inf.percentile_ci(boot[:, None], level)
            draws[measure].append(boot)
            rows.append({**_time_columns(ck), "order": order, "measure": measure, "reference": ref_name,
                         "n_layers": len(sel), "rho": rho, "ci_low": float(lo[0]), "ci_high": float(hi[0])})
    return Trajectories(pd.DataFrame(rows), {m: np.vstack(v) for m, v in draws.items()}, list(series.checkpoints))


# ----------------------------------------------------------------------------- published


def published_table() -> pd.DataFrame:
    """The original's ResNet-50 series in this module's table layout (rho per layer,
    checkpoint times parsed from the original names; steps per epoch estimated from them)."""
    from lib.published import training_dynamics

    pub = training_dynamics()
    names = list(dict.fromkeys(pub["checkpoint"]))
    times: dict[str, TrainingTime] = {}
    for name in names:
        t = parse_training_time(name)
        if t is None:
            raise ValueError(f"published checkpoint name {name!r} is not understood by lib.checkpoints")
        times[name] = t
    spe = steps_per_epoch_from(list(times.values()))
    order = sorted(names, key=lambda c: training_order(times[c], spe))
    pos = {c: i for i, c in enumerate(order)}
    top = pub["layer_index"].max()
    return pd.DataFrame({
        "checkpoint": pub["checkpoint"], "time": [times[c].label() for c in pub["checkpoint"]],
        "kind": [times[c].kind for c in pub["checkpoint"]],
        "step": [times[c].global_step(spe) for c in pub["checkpoint"]],
        "epochs": [times[c].global_step(spe) / spe for c in pub["checkpoint"]],
        "order": pub["checkpoint"].map(pos),
        "layer": pub["layer"].str.replace("rn50_Baseline_module.", "", regex=False),
        "depth": pub["layer_index"], "rel_depth": pub["layer_index"] / top, "reference": pub["reference"],
        "rho": pub["rsa"].astype(float),
    }).sort_values(["order", "reference", "depth"], ignore_index=True)


def measures_from_table(table: pd.DataFrame) -> pd.DataFrame:
    """The two measures per checkpoint from a per-layer table (point values, no CI): how the
    published series, which comes without per-stimulus data, is summarised."""
    rows = []
    for (order, ck), g in table.groupby(["order", "checkpoint"], sort=True):
        head = g.iloc[0]
        for measure, ref in MEASURES.items():
            r = g[g["reference"] == ref]
            sel = _layer_rows(r["rel_depth"].to_numpy(), measure)
            rows.append({"checkpoint": ck, "time": head["time"], "kind": head["kind"], "step": head["step"],
                         "epochs": head["epochs"], "order": order, "measure": measure, "reference": ref,
                         "n_layers": len(sel), "rho": float(r["rho"].to_numpy()[sel].mean()),
                         "ci_low": np.nan, "ci_high": np.nan})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- verdicts


def _first_epoch_end(table: pd.DataFrame) -> int | None:
    """Position of the last checkpoint within the first epoch (after init), if any."""
    t = table.drop_duplicates("order").sort_values("order")
    inside = t[(t["epochs"] > 0) & (t["epochs"] <= 1.0 + 1e-9)]
    return int(inside["order"].iloc[-1]) if len(inside) else None


def _fmt(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:+.3f}"


def demo_caveat(record: dict) -> str:
    """Why the demo's miniature cannot test the claims (given as ``untestable``)."""
    return (f"miniature: {record['n_images']} photographs that are also the test images, an epoch of "
            f"{record['steps_per_epoch']} step{'s' if record['steps_per_epoch'] != 1 else ''}, trained to match "
            "these very captions")


def claims(run: Trajectories, published: pd.DataFrame, *, run_name: str = "this run",
           untestable: str | None = None) -> pd.DataFrame:
    """The two claims with this run's verdict (paired bootstrap CI of the change) and the
    published series' direction (point values only, so at most "direction as claimed").

    ``untestable`` (e.g. :func:`demo_caveat`) makes this run's status "not testable here
    (reason)"; the evidence column still shows the numbers."""
    rows = []
    t = run.table
    n_ck = t["order"].nunique()
    first_epoch = _first_epoch_end(t)
    pub_first = _first_epoch_end(published)
    specs = [
        ("saliency suppression emerges within the first epoch", EARLY, -1, first_epoch, pub_first,
         "end of the first epoch − first checkpoint"),
        ("semantic RSA rises with training", LAST, +1, n_ck - 1, published["order"].max(),
         "last checkpoint − first checkpoint"),
    ]
    for claim, measure, sign, end, pub_end, what in specs:
        if end is None or end == 0:
            status = verdicts.verdict(None, None, None, expected_sign=sign,
                                      untestable=untestable or "no checkpoint inside the first epoch")
            evidence = "the series has no checkpoint after the first one and within the first epoch"
        else:
            est, lo, hi = run.change(measure, 0, end)
            status = verdicts.verdict(est, lo, hi, expected_sign=sign, untestable=untestable)
            ck = t[(t["order"] == end)].iloc[0]
            evidence = (f"{measure}: Δρ = {_fmt(est)} [{_fmt(lo)}, {_fmt(hi)}] ({what}; {ck['checkpoint']}, "
                        f"{ck['time']})")
        p = published[published["measure"] == measure].set_index("order")["rho"]
        p_est = float(p.loc[pub_end] - p.loc[0]) if pub_end is not None else np.nan
        rows.append({"claim": claim, "expected": "decrease" if sign < 0 else "increase",
                     run_name: status, "evidence (this run)": evidence,
                     PUBLISHED_LABEL: verdicts.verdict(p_est, None, None, expected_sign=sign),
                     "evidence (published)": f"{measure}: Δρ = {_fmt(p_est)} (no CI: point values only)"})
    return pd.DataFrame(rows)


def describe_published(measures: pd.DataFrame) -> str:
    """A sentence of facts about the published trajectories (numbers read from the table)."""
    def series(measure: str) -> pd.DataFrame:
        return measures[measures["measure"] == measure].sort_values("order").reset_index(drop=True)

    sal, sem = series(EARLY), series(LAST)
    end0 = _first_epoch_end(sal)
    first = sal[(sal["epochs"] > 0) & (sal["epochs"] <= 1.0 + 1e-9)]
    low = first.loc[first["rho"].idxmin()] if len(first) else None
    negative = sal["rho"].to_numpy() < 0
    stays = next((i for i in range(len(sal)) if negative[i:].all()), None)
    parts = [f"early-layer saliency RSA starts at ρ = {sal['rho'].iloc[0]:.3f}"]
    if low is not None:
        parts.append(f"dips to {round(low['rho'], 3) + 0.0:.3f} within the first epoch ({low['checkpoint']}) "
                     f"and stands at "
                     f"{sal.loc[end0, 'rho']:.3f} at its end")
    if stays is not None:
        parts.append(f"is negative from {sal.loc[stays, 'checkpoint']} ({sal.loc[stays, 'time']}) on, ending at "
                     f"{sal['rho'].iloc[-1]:.3f}")
    text = ", ".join(parts) + ". "
    text += (f"Last-layer semantic RSA goes from {sem['rho'].iloc[0]:.3f} at initialisation to "
             f"{sem.loc[end0, 'rho']:.3f} at the end of the first epoch and {sem['rho'].iloc[-1]:.3f} after the last.")
    return text[0].upper() + text[1:]
