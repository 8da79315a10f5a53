"""Prose and tables of the brain chapter, computed from a run's results."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lib.brain.analysis import pooled_subject_contrast, roi_subject_tests
from lib.brain.pipeline import BrainResults
from lib.verdicts import SUPPORTED, verdict

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
    """Per ROI: saliency and semantic RSA (mean, SEM over subjects), each also as a fraction
    of the ROI's lower noise ceiling, and the ceiling itself."""
    wide = r.ref_summary.pivot_table(index=["roi", "family"], columns="reference", values=["mean", "sem"], sort=False)
    wide.columns = [f"{ref} {stat}" for stat, ref in wide.columns]
    nc = r.nc.set_index(["roi", "family"])[["n_subjects", "nc_lower", "nc_upper"]]
    out = wide.join(nc)
    for ref in dict.fromkeys(r.ref_summary["reference"]):
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"{ref} / nc_lower"] = np.where(out["nc_lower"] > 0, out[f"{ref} mean"] / out["nc_lower"], np.nan)
    return out.reset_index()


def roi_tests(r: BrainResults, alpha: float = 0.05) -> pd.DataFrame:
    """Every ROI's RSA with each reference (and saliency − semantic) tested across subjects."""
    return roi_subject_tests(r.ref_per_subject, r.nc, alpha)


def _untestable(r: BrainResults) -> str | None:
    return "synthetic fMRI" if r.bs.synthetic else None


def _contrast_row(r: BrainResults, claim: str, paper: str, rois, a: str, b: str, label: str, alpha: float) -> dict:
    c = pooled_subject_contrast(r.ref_per_subject, rois, a, b, alpha)
    status = verdict(c["estimate"], c["ci_low"], c["ci_high"], expected_sign=+1, untestable=_untestable(r))
    text = (f"{label}: {a} − {b} = {c['estimate']:.3f}, 95% CI [{c['ci_low']:.3f}, {c['ci_high']:.3f}], "
            f"sign-flip p = {c['p']:.3g} over {c['n_subjects']} subjects")
    return dict(claim=claim, paper=paper, this_run=text, status=status)


def claims(r: BrainResults, alpha: float = 0.05) -> pd.DataFrame:
    """The paper's brain claims, checked on this run. ROI claims are tested across subjects
    (per-subject differences, t interval, exact sign-flip p); link claims across networks
    (see :func:`lib.brain.analysis.cross_layer_link`). Every status comes from
    :func:`lib.verdicts.verdict`; on synthetic subjects none can be "supported" (they test
    the analysis, not the brain: see the planted-recovery check). ``holds`` is
    status == "supported", kept for pages that count them."""
    s = r.ref_summary
    high = list(s.loc[s.family.isin(HIGH_FAMILIES), "roi"].unique()) + list(HIGH_STREAMS)
    rows = [
        _contrast_row(r, "Early visual ROIs share the saliency structure more than the semantic one",
                      "saliency RSA highest in early visual cortex", EARLY, "saliency", "semantic", "V1–V3 + early",
                      alpha),
        _contrast_row(r, "Category-selective and ventral/lateral ROIs share the semantic structure more",
                      "semantic RSA highest in higher visual cortex", high, "semantic", "saliency",
                      "floc ROIs + ventral, lateral", alpha),
    ]
    link = r.link.set_index("reference") if len(r.link) else pd.DataFrame()
    for ref, claim, paper in (("semantic", "A layer's semantic RSA tracks its brain RSA (across networks)", "r ≈ 0.83"),
                              ("saliency", "Saliency RSA relates to brain RSA only nonlinearly (weaker than semantics)",
                               "r ≈ 0.64, nonlinear")):
        if ref not in link.index:
            continue
        row = link.loc[ref]
        reason = row.get("reason", "")
        untestable = reason if isinstance(reason, str) and reason else _untestable(r)
        if ref == "semantic":
            status = verdict(row.r, row.ci_low, row.ci_high, expected_sign=+1, untestable=untestable)
            text = (f"pooled over {int(row.n_networks)} networks: r = {row.r:.2f}, 95% CI [{row.ci_low:.2f}, "
                    f"{row.ci_high:.2f}], sign-flip p = {row.p:.3g}")
        else:
            status = verdict(row.lono_gain, row.lono_gain_ci_low, row.lono_gain_ci_high, expected_sign=+1,
                             untestable=untestable)
            text = (f"pooled r = {row.r:.2f} [{row.ci_low:.2f}, {row.ci_high:.2f}]; leave-one-network-out gain of "
                    f"the quadratic over the linear fit {row.lono_gain:.3f} [{row.lono_gain_ci_low:.3f}, "
                    f"{row.lono_gain_ci_high:.3f}]")
        if reason:
            text = f"{reason}; layer-level numbers only (in the table)" if not np.isfinite(row.r) else text
        rows.append(dict(claim=claim, paper=paper, this_run=text, status=status))
    out = pd.DataFrame(rows, columns=["claim", "paper", "this_run", "status"])
    out["holds"] = out["status"] == SUPPORTED
    return out


def link_markdown(r: BrainResults) -> str:
    """One paragraph on the network-level link: the pooled numbers or why there are none."""
    if r.link.empty:
        return "No layer has both a reference RSA and a brain RSA: there is no link to test."
    parts = []
    for _, row in r.link.iterrows():
        nets = r.fits[row.reference]["networks"] if row.reference in r.fits else pd.DataFrame()
        per = ", ".join(f"{n.network} {n.r:.2f}" for n in nets.itertuples()) if len(nets) else "none"
        if row.reason:
            parts.append(f"**{row.reference}**: {row.reason}; the per-network correlations are {per}.")
        else:
            parts.append(f"**{row.reference}**: pooled r = {row.r:.2f} (95 % CI {row.ci_low:.2f} to {row.ci_high:.2f},"
                         f" sign-flip p = {row.p:.3g}, smallest possible {row.p_floor:.3g}) over {int(row.n_networks)}"
                         f" networks ({per}); the quadratic's leave-one-network-out gain is {row.lono_gain:.3f}"
                         f" ({row.lono_gain_ci_low:.3f} to {row.lono_gain_ci_high:.3f}).")
    if r.bs.synthetic:
        parts.append("The subjects are synthetic, so these numbers check the analysis, not the brain: the verdicts "
                     "say *not testable here (synthetic fMRI)*.")
    return " ".join(parts)


def recovery_markdown(r: BrainResults) -> str:
    rec = r.recovery.dropna(subset=["recovered_sal_share", "planted_sal_share"])
    big = rec[rec.family.isin(["streams", "All vertices"])]
    r_all = np.corrcoef(rec.planted_sal_share, rec.recovered_sal_share)[0, 1] if len(rec) > 2 else np.nan
    r_big = np.corrcoef(big.planted_sal_share, big.recovered_sal_share)[0, 1] if len(big) > 2 else np.nan
    err = float(np.median(np.abs(rec.planted_sal_share - rec.recovered_sal_share))) if len(rec) else np.nan
    return (f"Across the {len(rec)} ROIs, the recovered saliency share correlates with the planted one at "
            f"r = {r_all:.2f} (streams and All vertices: r = {r_big:.2f}); the median absolute error is "
            f"{err:.2f}. Small ROIs (few vertices) scatter most, as they should: their RDMs are the noisiest.")
