"""Brain analyses: reference and model RSA per ROI, noise ceilings, best layers, and the
cross-layer link between a layer's semantic / saliency RSA and its brain RSA.

Why vectorised: at paper scale there are ~1,500 layers x 32 ROIs x 7 subjects RDM
comparisons over ~380k stimulus pairs. Each RDM vector is ranked once (z-scored ranks in
float32), and every Spearman correlation is a dot product, so the whole table is a few
matrix products over layer chunks instead of ~340k calls of ``scipy.stats.spearmanr``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import rsatoolbox

from lib.brain.noise_ceiling import noise_ceiling
from lib.brain.rois import RoiRdms
from lib import inference as inf
from lib.inference import ranked

LAYER_COLUMNS = ("model", "layer", "call_index", "depth", "rel_depth", "block", "type")


def _sem(x: pd.Series) -> float:
    x = x.dropna()
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def noise_ceilings(roi: RoiRdms, method: str = "loso") -> pd.DataFrame:
    """Lower/upper noise ceiling of every kept ROI (over the subjects that have it)."""
    rows = []
    for _, r in roi.rois.iterrows():
        lower, upper = noise_ceiling(roi.rdms(r["roi"]), method)
        rows.append(dict(roi=r["roi"], family=r["family"], n_subjects=r["n_subjects"], nc_lower=lower, nc_upper=upper))
    return pd.DataFrame(rows)


def _roi_matrix(roi: RoiRdms) -> tuple[np.ndarray, pd.DataFrame]:
    """All (ROI, subject) RDM vectors ranked, with their labels; ranked once per RoiRdms
    object (every model is compared with the same ROI ranks)."""
    cached = getattr(roi, "_ranked_cache", None)
    if cached is not None:
        return cached
    mats, labels = [], []
    fam = dict(zip(roi.rois["roi"], roi.rois["family"]))
    for name in roi.rois["roi"]:
        mats.append(ranked(roi.vectors[name]))
        labels += [dict(roi=name, family=fam[name], subject=s) for s in roi.subjects[name]]
    out = (np.concatenate(mats), pd.DataFrame(labels))
    roi._ranked_cache = out
    return out


def reference_rsa(roi: RoiRdms, references: dict[str, np.ndarray], nc: pd.DataFrame | None = None,
                  nc_method: str = "loso") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Spearman RSA of each ROI with each reference RDM vector (same image order as ``roi``).

    Returns (per subject: roi, family, subject, reference, rho) and (summary: roi, family,
    reference, mean, sem, n_subjects, nc_lower, nc_upper, frac_nc_lower), ROIs in file
    order; ``frac_nc_lower`` is the mean as a fraction of the lower noise ceiling.
    """
    roi_mat, labels = _roi_matrix(roi)
    names = list(references)
    ref = ranked(np.stack([np.asarray(references[k], dtype=np.float64) for k in names]))
    if ref.shape[1] != roi_mat.shape[1]:
        raise ValueError(f"reference RDMs have {ref.shape[1]} pairs, ROI RDMs {roi_mat.shape[1]}: not the same images")
    rho = roi_mat.astype(np.float64) @ ref.T.astype(np.float64)
    per = pd.concat([labels.assign(reference=k, rho=rho[:, i]) for i, k in enumerate(names)], ignore_index=True)
    summary = (per.groupby(["roi", "family", "reference"], sort=False)["rho"]
               .agg(mean="mean", sem=_sem, n_subjects="count").reset_index())
    nc = noise_ceilings(roi, nc_method) if nc is None else nc
    summary = summary.merge(nc[["roi", "nc_lower", "nc_upper"]], on="roi", how="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        summary["frac_nc_lower"] = np.where(summary["nc_lower"] > 0, summary["mean"] / summary["nc_lower"], np.nan)
    return per, summary


def model_brain_rsa(layer_rdms: rsatoolbox.rdm.RDMs, roi: RoiRdms, references: dict[str, np.ndarray] | None = None,
                    chunk: int = 64) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every layer x every ROI x every subject Spearman RSA (and each layer's RSA with the
    references, e.g. saliency and semantic RDMs of the same images).

    Returns (brain: layer descriptors + roi, family, subject, rho) and (layer_ref: layer
    descriptors + one column per reference).
    """
    roi_mat, labels = _roi_matrix(roi)
    desc = {k: list(layer_rdms.rdm_descriptors[k]) for k in LAYER_COLUMNS if k in layer_rdms.rdm_descriptors}
    vectors = layer_rdms.dissimilarities
    if vectors.shape[1] != roi_mat.shape[1]:
        raise ValueError(
            f"layer RDMs have {vectors.shape[1]} pairs but ROI RDMs have {roi_mat.shape[1]}: the model RDMs "
            "must be computed on the brain image set, in its NSD-id order")
    names = list(references or {})
    ref = ranked(np.stack([references[k] for k in names])) if names else None
    out, ref_out = [], []
    for start in range(0, len(vectors), chunk):
        lay = ranked(vectors[start:start + chunk])
        out.append((roi_mat @ lay.T).T)  # this operand order is the fast BLAS path here
        if ref is not None:
            ref_out.append((ref @ lay.T).T)
    rho = np.concatenate(out).astype(np.float64)  # (layers, roi x subject)
    n_layers = len(vectors)
    layer_df = pd.DataFrame(desc) if desc else pd.DataFrame({"layer": [str(i) for i in range(n_layers)]})
    brain = pd.concat(
        [layer_df.loc[np.repeat(np.arange(n_layers), len(labels))].reset_index(drop=True),
         pd.concat([labels] * n_layers, ignore_index=True)], axis=1)
    brain["rho"] = rho.reshape(-1)
    layer_ref = layer_df.copy()
    if ref is not None:
        vals = np.concatenate(ref_out).astype(np.float64)
        for i, k in enumerate(names):
            layer_ref[k] = vals[:, i]
    return brain, layer_ref


def summarise_layers(brain: pd.DataFrame, nc: pd.DataFrame | None = None) -> pd.DataFrame:
    """Mean ± SEM over subjects per (layer, ROI); with ``nc``, also the fraction of the lower ceiling."""
    keys = [c for c in LAYER_COLUMNS if c in brain.columns] + ["roi", "family"]
    out = brain.groupby(keys, sort=False, dropna=False)["rho"].agg(mean="mean", sem=_sem, n_subjects="count").reset_index()
    if nc is not None:
        out = out.merge(nc[["roi", "nc_lower", "nc_upper"]], on="roi", how="left")
        with np.errstate(divide="ignore", invalid="ignore"):
            out["frac_nc_lower"] = out["mean"] / out["nc_lower"]
    return out


def best_layers(summary: pd.DataFrame) -> pd.DataFrame:
    """The layer with the highest mean RSA per (model, ROI), with its relative depth."""
    idx = summary.groupby(["model", "roi"], sort=False)["mean"].idxmax()
    cols = [c for c in ("model", "roi", "family", "layer", "depth", "rel_depth", "block", "mean", "sem",
                        "nc_lower", "nc_upper", "frac_nc_lower") if c in summary.columns]
    return summary.loc[idx.dropna().astype(int), cols].reset_index(drop=True)


def min_networks(alpha: float) -> int:
    """Fewest networks for which the network-level test can reach ``alpha``.

    Why this number: the p-value comes from flipping the signs of the per-network
    correlations (exact over all 2^k patterns), whose smallest two-sided value is 2/2^k;
    with 5 networks that is 0.0625 > 0.05, so no result could be significant. The same
    handful of networks also makes a percentile bootstrap over networks meaningless.
    """
    return int(np.ceil(np.log2(2.0 / alpha)))


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r along the last axis (NaN where either side is constant)."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    den = np.sqrt((xc * xc).sum(-1) * (yc * yc).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-15, (xc * yc).sum(-1) / den, np.nan)


def network_bootstrap(x: np.ndarray, y: np.ndarray, network: np.ndarray, n_bootstrap: int = 1000,
                      seed: int = 0) -> np.ndarray:
    """Hierarchical bootstrap of the pooled link: (n_bootstrap,) mean Fisher-z of the
    per-network correlations, networks resampled with replacement and, inside each drawn
    network, its layers resampled with replacement (every drawn slot its own draw).

    Why two levels: the networks are the independent units (layers of one network share
    weights and inputs), and a network's own r is itself uncertain."""
    rng = np.random.default_rng(seed)
    names = list(dict.fromkeys(network))
    k = len(names)
    pick = rng.integers(0, k, size=(n_bootstrap, k))
    z = np.full((n_bootstrap, k), np.nan)
    for g, name in enumerate(names):
        sel = np.flatnonzero(network == name)
        slots = np.argwhere(pick == g)  # (draw, slot) pairs that drew this network
        if not len(slots):
            continue
        idx = rng.integers(0, len(sel), size=(len(slots), len(sel)))
        r = _pearson_rows(x[sel][idx], y[sel][idx])
        z[slots[:, 0], slots[:, 1]] = np.arctanh(np.clip(r, -0.999999, 0.999999))
    with np.errstate(invalid="ignore"), inf._quiet_nan_warnings():
        return np.nanmean(z, axis=1)


def _fit_predict(x_train, y_train, x_test, degree: int) -> np.ndarray:
    return np.polyval(np.polyfit(x_train, y_train, degree), x_test)


def leave_one_network_out(x: np.ndarray, y: np.ndarray, network: np.ndarray) -> pd.DataFrame:
    """Linear vs quadratic by prediction: fit both on all networks but one, predict the
    held-out network's layers; per network the two mean squared errors and the quadratic's
    gain, 1 - MSE_quadratic / MSE_linear (> 0: the curvature generalises to a new network)."""
    rows = []
    for name in dict.fromkeys(network):
        test = network == name
        if (~test).sum() < 4 or test.sum() < 1:
            continue
        e_lin = np.mean((y[test] - _fit_predict(x[~test], y[~test], x[test], 1)) ** 2)
        e_quad = np.mean((y[test] - _fit_predict(x[~test], y[~test], x[test], 2)) ** 2)
        rows.append(dict(network=name, mse_linear=e_lin, mse_quadratic=e_quad,
                         gain=1 - e_quad / e_lin if e_lin > 0 else np.nan))
    return pd.DataFrame(rows, columns=["network", "mse_linear", "mse_quadratic", "gain"])


def cross_layer_link(layer_ref: pd.DataFrame, layer_brain: pd.Series, references=("semantic", "saliency"),
                     n_bootstrap: int = 1000, alpha: float = 0.05, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Does a layer's reference RSA track its brain RSA -- judged with the *network* as the unit.

    ``layer_brain``: one brain RSA per row of ``layer_ref`` (e.g. mean over subjects and
    ROIs); ``layer_ref["model"]`` names each layer's network. Layers of one network are
    not independent, so nothing here treats ~1,500 layers as 1,500 observations:

    - per network: Pearson r over its layers (``fits[ref]["networks"]``);
    - pooled: r = tanh(mean Fisher-z of the per-network r), every network weighted
      equally; CI: hierarchical bootstrap (:func:`network_bootstrap`), percentile on the
      z scale; p: exact sign-flip test of the per-network z (:func:`lib.inference.sign_flip_pvalue`);
    - linear vs nonlinear: leave-one-network-out prediction (:func:`leave_one_network_out`),
      mean gain of the quadratic over networks with a t interval and a sign-flip p.

    With fewer than :func:`min_networks` networks the network-level numbers are NaN and
    ``reason`` says "too few networks (k) for a network-level test".
    Returns (table, fits): fits[ref] = dict(x, y, network, networks, lono, linear, quadratic).
    """
    y_all = np.asarray(layer_brain, dtype=np.float64)
    nets_all = (layer_ref["model"].astype(str).to_numpy() if "model" in layer_ref.columns
                else np.full(len(layer_ref), "network"))
    need = min_networks(alpha)
    rows, fits = [], {}
    for ref in references:
        if ref not in layer_ref.columns:
            continue
        x_all = layer_ref[ref].to_numpy(dtype=np.float64)
        ok = np.isfinite(x_all) & np.isfinite(y_all)
        x, y, net = x_all[ok], y_all[ok], nets_all[ok]
        per = pd.DataFrame([dict(network=g, n_layers=int((net == g).sum()),
                                 r=float(_pearson_rows(x[net == g], y[net == g])) if (net == g).sum() > 2 else np.nan)
                            for g in dict.fromkeys(net)], columns=["network", "n_layers", "r"])
        usable = per.dropna(subset=["r"])
        k = len(usable)
        row = dict(reference=ref, n_networks=k, n_layers=int(len(x)), r=np.nan, ci_low=np.nan, ci_high=np.nan,
                   p=np.nan, p_floor=inf.sign_flip_floor(k) if k else np.nan, lono_gain=np.nan,
                   lono_gain_ci_low=np.nan, lono_gain_ci_high=np.nan, lono_p=np.nan,
                   min_networks=need, reason="")
        lono = leave_one_network_out(x, y, net) if len(per) > 1 else leave_one_network_out(x[:0], y[:0], net[:0])
        if k < need:
            row["reason"] = f"too few networks ({k}) for a network-level test (needs {need})"
        else:
            z = np.arctanh(np.clip(usable["r"].to_numpy(), -0.999999, 0.999999))
            keep = np.isin(net, usable["network"])
            boot = network_bootstrap(x[keep], y[keep], net[keep], n_bootstrap, seed)
            lo, hi = inf.percentile_ci(boot[:, None], 1 - alpha)
            row.update(r=float(np.tanh(z.mean())), ci_low=float(np.tanh(lo[0])), ci_high=float(np.tanh(hi[0])),
                       p=float(inf.sign_flip_pvalue(z)[0]))
            gain = lono["gain"].to_numpy()
            m, glo, ghi = inf.t_interval(gain, 1 - alpha)
            row.update(lono_gain=float(m[0]), lono_gain_ci_low=float(glo[0]), lono_gain_ci_high=float(ghi[0]),
                       lono_p=float(inf.sign_flip_pvalue(gain)[0]))
        rows.append(row)
        fits[ref] = dict(x=x, y=y, network=net, networks=per, lono=lono,
                         linear=np.polyfit(x, y, 1) if len(x) > 1 else np.full(2, np.nan),
                         quadratic=np.polyfit(x, y, 2) if len(x) > 2 else np.full(3, np.nan))
    return pd.DataFrame(rows), fits


# ----------------------------------------------------------------------------- ROI claims
def roi_subject_tests(per_subject: pd.DataFrame, nc: pd.DataFrame | None = None, alpha: float = 0.05,
                      seed: int = 0) -> pd.DataFrame:
    """Each ROI's reference RSA tested across subjects (the independent units).

    Per (ROI, reference): mean over subjects, Student-t CI, exact sign-flip p of
    'mean = 0', BH q across ROIs per reference, and the mean as a fraction of the ROI's
    lower noise ceiling (what a perfect model of that ROI could reach). Also one row per
    ROI with reference "saliency − semantic": the per-subject difference, same tests.
    """
    rows = []
    wide = per_subject.pivot_table(index=["roi", "family", "subject"], columns="reference", values="rho",
                                   sort=False).reset_index()
    refs = [c for c in wide.columns if c not in ("roi", "family", "subject")]
    if {"saliency", "semantic"} <= set(refs):
        wide["saliency − semantic"] = wide["saliency"] - wide["semantic"]
        refs = refs + ["saliency − semantic"]
    for (roi, fam), g in wide.groupby(["roi", "family"], sort=False):
        for ref in refs:
            v = g[ref].to_numpy(dtype=float)
            mean, lo, hi = inf.t_interval(v, 1 - alpha)
            rows.append(dict(roi=roi, family=fam, reference=ref, mean=mean[0], ci_low=lo[0], ci_high=hi[0],
                             p=inf.sign_flip_pvalue(v, seed=seed)[0], n_subjects=int(np.isfinite(v).sum()),
                             p_floor=inf.sign_flip_floor(int(np.isfinite(v).sum()))))
    out = pd.DataFrame(rows)
    out["q"] = np.nan
    for _, idx in out.groupby("reference").groups.items():
        out.loc[idx, "q"] = inf.fdr_bh(out.loc[idx, "p"].to_numpy())
    if nc is not None:
        out = out.merge(nc[["roi", "nc_lower"]], on="roi", how="left")
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = out["mean"] / out["nc_lower"]
        out["frac_nc_lower"] = np.where(out["reference"].str.contains("−") | ~(out["nc_lower"] > 0), np.nan, frac)
    return out


def pooled_subject_contrast(per_subject: pd.DataFrame, rois, a: str, b: str, alpha: float = 0.05) -> dict:
    """Per subject, the mean over ``rois`` of RSA(a) − RSA(b); the mean over subjects with a
    t CI and an exact sign-flip p (subjects are the independent units)."""
    d = per_subject[per_subject.roi.isin(list(rois))]
    wide = d.pivot_table(index="subject", columns="reference", values="rho", aggfunc="mean")
    if a not in wide or b not in wide or wide.empty:
        return _across_subjects(np.zeros(0), alpha)
    return _across_subjects((wide[a] - wide[b]).to_numpy(dtype=float), alpha)


def roi_group_contrast(per_subject: pd.DataFrame, reference: str, rois_a, rois_b, alpha: float = 0.05) -> dict:
    """Per subject, the mean RSA with ``reference`` over ``rois_a`` minus over ``rois_b``
    (e.g. early vs higher visual cortex); tested across subjects like
    :func:`pooled_subject_contrast`."""
    d = per_subject[per_subject.reference == reference]
    mean_a = d[d.roi.isin(list(rois_a))].groupby("subject")["rho"].mean()
    mean_b = d[d.roi.isin(list(rois_b))].groupby("subject")["rho"].mean()
    return _across_subjects((mean_a - mean_b).dropna().to_numpy(dtype=float), alpha)


def _across_subjects(v: np.ndarray, alpha: float) -> dict:
    """Mean of per-subject values with a t CI and an exact sign-flip p."""
    if not np.isfinite(v).any():
        return dict(estimate=np.nan, ci_low=np.nan, ci_high=np.nan, p=np.nan, n_subjects=0)
    mean, lo, hi = inf.t_interval(v, 1 - alpha)
    return dict(estimate=float(mean[0]), ci_low=float(lo[0]), ci_high=float(hi[0]),
                p=float(inf.sign_flip_pvalue(v)[0]), n_subjects=int(np.isfinite(v).sum()))


def planted_recovery(roi: RoiRdms, references: dict[str, np.ndarray], planted: pd.DataFrame) -> pd.DataFrame:
    """Regress each ROI's mean RDM (z-scored) on the z-scored saliency and semantic RDMs
    (non-negative least squares) and compare the saliency share with the planted one."""
    from scipy.optimize import nnls

    z = lambda v: (v - v.mean()) / v.std()  # noqa: E731
    x = np.stack([z(np.asarray(references["saliency"], float)), z(np.asarray(references["semantic"], float))], 1)
    planted = planted.set_index("roi")
    rows = []
    for name, fam in zip(roi.rois["roi"], roi.rois["family"]):
        beta, _ = nnls(x, z(roi.vectors[name].mean(axis=0)))
        share = beta[0] / beta.sum() if beta.sum() > 0 else np.nan
        rows.append(dict(roi=name, family=fam, beta_saliency=beta[0], beta_semantic=beta[1], recovered_sal_share=share,
                         planted_sal_share=planted["sal_share"].get(name, np.nan)))
    return pd.DataFrame(rows)
