"""Prose and tables of the brain chapter, computed from a run's results."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lib.brain.pipeline import BrainResults

EARLY = ("V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "early")
HIGH_FAMILIES = ("floc-bodies", "floc-faces", "floc-places", "floc-words")
HIGH_STREAMS = ("ventral", "lateral")


def source_box(r: BrainResults, params: dict[str, Any]):
    """The warning shown at the top of the chapter when the subjects are synthetic (and recorded)."""
    from lib import provenance

    if not r.bs.synthetic:
        provenance.record(params, "data", f"Algonauts 2023 fMRI, subjects {r.bs.data.subject_ids}",
                          root=str(r.bs.data.root), images=len(r.bs.nsd_ids))
        return None
    return provenance.warn(
        params, "synthetic_data",
        f"The fMRI subjects of this run are synthetic ({len(r.bs.data.subjects)} subjects written in the "
        "Algonauts 2023 layout for this run's Baseline images). Each ROI's responses were planted as a known mix "
        "of the saliency and semantic structure plus an ROI-specific structure and subject noise. The chapter "
        "therefore shows that the analysis recovers what was planted; it says nothing about the human brain. "
        "Run with -p brain_source=algonauts (see python -m lib doctor --profile paper) for the real data.",
        subjects=r.bs.data.subject_ids)


def weights_box(params: dict[str, Any], weights: dict[str, str]):
    """Warning when any network ran with random weights (``weights``: model -> weights the
    engine used, e.g. ``BrainResults.weights``)."""
    from lib import provenance

    random = sorted(m for m, w in weights.items() if w == "random")
    if not random:
        return None
    return provenance.warn(params, "random_weights",
                           f"These networks ran with seeded random weights (no pretrained weights were found "
                           f"locally): {', '.join(random)}. Their layer RSA values say nothing about trained "
                           "networks. Fetch weights with python -m lib fetch weights.", models=random)


def data_markdown(r: BrainResults) -> str:
    kept = r.roi.rois
    notes = r.roi.notes
    dropped = sorted(set(notes.loc[notes.status == "dropped", "roi"]))
    one = notes[notes.status == "one hemisphere"]
    partial = kept[kept.n_subjects < len(r.bs.data.subjects)]
    parts = [
        f"**{len(r.bs.data.subjects)} subjects** ({', '.join(map(str, r.bs.data.subject_ids))}), "
        f"**{len(r.bs.nsd_ids)} images** seen by all of them, **{len(kept)} ROIs** kept "
        f"(of {len(kept) + len(dropped)} including \"All vertices\"); ROI RDMs: cosine, "
        f"{'per hemisphere then averaged' if r.roi.mode == 'mean' else 'over both hemispheres together'}.",
    ]
    if dropped:
        parts.append(f"Dropped (fewer than 2 subjects have vertices there): {', '.join(dropped)}.")
    if len(partial):
        parts.append("Analysed over fewer subjects: " + ", ".join(
            f"{row.roi} ({row.n_subjects})" for row in partial.itertuples()) + ".")
    if len(one):
        summary = one.groupby("roi").agg(n=("subject", "size"), hemi=("detail", lambda d: d.iloc[0][5:7]))
        parts.append("One hemisphere only (its RDM used alone): " + ", ".join(
            f"{roi} ({row.hemi}, {row.n} subject{'s' if row.n > 1 else ''})" for roi, row in summary.iterrows()) + ".")
    return " ".join(parts)


def reference_table(r: BrainResults) -> pd.DataFrame:
    wide = r.ref_summary.pivot_table(index=["roi", "family"], columns="reference", values=["mean", "sem"], sort=False)
    wide.columns = [f"{ref} {stat}" for stat, ref in wide.columns]
    nc = r.nc.set_index(["roi", "family"])[["n_subjects", "nc_lower", "nc_upper"]]
    return wide.join(nc).reset_index()


def _mean(summary: pd.DataFrame, rois, ref: str) -> float:
    d = summary[(summary.roi.isin(rois)) & (summary.reference == ref)]
    return float(d["mean"].mean()) if len(d) else float("nan")


def claims(r: BrainResults) -> pd.DataFrame:
    """The paper's brain claims, checked on this run."""
    s = r.ref_summary
    high = list(s.loc[s.family.isin(HIGH_FAMILIES), "roi"].unique()) + list(HIGH_STREAMS)
    rows = []
    e_sal, e_sem = _mean(s, EARLY, "saliency"), _mean(s, EARLY, "semantic")
    rows.append(dict(claim="Early visual ROIs share the saliency structure more than the semantic one",
                     paper="saliency RSA highest in early visual cortex",
                     this_run=f"V1–V3 + early: saliency {e_sal:.2f}, semantic {e_sem:.2f}", holds=e_sal > e_sem))
    h_sal, h_sem = _mean(s, high, "saliency"), _mean(s, high, "semantic")
    rows.append(dict(claim="Category-selective and ventral/lateral ROIs share the semantic structure more",
                     paper="semantic RSA highest in higher visual cortex",
                     this_run=f"floc ROIs + ventral, lateral: semantic {h_sem:.2f}, saliency {h_sal:.2f}",
                     holds=h_sem > h_sal))
    link = r.link.set_index("reference") if len(r.link) else pd.DataFrame()
    if "semantic" in link.index and np.isfinite(link.loc["semantic"].get("r", np.nan)):
        row = link.loc["semantic"]
        rows.append(dict(claim="A layer's semantic RSA tracks its brain RSA", paper="r ≈ 0.83",
                         this_run=f"r = {row.r:.2f}, 95% CI [{row.ci_low:.2f}, {row.ci_high:.2f}], "
                                  f"{int(row.n_layers)} layers", holds=bool(row.ci_low > 0)))
    if "saliency" in link.index and np.isfinite(link.loc["saliency"].get("r", np.nan)):
        row = link.loc["saliency"]
        rows.append(dict(claim="Saliency RSA relates to brain RSA only nonlinearly (weaker than semantics)",
                         paper="r ≈ 0.64, nonlinear",
                         this_run=f"r = {row.r:.2f} [{row.ci_low:.2f}, {row.ci_high:.2f}]; quadratic R² "
                                  f"{row.r2_quadratic:.2f} vs linear {row.r2_linear:.2f} "
                                  f"(p = {row.p_quadratic_term:.2g})",
                         holds=bool(row.p_quadratic_term < 0.05 and (
                             "semantic" not in link.index or row.r < link.loc["semantic", "r"]))))
    return pd.DataFrame(rows)


def recovery_markdown(r: BrainResults) -> str:
    rec = r.recovery.dropna(subset=["recovered_sal_share", "planted_sal_share"])
    big = rec[rec.family.isin(["streams", "All vertices"])]
    r_all = np.corrcoef(rec.planted_sal_share, rec.recovered_sal_share)[0, 1] if len(rec) > 2 else np.nan
    r_big = np.corrcoef(big.planted_sal_share, big.recovered_sal_share)[0, 1] if len(big) > 2 else np.nan
    err = float(np.median(np.abs(rec.planted_sal_share - rec.recovered_sal_share))) if len(rec) else np.nan
    return (f"Across the {len(rec)} ROIs, the recovered saliency share correlates with the planted one at "
            f"r = {r_all:.2f} (streams and All vertices: r = {r_big:.2f}); the median absolute error is "
            f"{err:.2f}. Small ROIs (few vertices) scatter most, as they should: their RDMs are the noisiest.")
