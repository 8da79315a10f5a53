"""The claims dashboard: each of the paper's claims, the published value, this run's value
with its 95 % CI, and one status word from :mod:`lib.verdicts`.

Why here: the claims are tested in three chapters (Saliency, Semantics, Brain) that run in
separate kernels, but a reader wants them on one page. Each chapter computes its rows with
the functions below and saves them in the run folder (``<run_dir>/claims/<chapter>.json``);
the intro page, executed after every chapter, renders them. The published column is the
*same statistic* computed from the original's released numbers (``lib.published``), so the
two columns are comparable; the "how" column says what the statistic is.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from lib import published, verdicts
from lib.rsa import depth_bins
from lib.tables import fmt_ci, fmt_number

CONDITIONS_HIGH_SALIENCY = ("Salient", "Semantic_Salient")
CONDITIONS_LOW_SALIENCY = ("Control", "Semantic")
CONDITIONS_SEMANTIC = ("Semantic", "Semantic_Salient")


@dataclass(frozen=True)
class Claim:
    """What is claimed (sign of a statistic) and how the statistic is computed."""

    key: str
    text: str
    expected_sign: int
    how: str
    kind: str = "claim"  # "claim" | "design check" | "synthetic check"


CLAIMS: tuple[Claim, ...] = (
    Claim("resnet_gt_vit_saliency", "1. Supervised ResNets carry more saliency than supervised ViTs", +1,
          "Baseline saliency RSA averaged over each network's layers, mean over supervised ResNets − mean over "
          "supervised ViTs"),
    Claim("early_suppression", "2a. Saliency is suppressed in early layers (negative RSA)", -1,
          "saliency RSA (Baseline) over the first fifth of depth: per network and depth tenth the mean "
          "over layers, then over networks, then over the two tenths (CI: stimulus bootstrap)"),
    Claim("clip_deepens_suppression", "2b. CLIP deepens early saliency suppression in ResNets", -1,
          "saliency RSA averaged over the first half of depth, CLIP ResNets − supervised ResNets"),
    Claim("clip_semantics_resnet", "3a. CLIP raises semantic encoding in ResNets", +1,
          "semantic RSA averaged over the second half of depth, CLIP ResNets − supervised ResNets"),
    Claim("clip_semantics_vit", "3b. CLIP raises semantic encoding in ViTs", +1,
          "semantic RSA averaged over the second half of depth, CLIP ViTs − supervised ViTs"),
    Claim("semantics_tracks_brain", "4. A layer's semantic encoding tracks its similarity to the brain", +1,
          "per network, Pearson r over its layers of layer semantic RSA vs layer brain RSA (mean over ROIs "
          "except 'All vertices' and subjects), averaged over networks (CI: bootstrap over networks)"),
    Claim("saliency_design", "Salient distractors move saliency RSA more than the others", +1,
          "mean |ΔRSA| with the saliency reference over layers and networks, Salient & Semantic_Salient − "
          "Control & Semantic", kind="design check"),
    Claim("semantic_design", "Semantic distractors move semantic RSA more than Control", +1,
          "mean |ΔRSA| with the semantic reference over layers and networks, Semantic & Semantic_Salient − "
          "Control", kind="design check"),
    Claim("early_rois_saliency", "Saliency RSA is highest in early visual cortex", +1,
          "saliency RSA of ROI RDMs (mean over subjects), mean over early ROIs (V1–V3, 'early') − mean over "
          "higher ROIs (floc-*, 'ventral', 'lateral')", kind="brain"),
    Claim("high_rois_semantic", "Semantic RSA is highest in higher visual cortex", +1,
          "semantic RSA of ROI RDMs (mean over subjects), mean over higher ROIs (floc-*, 'ventral', "
          "'lateral') − mean over early ROIs (V1–V3, 'early')", kind="brain"),
)
CLAIM_BY_KEY = {c.key: c for c in CLAIMS}


@dataclass
class ClaimRow:
    """One claim as tested in this run."""

    key: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    status: str
    chapter: str
    note: str = ""

    @classmethod
    def judged(cls, key: str, estimate, ci_low, ci_high, chapter: str, *, untestable: str | None = None,
               note: str = "") -> "ClaimRow":
        c = CLAIM_BY_KEY[key]
        status = verdicts.verdict(_num(estimate), _num(ci_low), _num(ci_high), expected_sign=c.expected_sign,
                                  untestable=untestable)
        return cls(key, _num(estimate), _num(ci_low), _num(ci_high), status, chapter, note)


def _num(x) -> float | None:
    return None if x is None or not np.isfinite(float(x)) else float(x)


# ----------------------------------------------------------------------------- published values
def _published_layers() -> pd.DataFrame:
    t = published.with_rel_depth(published.layer_rsa())
    groups = t["model"].map(published.model_group)
    return t.assign(arch=groups.str[0], training=groups.str[1])


def _half_mean(t: pd.DataFrame, reference: str, half: int) -> pd.Series:
    """Per model: mean Baseline RSA with ``reference`` in depth half 0 (early) or 1 (late),
    binned exactly as :func:`lib.rsa.contrast` bins this run's layers."""
    b = t[(t["condition"] == "Baseline") & (t["reference"] == reference)]
    b = b[depth_bins(b["rel_depth"].to_numpy(), 2) == half]
    return b.groupby("model")["rsa"].mean()


def _early_fifth(t: pd.DataFrame, reference: str) -> float:
    """All networks' Baseline RSA over the first fifth of depth, binned and averaged exactly as
    :func:`lib.rsa.span_rsa` averages this run's layers (10 depth bins)."""
    b = t[(t["condition"] == "Baseline") & (t["reference"] == reference)]
    b = b.assign(bin=depth_bins(b["rel_depth"].to_numpy(), 10))
    per_bin = b.groupby(["model", "bin"])["rsa"].mean().groupby(level="bin").mean()
    return float(per_bin.loc[[0, 1]].mean())


def _group_diff(per_model: pd.Series, by: str, a: str, b: str, within: str | None = None) -> float:
    info = _published_layers().drop_duplicates("model").set_index("model")
    info = info.loc[per_model.index]
    if within:
        keep = (info["arch"] == within) | (info["training"] == within)
        per_model, info = per_model[keep], info[keep]
    return float(per_model[info[by] == a].mean() - per_model[info[by] == b].mean())


def _published_delta() -> pd.DataFrame:
    t = published.layer_rsa()
    base = t[t["condition"] == "Baseline"].set_index(["model", "layer_index", "reference"])["rsa"]
    d = t[t["condition"] != "Baseline"].copy()
    d["delta"] = d["rsa"].to_numpy() - base.loc[list(zip(d["model"], d["layer_index"], d["reference"]))].to_numpy()
    return d


def roi_contrast(roi_means: pd.DataFrame, reference: str, rois_a: Sequence[str], rois_b: Sequence[str]) -> float:
    """Mean ROI RSA with ``reference`` over ``rois_a`` minus over ``rois_b``; ``roi_means`` has
    one row per ROI (index) and a column per reference. ROIs without a value are left out."""
    v = roi_means[reference].dropna()
    return float(v[v.index.isin(rois_a)].mean() - v[v.index.isin(rois_b)].mean())


def early_and_high_rois() -> tuple[list[str], list[str]]:
    """The early visual ROIs and the higher (category-selective, ventral and lateral) ones."""
    from lib.brain.algonauts import FAMILIES
    from lib.brain.report import EARLY, HIGH_FAMILIES, HIGH_STREAMS

    return list(EARLY), [r for f in HIGH_FAMILIES for r in FAMILIES[f]] + list(HIGH_STREAMS)


def published_values() -> dict[str, float]:
    """Every claim's statistic computed from the original's released numbers."""
    t = _published_layers()
    sal = t[(t["condition"] == "Baseline") & (t["reference"] == "saliency")]
    whole = sal.groupby("model")["rsa"].mean()
    d = _published_delta()
    dabs = d.assign(a=d["delta"].abs())

    def mean_abs(ref, conds):
        return float(dabs[(dabs["reference"] == ref) & dabs["condition"].isin(conds)]["a"].mean())

    brain = published.model_roi_rsa()
    brain = brain[brain["roi"] != "All vertices"].groupby(["model", "layer_index"])["rsa"].mean()
    sem = t[(t["condition"] == "Baseline") & (t["reference"] == "semantic")].set_index(["model", "layer_index"])["rsa"]
    joined = pd.concat([sem.rename("semantic"), brain.rename("brain")], axis=1, join="inner").dropna()
    early_rois, high_rois = early_and_high_rois()
    roi_means = published.roi_rsa().groupby("roi")[["saliency", "semantic"]].mean()
    return {
        "resnet_gt_vit_saliency": _group_diff(whole, "arch", "ResNet", "ViT", within="supervised"),
        "early_suppression": _early_fifth(t, "saliency"),
        "clip_deepens_suppression": _group_diff(_half_mean(t, "saliency", 0), "training", "CLIP", "supervised",
                                                within="ResNet"),
        "clip_semantics_resnet": _group_diff(_half_mean(t, "semantic", 1), "training", "CLIP", "supervised",
                                             within="ResNet"),
        "clip_semantics_vit": _group_diff(_half_mean(t, "semantic", 1), "training", "CLIP", "supervised",
                                          within="ViT"),
        "semantics_tracks_brain": float(joined.groupby(level="model").apply(
            lambda g: np.corrcoef(g["semantic"], g["brain"])[0, 1]).mean()),
        "saliency_design": mean_abs("saliency", CONDITIONS_HIGH_SALIENCY) - mean_abs("saliency",
                                                                                     CONDITIONS_LOW_SALIENCY),
        "semantic_design": mean_abs("semantic", CONDITIONS_SEMANTIC) - mean_abs("semantic", ("Control",)),
        "early_rois_saliency": roi_contrast(roi_means, "saliency", early_rois, high_rois),
        "high_rois_semantic": roi_contrast(roi_means, "semantic", high_rois, early_rois),
    }


# ----------------------------------------------------------------------------- this run's rows
def _random_reason(inputs, models: Sequence[str]) -> str | None:
    """'random weights' when any of ``models`` ran untrained (the banner names them)."""
    return "random weights" if any(m in inputs.random_models for m in models) else None


def _group(inputs, by: str, value: str, within_col: str, within: str) -> list[str]:
    m = inputs.models
    return m.loc[(m[by] == value) & (m[within_col] == within), "model"].tolist()


def _contrast_row(key, inputs, params, store, chapter, reference, by, a, b, within_col, within, n_bins, bin_):
    from lib import rsa

    ga, gb = _group(inputs, by, a, within_col, within), _group(inputs, by, b, within_col, within)
    if not ga or not gb:
        return ClaimRow.judged(key, None, None, None, chapter,
                               untestable=f"no {a} and {b} {within} networks in this profile")
    c = rsa.contrast([inputs.rdms[(m, "Baseline")] for m in ga], [inputs.rdms[(m, "Baseline")] for m in gb],
                     inputs.references, n_bins=n_bins, n_bootstrap=params["n_bootstrap"], seed=params["seed"],
                     store=store)
    r = c[(c["reference"] == reference) & (c["bin"] == bin_)].iloc[0]
    return ClaimRow.judged(key, r["diff"], r["ci_low"], r["ci_high"], chapter,
                           untestable=_random_reason(inputs, ga + gb),
                           note=f"{' + '.join(ga)} vs {' + '.join(gb)}")


def _span_row(key, inputs, params, store, chapter, reference, span):
    """A claim about all networks' RSA over a span of depth: the group's span mean with a
    stimulus-bootstrap CI (:func:`lib.rsa.span_rsa`, 10 depth bins as in :func:`_early_fifth`)."""
    from lib import rsa

    models = inputs.model_names
    if not models:
        return ClaimRow.judged(key, None, None, None, chapter, untestable="no networks")
    s = rsa.span_rsa([inputs.rdms[(m, "Baseline")] for m in models], inputs.references, n_bins=10,
                     n_bootstrap=params["n_bootstrap"], seed=params["seed"], store=store)
    r = s[(s["reference"] == reference) & (s["span"] == span)].iloc[0]
    return ClaimRow.judged(key, r["rho"], r["ci_low"], r["ci_high"], chapter,
                           untestable=_random_reason(inputs, models), note=f"{len(models)} networks")


def _delta_row(key, delta, reference, high, low, chapter, inputs) -> ClaimRow:
    d = delta[delta["reference"] == reference] if len(delta) else delta
    if not len(d) or not set(high) & set(d["condition"]) or not set(low) & set(d["condition"]):
        return ClaimRow.judged(key, None, None, None, chapter, untestable="needs the distractor conditions")
    a = d["rho"].abs()
    est = a[d["condition"].isin(high)].mean() - a[d["condition"].isin(low)].mean()
    note = "no CI: a mean over layers"
    if inputs.random_models:
        note += f"; random weights ({', '.join(inputs.random_models)}): how an untrained network sees the design"
    return ClaimRow.judged(key, est, None, None, chapter, note=note)


def saliency_rows(inputs, params: dict[str, Any], base: pd.DataFrame, delta: pd.DataFrame, store=None,
                  chapter: str = "02_saliency") -> list[ClaimRow]:
    """Claims 1, 2a, 2b and the saliency design check, from this run's Saliency chapter tables."""
    rows = [_contrast_row("resnet_gt_vit_saliency", inputs, params, store, chapter, "saliency", "arch", "ResNet",
                          "ViT", "training", "supervised", 1, 0)]
    rows.append(_span_row("early_suppression", inputs, params, store, chapter, "saliency", "first fifth"))
    rows.append(_contrast_row("clip_deepens_suppression", inputs, params, store, chapter, "saliency", "training",
                              "CLIP", "supervised", "arch", "ResNet", 2, 0))
    rows.append(_delta_row("saliency_design", delta, "saliency", CONDITIONS_HIGH_SALIENCY, CONDITIONS_LOW_SALIENCY,
                           chapter, inputs))
    return rows


def semantic_rows(inputs, params: dict[str, Any], delta: pd.DataFrame, store=None,
                  chapter: str = "03_semantics") -> list[ClaimRow]:
    """Claims 3a, 3b and the semantic design check, from this run's Semantics chapter."""
    return [
        _contrast_row("clip_semantics_resnet", inputs, params, store, chapter, "semantic", "training", "CLIP",
                      "supervised", "arch", "ResNet", 2, 1),
        _contrast_row("clip_semantics_vit", inputs, params, store, chapter, "semantic", "training", "CLIP",
                      "supervised", "arch", "ViT", 2, 1),
        _delta_row("semantic_design", delta, "semantic", CONDITIONS_SEMANTIC, ("Control",), chapter, inputs),
    ]


def brain_rows(results, random_models: Sequence[str] = (), chapter: str = "04_brain") -> list[ClaimRow]:
    """Claim 4 and the two ROI checks, from this run's brain results. On synthetic subjects
    the ROI checks become recovery checks of the planted structure, and claim 4 cannot be
    tested (the cortex is planted, not measured)."""
    synthetic = bool(results.bs.synthetic)
    rows = []
    link = results.link.set_index("reference") if len(results.link) else pd.DataFrame()
    why = "synthetic fMRI" if synthetic else None
    if why is None and random_models:
        why = "random weights"
    if "semantic" in link.index:
        r = link.loc["semantic"]
        rows.append(ClaimRow.judged("semantics_tracks_brain", r["r"], r["ci_low"], r["ci_high"], chapter,
                                    untestable=why or _too_few_networks(r),
                                    note=f"{int(r['n_networks'])} networks, {int(r['n_layers'])} layers"))
    else:
        rows.append(ClaimRow.judged("semantics_tracks_brain", None, None, None, chapter, untestable="no link"))
    early_rois, high_rois = early_and_high_rois()
    from lib.brain.analysis import roi_group_contrast

    for key, ref, a, b in (("early_rois_saliency", "saliency", early_rois, high_rois),
                           ("high_rois_semantic", "semantic", high_rois, early_rois)):
        c = roi_group_contrast(results.ref_per_subject, ref, a, b)
        row = ClaimRow.judged(key, c["estimate"] if c["n_subjects"] else None, c["ci_low"], c["ci_high"], chapter,
                              note=f"t interval over {c['n_subjects']} subjects, sign-flip p = {c['p']:.3g}")
        if synthetic and row.estimate is not None:
            row.status = verdicts.recovery(row.ci_low is not None and row.ci_low > 0)
            row.note = "synthetic subjects: recovers the planted mix, says nothing about cortex"
        rows.append(row)
    return rows


def _too_few_networks(link_row) -> str | None:
    """Why the network-level link has no estimate (fewer networks than its test needs)."""
    if np.isfinite(link_row["r"]):
        return None
    return f"too few networks ({int(link_row['n_networks'])}) for a network-level test"


def random_models(params: dict[str, Any]) -> list[str]:
    """The networks this run recorded as running on random weights (its provenance)."""
    from lib import provenance

    return sorted({str(n) for r in provenance.read(params.get("run_dir")) if r["kind"] == "random_weights"
                   for n in (r.get("models") or [r.get("model")]) if n})


# ----------------------------------------------------------------------------- saving and showing
def save(params: dict[str, Any], chapter: str, rows: Sequence[ClaimRow]) -> Path | None:
    """Write a chapter's rows into the run folder (nothing outside a build)."""
    run_dir = params.get("run_dir")
    if not run_dir:
        return None
    path = Path(run_dir) / "claims" / f"{chapter}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    tmp.replace(path)
    return path


def load(run_dir: str | Path | None) -> dict[str, ClaimRow]:
    """Every saved row of a run, by claim key."""
    out: dict[str, ClaimRow] = {}
    folder = Path(run_dir) / "claims" if run_dir else None
    if folder is None or not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        for r in json.loads(path.read_text()):
            out[r["key"]] = ClaimRow(**r)
    return out


def table(run_dir: str | Path | None, rows: dict[str, ClaimRow] | None = None,
          keys: Sequence[str] | None = None) -> pd.DataFrame:
    """The dashboard: one row per claim and check, published beside this run (``rows``
    default to those saved in ``run_dir``; ``keys`` limit the claims shown)."""
    pub = published_values()
    rows = load(run_dir) if rows is None else rows
    out = []
    for c in CLAIMS:
        if keys is not None and c.key not in keys:
            continue
        r = rows.get(c.key)
        out.append({
            "claim or check": c.text, "kind": c.kind,
            "published": fmt_number(pub[c.key]),
            "this run": fmt_number(r.estimate) if r else "–",
            "95 % CI": fmt_ci(r.ci_low, r.ci_high) if r else "–",
            "status": r.status if r else "not computed in this run",
            "how": c.how + (f" ({r.note})" if r and r.note else ""),
        })
    return pd.DataFrame(out)


def _coloured(t: pd.DataFrame) -> str:
    """The rows as an HTML table narrow enough for the text column: the "how" under the
    claim, the status coloured by its word."""
    e = html.escape
    head = "".join(f"<th>{h}</th>" for h in ("claim or check", "published", "this run", "95 % CI", "status"))
    rows = "".join(
        f'<tr><td><span class="claim">{e(r["claim or check"])}</span><div class="how">{e(r["how"])}</div></td>'
        f'<td class="num">{e(r["published"])}</td><td class="num">{e(r["this run"])}</td>'
        f'<td class="num">{e(r["95 % CI"])}</td>'
        f"<td>{status_html(r['status'])}</td></tr>"
        for _, r in t.iterrows())
    return f'<table class="book-table dashboard-table"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def chapter_table(rows: Sequence[ClaimRow]):
    """A chapter's own claims, as the dashboard shows them (IPython HTML)."""
    from IPython.display import HTML

    t = table(None, {r.key: r for r in rows}, keys=[r.key for r in rows]).drop(columns="kind")
    return HTML(f'<div class="book-table-wrap dashboard">{_coloured(t)}</div>')


def status_html(status: str) -> str:
    """A status word with a colour class (``book.css``) so the dashboard reads at a glance."""
    cls = verdicts.base_status(status).replace(" ", "-")
    return f'<span class="status status-{cls}">{html.escape(status)}</span>'


def dashboard_html(run_dir: str | Path | None) -> str:
    """The dashboard as the intro page shows it: claims, then design and brain checks."""
    t = table(run_dir)
    parts = []
    for kind, title in (("claim", "The paper's claims"), ("design check", "Design checks"),
                        ("brain", "Brain checks")):
        parts.append(f"<h4>{title}</h4>{_coloured(t[t['kind'] == kind].drop(columns='kind'))}")
    return '<div class="book-table-wrap dashboard">' + "".join(parts) + "</div>"


def banner(run_dir: str | Path | None) -> tuple[str, str, str]:
    """(admonition kind, title, text) of the intro banner: what this build can and cannot
    show, from the run's own records (random weights? synthetic fMRI?)."""
    from lib import provenance, reproducibility

    manifest = reproducibility.read_manifest(run_dir)
    if manifest is None:
        return ("note", "Run outside a book build",
                "This page was executed on its own, so it has no run to describe. Build the book "
                "(make book, or python -m lib build) to fill the banner and the dashboard.")
    records = provenance.read(run_dir)
    if not records and not load(run_dir):
        return ("note", "No chapter has run yet",
                f"This run folder ({manifest['profile']} profile) holds no results of the chapters: the "
                "dashboard fills when the whole book is built (make book, or python -m lib build).")
    randomised = random_models({"run_dir": run_dir})
    synthetic = any(r["kind"] == "synthetic_data" for r in records)
    p = manifest.get("params", {})
    can = (f"This build (profile '{manifest['profile']}', {len(p.get('models', []))} networks, "
           f"{p.get('n_images') or 'all'} base images) runs the whole method end to end and shows the "
           "original study's published results beside its own.")
    cannot = []
    if randomised:
        cannot.append(f"These networks ran with random (untrained) weights: {', '.join(randomised)}. "
                      "No claim about trained networks can be tested with them; their rows say "
                      "'not testable here'.")
    if synthetic:
        cannot.append("The fMRI subjects are synthetic (generated with a planted saliency/semantic mix per "
                      "ROI), so the brain analysis can only show that it recovers what was planted; it says "
                      "nothing about human cortex.")
    if not cannot:
        return ("tip", "What this build shows", can + " Pretrained weights and measured fMRI throughout: the "
                "dashboard below tests the paper's claims.")
    return ("warning", "What this build can and cannot show", can + "\n\n" + "\n\n".join(cannot))
