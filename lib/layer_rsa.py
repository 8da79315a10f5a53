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
                            n_permutations=params["n_permutations"], alpha=params["alpha"], store=store,
                            progress=progress, **_kw(params))
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
                              n_permutations=params["n_permutations"], alpha=params["alpha"], store=store,
                              progress=progress, **_kw(params))
              for m in inp.model_names for a, b in partial_pairs(list(inp.references))]
    return _with_info(pd.concat(frames, ignore_index=True), inp)


def tests_markdown(table: pd.DataFrame) -> str:
    """Per model: distinct layers tested, permutations and the p floor; then the layers that
    repeat an earlier layer's RDM (listed once)."""
    if table.empty or "n_permutations" not in table.columns:
        return "No RSA table with permutation tests in this run."
    lines = []
    for m, g in table.groupby("model", sort=False):
        g = g.drop_duplicates("layer")
        n_dup = int((g["duplicate_of"] != "").sum())
        lines.append(f"- **{m}**: {len(g) - n_dup} distinct layers of {len(g)}; {int(g['n_permutations'].iloc[0])} "
                     f"permutations, p floor {g['p_floor'].iloc[0]:.2g}.")
    note = rsa.duplicate_note(table)
    return "\n".join(lines) + ("\n\n" + note if note else "\n\nNo layer repeats its predecessor's RDM.")


# ----------------------------------------------------------------------------- trained vs untrained
def untrained_rdms(params: dict[str, Any], models: Sequence[str], *, stimulus_set=None, store=None,
                   progress: bool = False) -> dict[str, rsatoolbox.rdm.RDMs]:
    """Baseline layer RDMs of each model's architecture with seeded random weights
    (``weights=random``, the profile's seed), through the extraction engine and its cache.

    The one place that asks for an untrained twin: when :mod:`lib.models` gains an explicit
    random-weights builder, only this function changes."""
    models = list(models)
    if not models:
        return {}
    from lib.extract import stimulus_set_rdms

    if stimulus_set is None:
        from lib.stimuli import build_stimulus_set

        stimulus_set = build_stimulus_set(params, progress=progress)
    random_params = {**params, "weights": "random", "models": models}
    rdms = stimulus_set_rdms(stimulus_set, random_params, conditions=["Baseline"], progress=progress, store=store)
    return {m: rdms[(m, "Baseline")] for m in models}


def training_effect_table(inp: LayerRSAInputs, untrained: dict[str, rsatoolbox.rdm.RDMs], params: dict[str, Any],
                          store=None) -> pd.DataFrame:
    """What training adds, per pretrained model, layer and reference: RSA(trained) −
    RSA(same architecture, seeded random weights), with a paired stimulus-bootstrap CI (the
    same resamples for both). Separates what the architecture gives for free from what
    learning adds. Empty (with the columns) when no model ran on pretrained weights."""
    pretrained = inp.models.loc[inp.models["weights"] == "pretrained", "model"].tolist()
    frames = []
    for m in pretrained:
        if m not in untrained:
            raise rsa.RSAInputError(f"no untrained RDMs for pretrained model {m!r}; pass untrained_rdms(params, {pretrained})")
        t = rsa.layer_difference(inp.rdms[(m, "Baseline")], untrained[m], inp.references, store=store, **_kw(params))
        frames.append(t.rename(columns={"rho_a": "rho_trained", "rho_b": "rho_untrained"}))
    if not frames:
        cols = list(rsa.TABLE_COLUMNS) + ["rho_trained", "rho_untrained", "label", "arch", "training", "weights"]
        return pd.DataFrame(columns=cols)
    return _with_info(pd.concat(frames, ignore_index=True), inp)


def training_effect(inp: LayerRSAInputs, params: dict[str, Any], store=None, progress: bool = False) -> pd.DataFrame:
    """:func:`training_effect_table` for every pretrained model of the run (the untrained
    twins extracted on demand; nothing is extracted when every model is random)."""
    pretrained = inp.models.loc[inp.models["weights"] == "pretrained", "model"].tolist()
    untrained = untrained_rdms(params, pretrained, store=store, progress=progress) if pretrained else {}
    return training_effect_table(inp, untrained, params, store)


def training_effect_markdown(effect: pd.DataFrame, reference: str, alpha: float) -> str:
    """A short paragraph per model: where training raises or lowers RSA with ``reference``
    (distinct layers, FDR q < alpha, CI excluding zero), or why the section is empty."""
    if effect.empty:
        return ("No network in this run has pretrained weights, so there is no trained network to contrast with "
                "its untrained twin: this section shows nothing. (With pretrained weights each network is also run "
                "with seeded random weights, and the difference shows what learning adds beyond the architecture.)")
    e = rsa.distinct_layers(effect[effect["reference"] == reference])
    lines = []
    for m, g in e.groupby("model", sort=False):
        up = int(((g["q"] < alpha) & (g["ci_low"] > 0)).sum())
        down = int(((g["q"] < alpha) & (g["ci_high"] < 0)).sum())
        lines.append(f"- **{m}**: training raises {reference} RSA in {up} and lowers it in {down} of {len(g)} "
                     f"distinct layers (paired stimulus bootstrap, FDR q < {alpha}); mean difference first half of "
                     f"depth {fmt(_early(g)['rho'].mean(), 3)}, second half {fmt(_late(g)['rho'].mean(), 3)}.")
    return "\n".join(lines)


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
        text = ("contrast", "matched_on", "group_a", "group_b", "reference", "span", "reason")
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
