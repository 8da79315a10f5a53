"""Representational similarity analysis, thin over rsatoolbox, with real inference.

The core arithmetic is vectorised: RDMs are compared as rank-transformed upper triangles,
so a Spearman correlation is a Pearson correlation of ranks and many comparisons become
one matrix product. Statistics (permutation, stimulus bootstrap, FDR) live in
:mod:`lib.inference`; this module turns rsatoolbox ``RDMs`` into tidy tables:

    model, layer, depth, rel_depth, block, type, condition, reference,
    rho, ci_low, ci_high, p, q, n_stimuli, reason, p_floor, n_permutations, duplicate_of

``p_floor`` is the smallest p the test could give (permutations: 1/(P+1), where P grows
with the number of layers so one layer can pass the FDR threshold; bootstrap p of ΔRSA
and of paired layer differences: 0, since a normal fitted to the draws gives the tail
where fewer than 10 draws cross zero, see :func:`lib.inference.bootstrap_pvalue`).
``duplicate_of`` names the earlier layer whose RDM this layer's equals exactly (Dropout
at eval, Identity); such a layer is one test with its original: it is left out of the FDR
family, gets its original's q, and summaries count it once.
``reason`` is empty when ``rho`` is a number and says why when it is NaN (a constant RDM
has no ranks to correlate) -- a NaN is never silent.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import rsatoolbox

from lib import inference as inf
from lib.gram import features_gram, rdm_from_gram, upper

#: The five stimulus conditions (mirrors ``lib.stimuli.CONDITIONS``).
CONDITIONS = ("Baseline", "Control", "Salient", "Semantic", "Semantic_Salient")
#: Layer descriptors carried into every table (filled when an RDMs object lacks them).
LAYER_COLUMNS = ("model", "layer", "depth", "rel_depth", "block", "type")
TABLE_COLUMNS = LAYER_COLUMNS + (
    "condition", "reference", "rho", "ci_low", "ci_high", "p", "q", "n_stimuli", "reason",
    "p_floor", "n_permutations", "duplicate_of",
)
CONSTANT_LAYER = "constant layer RDM (zero variance): Spearman undefined"
CONSTANT_REFERENCE = "constant reference RDM (zero variance): Spearman undefined"


class RSAInputError(ValueError):
    """RDMs that cannot be compared (different stimuli, unknown condition, ...)."""


# ----------------------------------------------------------------------------- basics
def rdm(features: np.ndarray, metric: str = "cosine", descriptor: str = "index") -> rsatoolbox.rdm.RDMs:
    """RDM of an (n, ...) array (each row flattened), by the same arithmetic as the engine."""
    features = np.asarray(features)
    if features.ndim < 2 or len(features) < 3:
        raise ValueError(f"need an (n >= 3, ...) array of features, got shape {features.shape}")
    gram, sums, p = features_gram(features)
    square = rdm_from_gram(gram, metric, row_sums=sums, n_features=p)
    return rsatoolbox.rdm.RDMs(
        upper(square)[None, :],
        dissimilarity_measure=metric,
        pattern_descriptors={descriptor: list(range(len(features)))},
    )


_zscored_ranks = inf.zscored_ranks


def spearman_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlations between every row of ``a`` (k, m) and every row of ``b`` (l, m).

    Rows are RDM upper triangles over the same stimulus pairs. A constant row (zero
    variance) yields NaN in its row/column; callers must report why.
    """
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"RDM vectors differ in length ({a.shape[1]} vs {b.shape[1]} pairs): not the same stimuli")
    return _zscored_ranks(a) @ _zscored_ranks(b).T


# ----------------------------------------------------------------------------- checks
def check_condition(name: str) -> str:
    """Return ``name`` if it is a known condition, else an error listing the valid ones."""
    if name not in CONDITIONS:
        raise RSAInputError(f"unknown condition {name!r}; valid conditions: {', '.join(CONDITIONS)}")
    return name


def _label(rdms: rsatoolbox.rdm.RDMs, fallback: str) -> str:
    desc = rdms.rdm_descriptors
    for key in ("model", "name", "reference"):
        if key in desc and len(desc[key]):
            return str(desc[key][0])
    return fallback


def _stimulus_ids(rdms: rsatoolbox.rdm.RDMs) -> tuple[str | None, list | None]:
    pd_ = rdms.pattern_descriptors or {}
    for key in ("image_id", "id", "stimulus", "index"):
        if key in pd_ and pd_[key] is not None and len(pd_[key]) == rdms.n_cond:
            return key, [str(v) for v in pd_[key]]
    return None, None


def check_same_stimuli(a: rsatoolbox.rdm.RDMs, b: rsatoolbox.rdm.RDMs, name_a: str, name_b: str) -> None:
    """Both RDMs must be over the same stimuli in the same order (count and, when both carry
    ids, the ids themselves); the error names both sides and the first difference."""
    if a.n_cond != b.n_cond:
        raise RSAInputError(
            f"{name_a} is over {a.n_cond} stimuli but {name_b} over {b.n_cond}; "
            "compute both on the same stimulus set (same ids, same order)"
        )
    key_a, ids_a = _stimulus_ids(a)
    key_b, ids_b = _stimulus_ids(b)
    if key_a == key_b and key_a not in (None, "index") and ids_a != ids_b:
        if sorted(ids_a) == sorted(ids_b):
            what = "the same stimuli in a different order"
        else:
            what = f"different stimuli ({len(set(ids_a) - set(ids_b))} of {name_a}'s not in {name_b})"
        i = next(i for i, (x, y) in enumerate(zip(ids_a, ids_b)) if x != y)
        raise RSAInputError(
            f"{name_a} and {name_b} are over {what}: position {i} is {ids_a[i]!r} vs {ids_b[i]!r} "
            f"({key_a}); reorder one with rdms.subsample_pattern('{key_a}', ids) before comparing"
        )


def _layer_frame(rdms: rsatoolbox.rdm.RDMs) -> pd.DataFrame:
    desc = rdms.rdm_descriptors
    k = rdms.n_rdm
    model = _label(rdms, "model")
    cols: dict[str, Any] = {}
    for c in LAYER_COLUMNS:
        if c in desc and len(desc[c]) == k:
            cols[c] = list(desc[c])
    cols.setdefault("model", [model] * k)
    cols.setdefault("layer", [str(i) for i in range(k)])
    cols.setdefault("depth", list(range(k)))
    cols.setdefault("rel_depth", list(np.arange(k) / max(k - 1, 1)))
    cols.setdefault("block", [str(v) for v in cols["depth"]])
    cols.setdefault("type", [""] * k)
    frame = pd.DataFrame({c: cols[c] for c in LAYER_COLUMNS})
    frame["depth"] = frame["depth"].astype(int)
    frame["rel_depth"] = frame["rel_depth"].astype(float)
    frame["block"] = frame["block"].astype(str)
    frame["layer"] = frame["layer"].astype(str)
    return frame


def _references(references: Mapping[str, rsatoolbox.rdm.RDMs] | rsatoolbox.rdm.RDMs) -> dict[str, rsatoolbox.rdm.RDMs]:
    if isinstance(references, rsatoolbox.rdm.RDMs):
        references = {_label(references, "reference"): references}
    out = {}
    for name, ref in references.items():
        if ref.n_rdm != 1:
            raise RSAInputError(f"reference {name!r} holds {ref.n_rdm} RDMs; pass exactly one per reference")
        out[str(name)] = ref
    if not out:
        raise RSAInputError("no reference RDMs given; pass e.g. {'saliency': ..., 'semantic': ...}")
    return out


def _reasons(layer_z: np.ndarray, ref_ok: bool) -> np.ndarray:
    bad = np.isnan(layer_z).any(axis=1)
    reason = np.where(bad, CONSTANT_LAYER, "").astype(object)
    if not ref_ok:
        reason[:] = CONSTANT_REFERENCE
    return reason


def _family_fdr(df: pd.DataFrame, by: Sequence[str]) -> pd.Series:
    """BH q-values within each family (all layers of one model/condition/reference), each
    distinct RDM counted once (see ``duplicate_of``)."""
    q = pd.Series(np.nan, index=df.index)
    for _, idx in df.groupby(list(by), sort=False).groups.items():
        dup = df.loc[idx, "duplicate_of"].to_numpy() if "duplicate_of" in df else np.full(len(idx), "")
        q.loc[idx] = inf.fdr_bh_once(df.loc[idx, "p"].to_numpy(), dup)
    return q


def _duplicates(rdms: rsatoolbox.rdm.RDMs) -> np.ndarray:
    return inf.duplicate_of(rdms.get_vectors(), _layer_frame(rdms)["layer"].tolist())


def _n_perm(n_permutations: int, duplicate: np.ndarray, alpha: float) -> int:
    """Permutations for a family of the distinct layers: at least the profile's, and enough
    for one layer to pass BH at ``alpha``."""
    if not n_permutations:
        return 0
    return inf.n_permutations_for(int((duplicate == "").sum()), alpha, n_permutations)


def _cached(store, step: str, inputs: dict, compute) -> pd.DataFrame:
    """Store a table under ``step``; the code version comes from :class:`lib.specs.InferenceSpec`
    (the source of the modules the tables run), never a hand-bumped string."""
    if store is None:
        return compute()
    from lib.specs import InferenceSpec, code_version

    return store.get_or_compute(step, code_version(InferenceSpec.MODULES), inputs,
                                lambda: {"table": compute()})["table"]


def _rdm_ingredient(rdms: rsatoolbox.rdm.RDMs) -> dict:
    return {"v": np.ascontiguousarray(rdms.get_vectors()),
            "d": {k: [str(x) for x in v] for k, v in rdms.rdm_descriptors.items()}}


def _check_against_references(layer_rdms: rsatoolbox.rdm.RDMs, refs: Mapping[str, rsatoolbox.rdm.RDMs]) -> None:
    for name, ref in refs.items():
        check_same_stimuli(layer_rdms, ref, f"layer RDMs of {_label(layer_rdms, 'the model')}", f"reference {name!r}")


def _layer_table_inputs(layer_rdms, refs, condition, n_permutations, n_bootstrap, level, seed, alpha) -> dict:
    """Cache-key ingredients of a per-layer table (RSA or partial RSA)."""
    return {"layers": _rdm_ingredient(layer_rdms), "refs": {k: _rdm_ingredient(v) for k, v in refs.items()},
            "condition": condition, "n_perm": n_permutations, "n_boot": n_bootstrap, "level": level, "seed": seed,
            "alpha": alpha}


# ----------------------------------------------------------------------------- RSA table
def rsa_table(
    layer_rdms: rsatoolbox.rdm.RDMs,
    references: Mapping[str, rsatoolbox.rdm.RDMs] | rsatoolbox.rdm.RDMs,
    *,
    condition: str = "Baseline",
    n_permutations: int = 1000,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    alpha: float = 0.05,
    store=None,
    progress: bool = False,
) -> pd.DataFrame:
    """Spearman RSA of every layer with every reference, with inference.

    p: permutation test relabelling the stimuli of the reference (two-sided), with
    ``max(n_permutations, m/alpha)`` permutations for m distinct layers (so the p floor
    can pass BH); ci_low/ci_high: percentile bootstrap over stimuli; q: Benjamini–Hochberg
    across the distinct layers of the model, per reference. Same seed -> same
    permutations and resamples, so tables of different models/conditions are paired.
    """
    check_condition(condition)
    refs = _references(references)
    _check_against_references(layer_rdms, refs)

    def compute() -> pd.DataFrame:
        layers = layer_rdms.get_vectors()
        n = layer_rdms.n_cond
        layer_z = inf.zscored_ranks(layers)
        base = _layer_frame(layer_rdms)
        dup = inf.duplicate_of(layers, base["layer"].tolist())
        n_perm = _n_perm(n_permutations, dup, alpha)
        perms = inf.permutations(n, n_perm, seed) if n_perm else None
        counts = inf.bootstrap_counts(n, n_bootstrap, seed + 1) if n_bootstrap else None
        ref_vecs = np.vstack([r.get_vectors() for r in refs.values()])
        ref_z = inf.zscored_ranks(ref_vecs)
        rho = np.nan_to_num(layer_z) @ np.nan_to_num(ref_z).T
        rho[np.isnan(layer_z).any(axis=1)] = np.nan
        rho[:, np.isnan(ref_z).any(axis=1)] = np.nan
        boot = inf.bootstrap_spearman(layers, ref_vecs, counts, progress=progress, desc="bootstrap") if n_bootstrap else None
        frames = []
        for j, name in enumerate(refs):
            df = base.copy()
            df["condition"] = condition
            df["reference"] = name
            df["rho"] = rho[:, j]
            if boot is not None:
                df["ci_low"], df["ci_high"] = inf.percentile_ci(boot[:, :, j], level)
            else:
                df["ci_low"] = df["ci_high"] = np.nan
            if perms is not None and not np.isnan(ref_z[j]).any():
                null = inf.permutation_null(layer_z, ref_z[j], perms)
                df["p"] = inf.permutation_pvalues(rho[:, j], null)
            else:
                df["p"] = np.nan
            df["n_stimuli"] = n
            df["reason"] = _reasons(layer_z, not np.isnan(ref_z[j]).any())
            df["p_floor"] = inf.p_floor(n_perm) if n_perm else np.nan
            df["n_permutations"] = n_perm
            df["duplicate_of"] = dup
            frames.append(df)
        out = pd.concat(frames, ignore_index=True)
        out["q"] = _family_fdr(out, ["model", "condition", "reference"])
        return out[list(TABLE_COLUMNS)]

    inputs = _layer_table_inputs(layer_rdms, refs, condition, n_permutations, n_bootstrap, level, seed, alpha)
    return _cached(store, "rsa_table", inputs, compute)


# ----------------------------------------------------------------------------- ΔRSA
def delta_rsa(
    condition_rdms: Mapping[str, rsatoolbox.rdm.RDMs],
    references: Mapping[str, rsatoolbox.rdm.RDMs] | rsatoolbox.rdm.RDMs,
    *,
    baseline: str = "Baseline",
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    store=None,
    progress: bool = False,
) -> pd.DataFrame:
    """ΔRSA as the paper defines it: RSA(layer RDM on a condition's images, the *Baseline*
    reference) − RSA(layer RDM on Baseline images, the same reference), per layer.

    ``condition_rdms`` maps condition name -> layer RDMs of one model (same layers, same
    base-image order). Inference: paired bootstrap over stimuli (one resample serves the
    condition and the baseline), giving ci_low/ci_high and a two-sided bootstrap p for
    Δ = 0; q is BH across layers per (model, condition, reference). Columns: the table
    columns (``rho`` = Δ) plus ``rho_condition``, ``rho_baseline``.
    """
    for name in condition_rdms:
        check_condition(name)
    check_condition(baseline)
    if baseline not in condition_rdms:
        raise RSAInputError(f"ΔRSA needs the {baseline!r} layer RDMs; got conditions {list(condition_rdms)}")
    refs = _references(references)
    base_rdms = condition_rdms[baseline]
    for cond, rd in condition_rdms.items():
        if rd.n_rdm != base_rdms.n_rdm:
            raise RSAInputError(f"{cond} has {rd.n_rdm} layer RDMs but {baseline} {base_rdms.n_rdm}; same model and layers needed")
        check_same_stimuli(rd, base_rdms, f"{cond} layer RDMs", f"{baseline} layer RDMs")
    for name, ref in refs.items():
        check_same_stimuli(base_rdms, ref, f"{baseline} layer RDMs", f"reference {name!r}")

    def compute() -> pd.DataFrame:
        n = base_rdms.n_cond
        ref_vecs = np.vstack([r.get_vectors() for r in refs.values()])
        counts = inf.bootstrap_counts(n, n_bootstrap, seed + 1) if n_bootstrap else None
        base_vecs = base_rdms.get_vectors()
        rho_base = spearman_matrix(base_vecs, ref_vecs)
        boot_base = inf.bootstrap_spearman(base_vecs, ref_vecs, counts) if n_bootstrap else None
        base_bad = inf.constant_rows(base_vecs)
        ref_bad = inf.constant_rows(ref_vecs)
        base_names = _layer_frame(base_rdms)["layer"].tolist()
        frames = []
        for cond, rd in condition_rdms.items():
            if cond == baseline:
                continue
            vecs = rd.get_vectors()
            rho_c = spearman_matrix(vecs, ref_vecs)
            cond_bad = inf.constant_rows(vecs)
            # a layer is a duplicate for ΔRSA when it repeats its predecessor in both conditions
            dup = inf.duplicate_of(np.hstack([vecs, base_vecs]), base_names)
            boot = inf.bootstrap_spearman(vecs, ref_vecs, counts, progress=progress, desc=f"bootstrap {cond}") if n_bootstrap else None
            for j, name in enumerate(refs):
                df = _layer_frame(base_rdms)
                df["condition"] = cond
                df["reference"] = name
                df["rho_condition"] = rho_c[:, j]
                df["rho_baseline"] = rho_base[:, j]
                df["rho"] = rho_c[:, j] - rho_base[:, j]
                if boot is not None:
                    d = boot[:, :, j] - boot_base[:, :, j]
                    df["ci_low"], df["ci_high"] = inf.percentile_ci(d, level)
                    df["p"] = inf.bootstrap_pvalue(d, tail_fit=True)
                else:
                    df["ci_low"] = df["ci_high"] = df["p"] = np.nan
                reason = np.where(cond_bad, CONSTANT_LAYER + f" in {cond}", "").astype(object)
                reason = np.where(base_bad, CONSTANT_LAYER + f" in {baseline}", reason).astype(object)
                if ref_bad[j]:
                    reason[:] = CONSTANT_REFERENCE
                df["reason"] = reason
                df["n_stimuli"] = n
                df["p_floor"] = 0.0 if n_bootstrap else np.nan  # normal tail fit beyond the draws: no floor
                df["n_permutations"] = 0
                df["duplicate_of"] = dup
                frames.append(df)
        if not frames:
            raise RSAInputError(f"ΔRSA needs at least one condition besides {baseline}; got {list(condition_rdms)}")
        out = pd.concat(frames, ignore_index=True)
        out["q"] = _family_fdr(out, ["model", "condition", "reference"])
        return out[list(TABLE_COLUMNS) + ["rho_condition", "rho_baseline"]]

    inputs = {"conds": {k: _rdm_ingredient(v) for k, v in condition_rdms.items()},
              "refs": {k: _rdm_ingredient(v) for k, v in refs.items()},
              "baseline": baseline, "n_boot": n_bootstrap, "level": level, "seed": seed}
    return _cached(store, "delta_rsa", inputs, compute)


# ----------------------------------------------------------------------------- paired layers
def layer_difference(
    rdms_a: rsatoolbox.rdm.RDMs,
    rdms_b: rsatoolbox.rdm.RDMs,
    references: Mapping[str, rsatoolbox.rdm.RDMs] | rsatoolbox.rdm.RDMs,
    *,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    store=None,
) -> pd.DataFrame:
    """Layer by layer, RSA(a) − RSA(b) for two sets of RDMs of the *same* layers on the same
    stimuli (e.g. one architecture with trained and with random weights).

    Inference: paired bootstrap over stimuli (one resample serves both), percentile CI
    and two-sided bootstrap p of diff = 0; q: BH across the distinct layers per reference
    (a layer repeating its predecessor in both a and b is counted once). Columns: the
    table columns (``rho`` = difference) plus ``rho_a``, ``rho_b``.
    """
    refs = _references(references)
    if rdms_a.n_rdm != rdms_b.n_rdm:
        raise RSAInputError(f"{_label(rdms_a, 'a')} has {rdms_a.n_rdm} layer RDMs but {_label(rdms_b, 'b')} "
                            f"{rdms_b.n_rdm}: the same architecture's layers are needed on both sides")
    check_same_stimuli(rdms_a, rdms_b, f"layer RDMs of {_label(rdms_a, 'a')}", f"layer RDMs of {_label(rdms_b, 'b')}")
    _check_against_references(rdms_a, refs)

    def compute() -> pd.DataFrame:
        n = rdms_a.n_cond
        va, vb = rdms_a.get_vectors(), rdms_b.get_vectors()
        ref_vecs = np.vstack([r.get_vectors() for r in refs.values()])
        rho_a, rho_b = spearman_matrix(va, ref_vecs), spearman_matrix(vb, ref_vecs)
        counts = inf.bootstrap_counts(n, n_bootstrap, seed + 1) if n_bootstrap else None
        if n_bootstrap:
            d_all = inf.bootstrap_spearman(va, ref_vecs, counts) - inf.bootstrap_spearman(vb, ref_vecs, counts)
        frame = _layer_frame(rdms_a)
        dup = inf.duplicate_of(np.hstack([va, vb]), frame["layer"].tolist())
        bad = inf.constant_rows(va) | inf.constant_rows(vb)
        frames = []
        for j, name in enumerate(refs):
            df = frame.copy()
            df["condition"] = "Baseline"
            df["reference"] = name
            df["rho_a"], df["rho_b"] = rho_a[:, j], rho_b[:, j]
            df["rho"] = rho_a[:, j] - rho_b[:, j]
            if n_bootstrap:
                df["ci_low"], df["ci_high"] = inf.percentile_ci(d_all[:, :, j], level)
                df["p"] = inf.bootstrap_pvalue(d_all[:, :, j], tail_fit=True)
            else:
                df["ci_low"] = df["ci_high"] = df["p"] = np.nan
            df["n_stimuli"] = n
            df["reason"] = np.where(bad, CONSTANT_LAYER, "").astype(object)
            df["p_floor"] = 0.0 if n_bootstrap else np.nan  # normal tail fit beyond the draws: no floor
            df["n_permutations"] = 0
            df["duplicate_of"] = dup
            frames.append(df)
        out = pd.concat(frames, ignore_index=True)
        out["q"] = _family_fdr(out, ["model", "condition", "reference"])
        return out[list(TABLE_COLUMNS) + ["rho_a", "rho_b"]]

    inputs = {"a": _rdm_ingredient(rdms_a), "b": _rdm_ingredient(rdms_b),
              "refs": {k: _rdm_ingredient(v) for k, v in refs.items()}, "n_boot": n_bootstrap, "level": level,
              "seed": seed}
    return _cached(store, "layer_difference", inputs, compute)


# ----------------------------------------------------------------------------- partial RSA
def partial_rsa(
    layer_rdms: rsatoolbox.rdm.RDMs,
    references: Mapping[str, rsatoolbox.rdm.RDMs],
    *,
    condition: str = "Baseline",
    n_permutations: int = 1000,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    alpha: float = 0.05,
    store=None,
    progress: bool = False,
) -> pd.DataFrame:
    """Unique RSA: partial Spearman of each layer with one reference controlling for the
    other (exactly two references, e.g. saliency and semantic).

    Partial Spearman = first-order partial correlation of the ranks. p: Freedman–Lane
    residual permutation on ranks (:func:`lib.inference.freedman_lane_null`): the control
    is regressed out of the target, the stimuli of that residual RDM are relabelled, and
    the partial correlation is recomputed. Why not the partial Mantel test of Smouse,
    Long & Sokal (1986), which relabels the raw target: a relabelled target shares nothing
    with the control any more, so its null ignores that the references are correlated
    (they are: rho ~ -0.27 in the demo). Permutations adapt to the number of layers as in
    :func:`rsa_table`. CIs: stimulus bootstrap (weighted ranks). ``reference`` is the
    target and ``control`` the reference partialled out.
    """
    check_condition(condition)
    refs = _references(references)
    if len(refs) != 2:
        raise RSAInputError(f"partial RSA takes exactly two references (target and control); got {list(refs)}")
    _check_against_references(layer_rdms, refs)

    def compute() -> pd.DataFrame:
        names = list(refs)
        n = layer_rdms.n_cond
        layers = layer_rdms.get_vectors()
        ref_vecs = np.vstack([refs[k].get_vectors() for k in names])
        lz = inf.zscored_ranks(layers)
        rz = inf.zscored_ranks(ref_vecs)
        r_lr = np.nan_to_num(lz) @ np.nan_to_num(rz).T  # (k, 2)
        r_rr = float(np.nan_to_num(rz[0]) @ np.nan_to_num(rz[1]))
        counts = inf.bootstrap_counts(n, n_bootstrap, seed + 1) if n_bootstrap else None
        if n_bootstrap:
            b_lr = inf.bootstrap_spearman(layers, ref_vecs, counts, progress=progress, desc="bootstrap partial")
            b_rr = inf.bootstrap_spearman(ref_vecs[:1], ref_vecs[1:], counts)[:, 0, 0]
        dup = inf.duplicate_of(layers, _layer_frame(layer_rdms)["layer"].tolist())
        n_perm = _n_perm(n_permutations, dup, alpha)
        perms = inf.permutations(n, n_perm, seed) if n_perm else None
        bad_layer = np.isnan(lz).any(axis=1)
        bad_ref = np.isnan(rz).any(axis=1)
        frames = []
        for t, c in ((0, 1), (1, 0)):
            df = _layer_frame(layer_rdms)
            df["condition"] = condition
            df["reference"] = names[t]
            df["control"] = names[c]
            rho = inf.partial_from_corr(r_lr[:, t], r_lr[:, c], r_rr)
            rho[bad_layer] = np.nan
            reason = np.where(bad_layer, CONSTANT_LAYER, "").astype(object)
            if bad_ref.any():
                rho[:] = np.nan
                reason[:] = CONSTANT_REFERENCE
            elif abs(r_rr) > 1 - 1e-12:
                rho[:] = np.nan
                reason[:] = "references are perfectly rank-correlated: nothing unique to either"
            df["rho"] = rho
            df["rho_zero_order"] = r_lr[:, t]
            if n_bootstrap:
                d = inf.partial_from_corr(b_lr[:, :, t], b_lr[:, :, c], b_rr[:, None])
                df["ci_low"], df["ci_high"] = inf.percentile_ci(d, level)
            else:
                df["ci_low"] = df["ci_high"] = np.nan
            if perms is not None and not bad_ref.any() and abs(r_rr) <= 1 - 1e-12:
                null = inf.freedman_lane_null(lz, rz[t], rz[c], perms)
                df["p"] = inf.permutation_pvalues(rho, null)
            else:
                df["p"] = np.nan
            df["n_stimuli"] = n
            df["reason"] = reason
            df["p_floor"] = inf.p_floor(n_perm) if n_perm else np.nan
            df["n_permutations"] = n_perm
            df["duplicate_of"] = dup
            frames.append(df)
        out = pd.concat(frames, ignore_index=True)
        out["q"] = _family_fdr(out, ["model", "condition", "reference"])
        return out[list(TABLE_COLUMNS) + ["control", "rho_zero_order"]]

    inputs = _layer_table_inputs(layer_rdms, refs, condition, n_permutations, n_bootstrap, level, seed, alpha)
    return _cached(store, "partial_rsa", inputs, compute)


# ----------------------------------------------------------------------------- contrasts
def depth_bins(rel_depth: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bins of relative depth in [0, 1] (last bin closed)."""
    rel = np.clip(np.asarray(rel_depth, dtype=float), 0.0, 1.0)
    return np.minimum((rel * n_bins).astype(int), n_bins - 1)


#: Claim-level spans of depth, as (name, low, high) over bin centres; "second − first
#: half" is the late minus the early span (a depth trend with a paired CI). "first fifth" is
#: what the paper calls early layers (where its networks' saliency RSA turns negative).
SPANS = (("first fifth", 0.0, 0.2), ("first half", 0.0, 0.5), ("second half", 0.5, 1.0),
         ("all depths", 0.0, 1.0))
TREND = "second − first half"


def _group_list(group) -> list:
    return [group] if isinstance(group, rsatoolbox.rdm.RDMs) else list(group)


def _binned_group(group, ref_vecs: np.ndarray, counts, n_bins: int, progress: bool = False):
    """A group's RSA per depth bin: the mean over each model's distinct layers in the bin,
    then over models. Returns (observed (bins, refs), bootstrap draws (B, bins, refs) or
    None, present (bins, refs)). Every model uses the same stimulus draws (paired)."""
    obs, boots, present = [], [], []
    for rd in group:
        frame = _layer_frame(rd)
        vecs = rd.get_vectors()
        bins = depth_bins(frame["rel_depth"].to_numpy(), n_bins)
        distinct = inf.duplicate_of(vecs, frame["layer"].tolist()) == ""
        rho = spearman_matrix(vecs, ref_vecs)  # (k, r); NaN = constant RDM
        onehot = np.zeros((n_bins, len(bins)))
        onehot[bins, np.arange(len(bins))] = distinct
        mask = onehot[None] * (~np.isnan(rho)).T[:, None, :]  # (r, bins, k)
        cnt = mask.sum(axis=2)  # (r, bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            obs.append(np.where(cnt > 0, np.einsum("rbk,kr->rb", mask, np.nan_to_num(rho)) / cnt, np.nan).T)
            if counts is not None:
                bt = inf.bootstrap_spearman(vecs, ref_vecs, counts, progress=progress)
                vals = np.einsum("rbk,nkr->nbr", mask, np.nan_to_num(bt))
                boots.append(np.where(cnt.T[None] > 0, vals / cnt.T[None], np.nan))
        present.append((cnt > 0).T)  # (bins, r)
    with inf._quiet_nan_warnings():
        o = np.nanmean(np.stack(obs), axis=0)
        b = np.nanmean(np.stack(boots), axis=0) if boots else None
    return o, b, np.stack(present).any(axis=0)


def _span_values(values: np.ndarray, n_bins: int) -> dict[str, np.ndarray]:
    """Mean over the bins of each span (last-but-one axis = bins), and the late − early trend."""
    centres = (np.arange(n_bins) + 0.5) / n_bins
    out = {}
    with inf._quiet_nan_warnings():
        for name, lo, hi in SPANS:
            sel = (centres >= lo) & (centres < hi) if hi < 1 else (centres >= lo)
            out[name] = np.nanmean(values[..., sel, :], axis=-2)
    out[TREND] = out["second half"] - out["first half"]
    return out


def _span_ci(draws: np.ndarray | None, level: float) -> tuple[float, float, float]:
    """Percentile CI and bootstrap p of one span's draws (NaNs without a bootstrap)."""
    if draws is None:
        return np.nan, np.nan, np.nan
    lo, hi = inf.percentile_ci(draws[:, None], level)
    return lo[0], hi[0], inf.bootstrap_pvalue(draws[:, None])[0]


def _span_bounds(name: str) -> tuple[float, float]:
    return next(((lo, hi) for n, lo, hi in SPANS if n == name), (0.0, 1.0))


def contrast(
    group_a: rsatoolbox.rdm.RDMs | Sequence[rsatoolbox.rdm.RDMs],
    group_b: rsatoolbox.rdm.RDMs | Sequence[rsatoolbox.rdm.RDMs],
    references: Mapping[str, rsatoolbox.rdm.RDMs] | rsatoolbox.rdm.RDMs,
    *,
    label_a: str | None = None,
    label_b: str | None = None,
    n_bins: int = 5,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    store=None,
    progress: bool = False,
) -> pd.DataFrame:
    """Group A minus group B in RSA at matched relative depth, with paired bootstrap CIs.

    Layers are binned by ``rel_depth`` into ``n_bins`` equal bins; a model's value in a
    bin is the mean RSA of its distinct layers there, a group's value the mean over its
    models. Every model is resampled with the *same* stimulus draws, so the CI of the
    difference reflects only what differs between the groups. p: two-sided bootstrap p of
    diff = 0; q: BH across bins per reference. E.g. CLIP vs supervised (same
    architecture) or ResNet vs ViT (same training).

    Besides the bins (``span`` empty), rows with ``span`` "first half", "second half",
    "all depths" and "second − first half" give the claim-level differences (mean over the
    span's bins, from the same draws; ``bin`` = -1, no q: they are not in the FDR family).
    """
    ga, gb = _group_list(group_a), _group_list(group_b)
    if not ga or not gb:
        raise RSAInputError("contrast needs at least one model in each group")
    refs = _references(references)
    ref0 = next(iter(refs.values()))
    for rd in ga + gb:
        for name, ref in refs.items():
            check_same_stimuli(rd, ref, f"layer RDMs of {_label(rd, 'a model')}", f"reference {name!r}")
    label_a = label_a or " + ".join(_label(r, "A") for r in ga)
    label_b = label_b or " + ".join(_label(r, "B") for r in gb)

    def compute() -> pd.DataFrame:
        n = ref0.n_cond
        ref_vecs = np.vstack([r.get_vectors() for r in refs.values()])
        counts = inf.bootstrap_counts(n, n_bootstrap, seed + 1) if n_bootstrap else None
        oa, ba, pa = _binned_group(ga, ref_vecs, counts, n_bins, progress)
        ob, bb, pb = _binned_group(gb, ref_vecs, counts, n_bins, progress)
        span_obs = _span_values(oa - ob, n_bins)
        span_a, span_b = _span_values(oa, n_bins), _span_values(ob, n_bins)
        span_boot = _span_values(ba - bb, n_bins) if n_bootstrap else None
        rows = []
        for j, name in enumerate(refs):
            diff = oa[:, j] - ob[:, j]
            if n_bootstrap:
                d = ba[:, :, j] - bb[:, :, j]
                lo, hi = inf.percentile_ci(d, level)
                p = inf.bootstrap_pvalue(d)
            else:
                lo = hi = p = np.full(n_bins, np.nan)
            for b in range(n_bins):
                rows.append({
                    "group_a": label_a, "group_b": label_b, "reference": name, "bin": b, "span": "",
                    "bin_low": b / n_bins, "bin_high": (b + 1) / n_bins, "rel_depth": (b + 0.5) / n_bins,
                    "rho_a": oa[b, j], "rho_b": ob[b, j], "diff": diff[b],
                    "ci_low": lo[b], "ci_high": hi[b], "p": p[b], "n_stimuli": n,
                    "reason": "" if (pa[b, j] and pb[b, j]) else "no layers (with defined RSA) of one group in this depth bin",
                })
            for span in [s[0] for s in SPANS] + [TREND]:
                slo, shi, sp = _span_ci(span_boot[span][:, j] if n_bootstrap else None, level)
                blo, bhi = _span_bounds(span)
                rows.append({
                    "group_a": label_a, "group_b": label_b, "reference": name, "bin": -1, "span": span,
                    "bin_low": blo, "bin_high": bhi, "rel_depth": np.nan,
                    "rho_a": span_a[span][j], "rho_b": span_b[span][j], "diff": span_obs[span][j],
                    "ci_low": slo, "ci_high": shi, "p": sp, "n_stimuli": n,
                    "reason": "" if np.isfinite(span_obs[span][j]) else "no depth bin with layers of both groups",
                })
        out = pd.DataFrame(rows)
        q = pd.Series(np.nan, index=out.index)
        bins_only = out[out["span"] == ""]
        for _, idx in bins_only.groupby("reference").groups.items():
            q.loc[idx] = inf.fdr_bh(out.loc[idx, "p"].to_numpy())
        out["q"] = q
        return out

    inputs = {"a": [_rdm_ingredient(r) for r in ga], "b": [_rdm_ingredient(r) for r in gb],
              "refs": {k: _rdm_ingredient(v) for k, v in refs.items()}, "la": label_a, "lb": label_b,
              "bins": n_bins, "n_boot": n_bootstrap, "level": level, "seed": seed, "spans": 1}
    return _cached(store, "rsa_contrast", inputs, compute)


def span_rsa(
    group: rsatoolbox.rdm.RDMs | Sequence[rsatoolbox.rdm.RDMs],
    references: Mapping[str, rsatoolbox.rdm.RDMs] | rsatoolbox.rdm.RDMs,
    *,
    n_bins: int = 10,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    store=None,
) -> pd.DataFrame:
    """Claim-level RSA of one group of models over spans of depth (first half, second half,
    all depths, second − first half): the mean over depth bins of the group's binned RSA,
    with a stimulus-bootstrap CI and p (same draws as every other table with this seed).
    Why: a claim such as "networks suppress saliency early" is about a span, and needs one
    estimate with one interval, not a count of significant layers."""
    g = _group_list(group)
    if not g:
        raise RSAInputError("span_rsa needs at least one model")
    refs = _references(references)
    for rd in g:
        _check_against_references(rd, refs)

    def compute() -> pd.DataFrame:
        n = next(iter(refs.values())).n_cond
        ref_vecs = np.vstack([r.get_vectors() for r in refs.values()])
        counts = inf.bootstrap_counts(n, n_bootstrap, seed + 1) if n_bootstrap else None
        o, b, _ = _binned_group(g, ref_vecs, counts, n_bins)
        so = _span_values(o, n_bins)
        sb = _span_values(b, n_bins) if n_bootstrap else None
        rows = []
        for j, name in enumerate(refs):
            for span in [s[0] for s in SPANS] + [TREND]:
                lo, hi, p = _span_ci(sb[span][:, j] if n_bootstrap else None, level)
                rows.append(dict(models=" + ".join(_label(r, "model") for r in g), reference=name, span=span,
                                 rho=so[span][j], ci_low=lo, ci_high=hi, p=p, n_stimuli=n))
        return pd.DataFrame(rows)

    inputs = {"g": [_rdm_ingredient(r) for r in g], "refs": {k: _rdm_ingredient(v) for k, v in refs.items()},
              "bins": n_bins, "n_boot": n_bootstrap, "level": level, "seed": seed}
    return _cached(store, "rsa_span", inputs, compute)


# ----------------------------------------------------------------------------- summaries
def distinct_layers(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of layers whose RDM is not an exact repeat of the previous layer's (each
    distinct RDM counted once in summaries); tables without ``duplicate_of`` pass whole."""
    if "duplicate_of" not in table.columns:
        return table
    return table[table["duplicate_of"].fillna("") == ""]


def duplicate_note(table: pd.DataFrame) -> str:
    """One line listing the layers that repeat an earlier layer's RDM (once per model)."""
    if "duplicate_of" not in table.columns:
        return ""
    d = table[table["duplicate_of"].fillna("") != ""].drop_duplicates(["model", "layer"])
    if d.empty:
        return ""
    per = d.groupby("model", sort=False).apply(
        lambda g: f"{g.name}: " + ", ".join(f"{a} = {b}" for a, b in zip(g["layer"], g["duplicate_of"])),
        include_groups=False)
    return ("Layers whose RDM equals the previous layer's exactly (one test, counted once): "
            + "; ".join(per) + ".")


def block_summary(table: pd.DataFrame, value: str = "rho", alpha: float = 0.05,
                  rule: str = "all_layers") -> pd.DataFrame:
    """Mean ± SEM of ``value`` over the layers in each block (the paper's per-block view);
    ``n_significant`` counts layers with q < ``alpha``. ``rule="original"`` (parameter
    ``summary_rule``) keeps only layers inside a bottleneck / transformer block, as the
    original did (no stem, no head: :func:`lib.summaries.block_of`)."""
    from lib.summaries import RULES, block_of

    if rule not in RULES:
        raise ValueError(f"summary_rule must be one of {list(RULES)}, got {rule!r}")
    keys = [c for c in ("model", "condition", "reference", "control") if c in table.columns]
    table = distinct_layers(table)
    if rule == "original":
        table = table[table["layer"].map(block_of).notna()]

    def agg(g: pd.DataFrame) -> pd.Series:
        v = g[value].dropna()
        return pd.Series({
            "mean": v.mean() if len(v) else np.nan,
            "sem": v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.nan,
            "n_layers": len(g),
            "rel_depth": g["rel_depth"].mean(),
            "depth": g["depth"].min(),
            "n_significant": int((g["q"] < alpha).sum()) if "q" in g else 0,
        })

    out = table.groupby(keys + ["block"], sort=False).apply(agg, include_groups=False).reset_index()
    return out.sort_values(keys + ["depth"]).reset_index(drop=True)


def suppression_summary(table: pd.DataFrame, reference: str = "saliency", alpha: float = 0.05) -> pd.DataFrame:
    """Per model: where RSA with ``reference`` is significantly negative (q < alpha and the
    CI below zero), the first such relative depth, and how far it goes (the minimum)."""
    rows = []
    t = distinct_layers(table[table["reference"] == reference])
    for model, g in t.groupby("model", sort=False):
        g = g.sort_values("depth")
        sig = (g["q"] < alpha) & (g["ci_high"] < 0) & (g["rho"] < 0)
        pos = (g["q"] < alpha) & (g["ci_low"] > 0) & (g["rho"] > 0)
        valid = g.dropna(subset=["rho"])
        imin = valid["rho"].idxmin() if len(valid) else None
        rows.append({
            "model": model, "n_layers": len(g), "n_negative": int(sig.sum()), "n_positive": int(pos.sum()),
            "first_negative_rel_depth": float(g.loc[sig, "rel_depth"].iloc[0]) if sig.any() else np.nan,
            "first_negative_layer": g.loc[sig, "layer"].iloc[0] if sig.any() else "",
            "min_rho": float(g.loc[imin, "rho"]) if imin is not None else np.nan,
            "min_rho_layer": g.loc[imin, "layer"] if imin is not None else "",
            "min_rho_rel_depth": float(g.loc[imin, "rel_depth"]) if imin is not None else np.nan,
            "min_rho_ci_low": float(g.loc[imin, "ci_low"]) if imin is not None else np.nan,
            "min_rho_ci_high": float(g.loc[imin, "ci_high"]) if imin is not None else np.nan,
            "n_undefined": int(g["rho"].isna().sum()),
        })
    return pd.DataFrame(rows)
