"""Reference features as rsatoolbox RDMs, and how confounded two references are.

Saliency: each image's map resized to 224×224 (bicubic) and flattened, cosine distance.
Semantics: cosine distance between mean caption embeddings. Which references exist is
:mod:`lib.references`' registry; this module holds the arithmetic.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import rsatoolbox

from lib.gram import features_gram, rdm_from_gram, upper

REFERENCE_SIZE = 224


def saliency_features(maps: Sequence[np.ndarray], size: int = REFERENCE_SIZE) -> np.ndarray:
    """(n, size*size) float32: maps resized bicubic to size×size, flattened."""
    return np.stack([cv2.resize(np.asarray(m, np.float32), (size, size), interpolation=cv2.INTER_CUBIC).ravel()
                     for m in maps]).astype(np.float32)


def features_rdm(features: np.ndarray, ids: Sequence[str], name: str, metric: str = "cosine") -> rsatoolbox.rdm.RDMs:
    """A reference RDM over ``ids`` from per-image features (one row per id)."""
    from lib.image_set import IMAGE_ID

    ids = [str(i) for i in ids]
    if len(features) != len(ids):
        raise ValueError(f"{name} reference: {len(features)} feature rows for {len(ids)} image ids")
    if len(ids) < 3:
        raise ValueError(f"{name} reference needs at least 3 images, got {len(ids)}")
    gram, sums, p = features_gram(features)
    square = rdm_from_gram(gram, metric, row_sums=sums, n_features=p)
    return rsatoolbox.rdm.RDMs(upper(square)[None, :], dissimilarity_measure=metric,
                               rdm_descriptors={"reference": [name]},
                               pattern_descriptors={IMAGE_ID: ids})


def saliency_rdm(maps: Sequence[np.ndarray], ids: Sequence[str]) -> rsatoolbox.rdm.RDMs:
    """Saliency reference RDM over ``ids`` from their (baseline) saliency maps."""
    return features_rdm(saliency_features(maps), ids, "saliency")


def semantic_rdm(embeddings: np.ndarray, ids: Sequence[str]) -> rsatoolbox.rdm.RDMs:
    """Semantic reference RDM from mean caption embeddings (n, d)."""
    return features_rdm(np.asarray(embeddings, np.float64), ids, "semantic")


def rdm_confound(a: rsatoolbox.rdm.RDMs, b: rsatoolbox.rdm.RDMs, n_bootstrap: int = 1000,
                 n_permutations: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, float]:
    """Spearman ρ between two single RDMs over the same images, with a bootstrap CI over
    images (pairs of a resampled image with itself left out) and a permutation p-value
    (image labels of ``b`` shuffled)."""
    from lib.rsa import spearman_matrix

    va, vb = a.get_vectors()[0], b.get_vectors()[0]
    n = a.n_cond
    from lib.image_set import check_aligned, rdm_ids

    check_aligned(rdm_ids(a), rdm_ids(b), "the first reference RDM", "the second")
    rho = float(spearman_matrix(va, vb)[0, 0])
    rng = np.random.default_rng(seed)
    sa, sb = a.get_matrices()[0], b.get_matrices()[0]
    iu = np.triu_indices(n, k=1)
    boots = []
    for _ in range(n_bootstrap):
        idx = rng.integers(0, n, n)
        ii, jj = idx[iu[0]], idx[iu[1]]
        keep = ii != jj
        x, y = sa[ii[keep], jj[keep]], sb[ii[keep], jj[keep]]
        boots.append(float(spearman_matrix(x, y)[0, 0]))
    boots = np.array(boots)
    boots = boots[np.isfinite(boots)]
    perms = np.stack([sb[np.ix_(p, p)][iu] for p in (rng.permutation(n) for _ in range(n_permutations))])
    null = spearman_matrix(perms, va)[:, 0]
    p = float((1 + np.sum(np.abs(null) >= abs(rho))) / (1 + len(null)))
    lo, hi = (np.quantile(boots, [alpha / 2, 1 - alpha / 2]) if len(boots) else (np.nan, np.nan))
    return {"rho": rho, "ci_low": float(lo), "ci_high": float(hi), "p": p, "n_images": n,
            "n_bootstrap": int(len(boots)), "n_permutations": n_permutations}
