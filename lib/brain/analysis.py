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
from scipy import stats

from lib.brain.noise_ceiling import noise_ceiling
from lib.brain.rois import RoiRdms
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
    reference, mean, sem, n_subjects, nc_lower, nc_upper), ROIs in file order.
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


def _pearson_ci(r: float, n: int, alpha: float) -> tuple[float, float]:
    """Fisher-z confidence interval of a Pearson r (assumes independent points)."""
    if n < 4 or not np.isfinite(r) or abs(r) >= 1:
        return float("nan"), float("nan")
    z, se = np.arctanh(r), 1 / np.sqrt(n - 3)
    q = stats.norm.ppf(1 - alpha / 2)
    return float(np.tanh(z - q * se)), float(np.tanh(z + q * se))


def cross_layer_link(layer_ref: pd.DataFrame, layer_brain: pd.Series, references=("semantic", "saliency"),
                     n_bootstrap: int = 1000, alpha: float = 0.05, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Across all layers of all models: correlation of each reference RSA with brain RSA.

    ``layer_brain``: one brain RSA per row of ``layer_ref`` (e.g. mean over subjects and
    ROIs). Reports Pearson r with a Fisher-z CI and a layer-bootstrap CI, and, because the
    saliency relation is claimed to be nonlinear, a quadratic fit (R² vs linear R², F-test
    for the added term). Layers of one network are not independent, so the CIs are
    optimistic; the bootstrap over models (when there are >= 5) is reported too.
    Returns (table, fits) where fits[ref] = dict(x, linear, quadratic) for plotting.
    """
    rng = np.random.default_rng(seed)
    y_all = np.asarray(layer_brain, dtype=np.float64)
    rows, fits = [], {}
    for ref in references:
        if ref not in layer_ref.columns:
            continue
        x_all = layer_ref[ref].to_numpy(dtype=np.float64)
        ok = np.isfinite(x_all) & np.isfinite(y_all)
        x, y = x_all[ok], y_all[ok]
        n = len(x)
        if n < 4:
            rows.append(dict(reference=ref, n_layers=n))
            continue
        r = float(np.corrcoef(x, y)[0, 1])
        lo, hi = _pearson_ci(r, n, alpha)
        boots = []
        for _ in range(n_bootstrap):
            i = rng.integers(0, n, n)
            if np.std(x[i]) > 0 and np.std(y[i]) > 0:
                boots.append(np.corrcoef(x[i], y[i])[0, 1])
        b_lo, b_hi = (np.quantile(boots, [alpha / 2, 1 - alpha / 2]) if boots else (np.nan, np.nan))
        models = layer_ref.loc[ok, "model"].to_numpy() if "model" in layer_ref.columns else None
        m_lo = m_hi = np.nan
        if models is not None and len(set(models)) >= 5:
            uniq = np.unique(models)
            mb = []
            for _ in range(n_bootstrap):
                pick = rng.choice(uniq, len(uniq))
                i = np.concatenate([np.flatnonzero(models == m) for m in pick])
                if np.std(x[i]) > 0 and np.std(y[i]) > 0:
                    mb.append(np.corrcoef(x[i], y[i])[0, 1])
            m_lo, m_hi = np.quantile(mb, [alpha / 2, 1 - alpha / 2])
        lin = np.polyfit(x, y, 1)
        quad = np.polyfit(x, y, 2)
        ss_tot = float(np.sum((y - y.mean()) ** 2))
        ss_lin = float(np.sum((y - np.polyval(lin, x)) ** 2))
        ss_quad = float(np.sum((y - np.polyval(quad, x)) ** 2))
        f = (ss_lin - ss_quad) / (ss_quad / (n - 3)) if ss_quad > 0 and n > 3 else np.nan
        p_quad = float(stats.f.sf(f, 1, n - 3)) if np.isfinite(f) else np.nan
        rows.append(dict(reference=ref, n_layers=n, r=r, ci_low=lo, ci_high=hi, boot_low=float(b_lo),
                         boot_high=float(b_hi), model_boot_low=float(m_lo), model_boot_high=float(m_hi),
                         p=float(stats.pearsonr(x, y)[1]),
                         r2_linear=1 - ss_lin / ss_tot if ss_tot > 0 else np.nan,
                         r2_quadratic=1 - ss_quad / ss_tot if ss_tot > 0 else np.nan, p_quadratic_term=p_quad))
        fits[ref] = dict(x=x, y=y, linear=lin, quadratic=quad)
    return pd.DataFrame(rows), fits


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
