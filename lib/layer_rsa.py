"""Layer-wise RSA of a profile's networks against the stimulus set's references.

What the Saliency and Semantics chapters share: gather the stimulus set, its two
reference RDMs and every (model, condition) layer RDM; build the tidy tables of
:mod:`lib.rsa` for all models (cached in the artifact store); pair models for contrasts
(CLIP vs supervised within an architecture, ResNet vs ViT within a training regime); and
judge the paper's claims from the numbers, saying why when a run cannot test one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
import rsatoolbox

from lib import rsa

DEPTH_BINS = 10  # relative-depth bins for model contrasts


@dataclass
class LayerRSAInputs:
    """Everything the RSA chapters compute from."""

    ids: list[str]
    references: dict[str, rsatoolbox.rdm.RDMs]
    rdms: dict[tuple[str, str], rsatoolbox.rdm.RDMs]
    models: pd.DataFrame  # model, label, arch, training, weights
    conditions: list[str] = field(default_factory=lambda: list(rsa.CONDITIONS))

    @property
    def model_names(self) -> list[str]:
        return self.models["model"].tolist()

    @property
    def random_models(self) -> list[str]:
        return self.models.loc[self.models["weights"] != "pretrained", "model"].tolist()


def model_info(names: Sequence[str], weights: dict[str, str] | None = None) -> pd.DataFrame:
    """Label, architecture, training and weights actually used, one row per model."""
    from lib.models import describe

    rows = []
    for name in names:
        d = describe(name)
        rows.append({"model": name, **d, "weights": (weights or {}).get(name, "unknown")})
    return pd.DataFrame(rows, columns=["model", "label", "arch", "training", "weights"])


def load_inputs(params: dict[str, Any], *, conditions: Sequence[str] | None = None, progress: bool = True,
                stimulus_set=None, rdms: dict | None = None) -> LayerRSAInputs:
    """Stimulus set, references and layer RDMs for every model in the profile (each heavy
    step cached by its owner). ``stimulus_set``/``rdms`` may be injected (tests)."""
    conditions = list(conditions or rsa.CONDITIONS)
    for c in conditions:
        rsa.check_condition(c)
    if stimulus_set is None:
        from lib.stimuli import build_stimulus_set

        stimulus_set = build_stimulus_set(params, progress=progress)
    weights: dict[str, str] = {}
    if rdms is None:
        from lib.executor import executor_for
        from lib.extract import stimulus_set_rdms

        with executor_for(params) as executor:
            rdms = stimulus_set_rdms(stimulus_set, params, conditions=conditions, progress=progress,
                                     executor=executor)
    if rdms:
        from lib.extract import weights_used

        weights = weights_used(rdms)
    models = sorted({m for m, _ in rdms}, key=lambda m: list(params["models"]).index(m)
                    if m in params["models"] else len(params["models"]))
    if not weights:
        weights = _weights_without_engine(models, params)
    from lib.references import enabled

    refs = {kind: stimulus_set.reference_rdm(kind) for kind in enabled(params)}
    return LayerRSAInputs(ids=list(stimulus_set.ids), references=refs, rdms=dict(rdms),
                          models=model_info(models, weights), conditions=conditions)


def _weights_without_engine(models: Sequence[str], params: dict[str, Any]) -> dict[str, str]:
    try:
        from lib.models import resolve_weights

        return {m: resolve_weights(m, params["weights"], allow_download=False)[0] for m in models}
    except Exception:  # noqa: BLE001 - provenance is best effort when RDMs were injected
        return {m: "unknown" for m in models}


def _kw(params: dict[str, Any]) -> dict[str, Any]:
    return {"n_bootstrap": params["n_bootstrap"], "seed": params["seed"]}


def baseline_table(inp: LayerRSAInputs, params: dict[str, Any], store=None, progress: bool = False) -> pd.DataFrame:
    """Baseline RSA of every layer of every model with both references (one table)."""
    frames = [rsa.rsa_table(inp.rdms[(m, "Baseline")], inp.references, condition="Baseline",
                            n_permutations=params["n_permutations"], store=store, progress=progress, **_kw(params))
              for m in inp.model_names]
    return _with_info(pd.concat(frames, ignore_index=True), inp)


def delta_table(inp: LayerRSAInputs, params: dict[str, Any], store=None, progress: bool = False) -> pd.DataFrame:
    """ΔRSA of every distractor condition, every model, both references."""
    frames = []
    for m in inp.model_names:
        conds = {c: inp.rdms[(m, c)] for c in inp.conditions if (m, c) in inp.rdms}
        if len(conds) > 1:
            frames.append(rsa.delta_rsa(conds, inp.references, store=store, progress=progress, **_kw(params)))
    if not frames:
        return pd.DataFrame(columns=list(rsa.TABLE_COLUMNS) + ["rho_condition", "rho_baseline"])
    return _with_info(pd.concat(frames, ignore_index=True), inp)


def partial_table(inp: LayerRSAInputs, params: dict[str, Any], store=None, progress: bool = False) -> pd.DataFrame:
    """Unique (partial) RSA of every layer, Baseline images, for every saliency–semantic
    pair of references (:func:`lib.references.partial_pairs`; by default one pair)."""
    from lib.references import partial_pairs

    frames = [rsa.partial_rsa(inp.rdms[(m, "Baseline")], {a: inp.references[a], b: inp.references[b]},
                              n_permutations=params["n_permutations"], store=store, progress=progress, **_kw(params))
              for m in inp.model_names for a, b in partial_pairs(list(inp.references))]
    return _with_info(pd.concat(frames, ignore_index=True), inp)


def model_pairs(models: pd.DataFrame, by: str) -> list[tuple[str, list[str], list[str]]]:
    """Groups to contrast. ``by="training"``: CLIP vs supervised within each architecture;
    ``by="arch"``: ResNet vs ViT within each training regime. Returns (matched-on value,
    group A models, group B models) for every pairing the profile allows."""
    if by == "training":
        a_val, b_val, match = "CLIP", "supervised", "arch"
    elif by == "arch":
        a_val, b_val, match = "ResNet", "ViT", "training"
    else:
        raise ValueError(f"contrast 'by' must be 'training' or 'arch', got {by!r}")
    out = []
    for value, g in models.groupby(match, sort=False):
        a = g.loc[g[by] == a_val, "model"].tolist()
        b = g.loc[g[by] == b_val, "model"].tolist()
        if a and b:
            out.append((value, a, b))
    return out


def contrast_table(inp: LayerRSAInputs, params: dict[str, Any], by: str, store=None,
                   n_bins: int = DEPTH_BINS) -> pd.DataFrame:
    """Paired-bootstrap contrasts at matched relative depth for every pairing (see
    :func:`model_pairs`); empty (with the columns) when the profile has no such pair."""
    frames = []
    for value, a, b in model_pairs(inp.models, by):
        la = "CLIP" if by == "training" else "ResNet"
        lb = "supervised" if by == "training" else "ViT"
        c = rsa.contrast([inp.rdms[(m, "Baseline")] for m in a], [inp.rdms[(m, "Baseline")] for m in b],
                         inp.references, label_a=f"{la} {value}", label_b=f"{lb} {value}", n_bins=n_bins,
                         store=store, **_kw(params))
        c.insert(0, "matched_on", value)
        c.insert(0, "contrast", "CLIP − supervised" if by == "training" else "ResNet − ViT")
        frames.append(c)
    if not frames:
        text = ("contrast", "matched_on", "group_a", "group_b", "reference", "reason")
        num = ("bin_low", "bin_high", "rel_depth", "rho_a", "rho_b", "diff", "ci_low", "ci_high", "p", "q")
        cols = {c: pd.Series(dtype=object) for c in text} | {c: pd.Series(dtype=float) for c in num}
        cols |= {"bin": pd.Series(dtype=int), "n_stimuli": pd.Series(dtype=int)}
        return pd.DataFrame(cols)
    return pd.concat(frames, ignore_index=True)


def combine(*tables: pd.DataFrame) -> pd.DataFrame:
    """Concatenate the non-empty tables (keeps dtypes when some are empty)."""
    full = [t for t in tables if len(t)]
    return pd.concat(full, ignore_index=True) if full else tables[0]


def _with_info(table: pd.DataFrame, inp: LayerRSAInputs) -> pd.DataFrame:
    info = inp.models.set_index("model")
    for col in ("label", "arch", "training", "weights"):
        table[col] = table["model"].map(info[col]).fillna("")
    return table


def weights_warning(inp: LayerRSAInputs, params: dict[str, Any]):
    """Record and return the prominent warning when any network ran with random weights
    (None when all were pretrained)."""
    from lib.provenance import record, warn

    for _, r in inp.models.iterrows():
        if r["weights"] == "pretrained":
            record(params, "pretrained_weights", f"{r['label']} ({r['model']}): pretrained weights", model=r["model"])
    rnd = inp.random_models
    if not rnd:
        return None
    labels = ", ".join(inp.models.set_index("model").loc[rnd, "label"])
    return warn(params, "random_weights",
                f"These networks ran with RANDOM (untrained) weights: {labels}. Pretrained weights were not "
                "available offline (fetch them with `python -m lib fetch weights`). Everything below about "
                "those networks describes untrained architectures, not the trained networks of the paper; "
                "the claims summary at the end says which claims this run can and cannot test.",
                models=rnd)


# ----------------------------------------------------------------------------- numbers for prose
def fmt(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def _early(df: pd.DataFrame, cut: float = 0.5) -> pd.DataFrame:
    return df[df["rel_depth"] < cut]


def _late(df: pd.DataFrame, cut: float = 0.5) -> pd.DataFrame:
    return df[df["rel_depth"] >= cut]


@dataclass
class Claim:
    claim: str
    verdict: str  # "supported", "not supported", "contradicted", "not testable"
    evidence: str
    caveat: str = ""

    def row(self) -> dict[str, str]:
        return {"claim": self.claim, "verdict": self.verdict, "evidence": self.evidence, "caveat": self.caveat}


def _claim(inp: "LayerRSAInputs", claim: str, verdict: str, evidence: str, models: Sequence[str] | None = None) -> Claim:
    """A judged claim; when a network it rests on had random weights, the run cannot test a
    claim about trained networks, whatever the numbers say (they are kept as evidence)."""
    models = list(models) if models is not None else inp.model_names
    caveat = _run_caveat(inp, models)
    if verdict != "not testable" and any(m in inp.random_models for m in models):
        evidence = f"the numbers alone would say '{verdict}': {evidence}"
        verdict = "not testable (random weights)"
    return Claim(claim, verdict, evidence, caveat)


def _run_caveat(inp: LayerRSAInputs, models: Sequence[str] | None = None) -> str:
    models = list(models) if models is not None else inp.model_names
    rnd = [m for m in models if m in inp.random_models]
    bits = []
    if rnd:
        bits.append(f"random weights for {', '.join(rnd)}: an untrained network cannot test a claim about training")
    if len(inp.ids) < 50:
        bits.append(f"only {len(inp.ids)} stimuli: wide intervals, little power")
    return "; ".join(bits)


def _contrast_verdict(c: pd.DataFrame, sign: int, alpha: float) -> tuple[str, str]:
    """Verdict from binned contrast rows: significant bins with the expected sign support,
    the opposite sign contradicts."""
    ok = c.dropna(subset=["diff"])
    if ok.empty:
        return "not testable", "no depth bin has layers of both groups"
    sig = ok["q"] < alpha
    n_for = int((sig & (np.sign(ok["diff"]) == sign)).sum())
    n_against = int((sig & (np.sign(ok["diff"]) == -sign)).sum())
    mean = ok["diff"].mean()
    ev = (f"mean difference {fmt(mean, 3)} over {len(ok)} depth bins; {n_for} bin(s) significantly in the "
          f"claimed direction, {n_against} against (FDR q < {alpha})")
    if n_for and not n_against and np.sign(mean) == sign:
        return "supported", ev
    if n_against and not n_for:
        return "contradicted", ev
    return "not supported", ev


def saliency_claims(base: pd.DataFrame, arch_c: pd.DataFrame, train_c: pd.DataFrame, inp: LayerRSAInputs,
                    alpha: float) -> pd.DataFrame:
    """The paper's saliency claims, judged from this run."""
    claims = []
    sal = base[base["reference"] == "saliency"]
    # 1. ResNet > ViT in saliency (supervised)
    c = arch_c[(arch_c["reference"] == "saliency") & (arch_c["matched_on"] == "supervised")] if len(arch_c) else arch_c
    if len(c):
        verdict, ev = _contrast_verdict(c, +1, alpha)
        models = inp.models.loc[inp.models["training"] == "supervised", "model"].tolist()
    else:
        verdict, ev, models = "not testable", "the profile has no supervised ResNet and ViT pair", []
    claims.append(_claim(inp, "Supervised ResNets carry more saliency information than supervised ViTs", verdict, ev,
                         models))
    # 2. early suppression
    sup = rsa.suppression_summary(sal, "saliency", alpha)
    early_neg = []
    for _, r in sup.iterrows():
        g = _early(sal[sal["model"] == r["model"]])
        n = int(((g["q"] < alpha) & (g["ci_high"] < 0) & (g["rho"] < 0)).sum())
        early_neg.append((r["model"], n, len(g)))
    n_models = sum(1 for _, n, _ in early_neg if n > 0)
    ev = "; ".join(f"{m}: {n}/{k} early layers significantly negative" for m, n, k in early_neg)
    if not early_neg:
        verdict = "not testable"
    elif n_models > len(early_neg) / 2:
        verdict = "supported"
    elif n_models == 0:
        verdict = "not supported"
    else:
        verdict = "partly supported"
    claims.append(_claim(inp, "Networks suppress saliency in early layers (significantly negative RSA, first half "
                         "of depth)", verdict, ev))
    # 3. CLIP suppresses more in ResNets
    c = train_c[(train_c["reference"] == "saliency") & (train_c["matched_on"] == "ResNet")] if len(train_c) else train_c
    c = _early(c) if len(c) else c
    if len(c):
        verdict, ev = _contrast_verdict(c, -1, alpha)
        models = inp.models.loc[inp.models["arch"] == "ResNet", "model"].tolist()
    else:
        verdict, ev, models = "not testable", "the profile has no CLIP and supervised ResNet pair", []
    claims.append(_claim(inp, "CLIP training deepens early saliency suppression in ResNets (CLIP − supervised < 0 "
                         "in the first half of depth)", verdict, ev, models))
    return pd.DataFrame([c.row() for c in claims])


def semantic_claims(base: pd.DataFrame, train_c: pd.DataFrame, delta: pd.DataFrame, part: pd.DataFrame,
                    inp: LayerRSAInputs, alpha: float) -> pd.DataFrame:
    """The paper's semantic claims (and two consequences of its design), judged from this run."""
    claims = []
    # 1. CLIP raises semantic RSA, per architecture (late half)
    for arch in ("ResNet", "ViT"):
        c = train_c[(train_c["reference"] == "semantic") & (train_c["matched_on"] == arch)] if len(train_c) else train_c
        c = _late(c) if len(c) else c
        if len(c):
            verdict, ev = _contrast_verdict(c, +1, alpha)
            models = inp.models.loc[inp.models["arch"] == arch, "model"].tolist()
        else:
            verdict, ev, models = "not testable", f"the profile has no CLIP and supervised {arch} pair", []
        claims.append(_claim(inp, f"CLIP training raises semantic encoding in {arch}s (second half of depth)", verdict,
                             ev, models))
    # 2. semantics surfaces with depth
    sem = base[base["reference"] == "semantic"].dropna(subset=["rho"])
    rows = []
    for m, g in sem.groupby("model", sort=False):
        from scipy.stats import spearmanr

        r = spearmanr(g["rel_depth"], g["rho"])[0] if g["rho"].nunique() > 1 else np.nan
        late_sig = int(((_late(g)["q"] < alpha) & (_late(g)["ci_low"] > 0)).sum())
        rows.append((m, r, late_sig, len(_late(g))))
    n_up = sum(1 for _, r, s, _ in rows if r > 0 and s > 0)
    ev = "; ".join(f"{m}: depth trend ρ = {fmt(r)}, {s}/{k} late layers significantly positive" for m, r, s, k in rows)
    verdict = ("not testable" if not rows else "supported" if n_up > len(rows) / 2
               else "not supported" if n_up == 0 else "partly supported")
    claims.append(_claim(inp, "Semantic RSA surfaces with depth (rises through the network, significant in late "
                         "layers)", verdict, ev))
    # 3. semantic distractors move semantic RSA more than Control
    d = delta[delta["reference"] == "semantic"] if len(delta) else delta
    if len(d) and {"Control", "Semantic"} <= set(d["condition"]):
        mags = d.groupby("condition")["rho"].apply(lambda v: v.abs().mean())
        sem_conds = [c for c in ("Semantic", "Semantic_Salient") if c in mags]
        bigger = all(mags[c] > mags["Control"] for c in sem_conds)
        ev = ", ".join(f"mean |ΔRSA| {c} {fmt(mags[c], 4)}" for c in ["Control"] + sem_conds)
        verdict = "supported" if bigger else "not supported"
    else:
        verdict, ev = "not testable", "needs Control and Semantic conditions"
    claims.append(_claim(inp, "(design check) Semantic distractors perturb semantic RSA more than Control "
                         "distractors", verdict, ev))
    # 4. unique semantic variance
    p = part[(part["reference"] == "semantic")] if len(part) else part
    if len(p):
        late = _late(p)
        n_sig = int(((late["q"] < alpha) & (late["ci_low"] > 0)).sum())
        ev = f"{n_sig}/{len(late)} late layers (all models) keep significant semantic RSA after removing saliency"
        verdict = "supported" if n_sig > len(late) / 4 else "not supported"
    else:
        verdict, ev = "not testable", "no partial RSA computed"
    claims.append(_claim(inp, "(extension) Late-layer semantic RSA is not explained by saliency (partial RSA > 0)",
                         verdict, ev))
    return pd.DataFrame([c.row() for c in claims])


def claims_markdown(claims: pd.DataFrame) -> str:
    """A Markdown list of judged claims (for IPython.display.Markdown)."""
    icon = {"supported": "✅", "partly supported": "◐", "not supported": "✖", "contradicted": "⛔",
            "not testable": "—", "not testable (random weights)": "⚠️"}
    lines = []
    for _, r in claims.iterrows():
        line = f"- {icon.get(r['verdict'], '')} **{r['verdict']}** — {r['claim']}. *Evidence:* {r['evidence']}."
        if r["caveat"]:
            line += f" *Why this run may not settle it:* {r['caveat']}."
        lines.append(line)
    return "\n".join(lines)
