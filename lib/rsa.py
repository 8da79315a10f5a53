"""Representational similarity analysis, thin over rsatoolbox.

The core arithmetic is vectorised: RDMs are compared as rank-transformed upper triangles,
so a Spearman correlation is a Pearson correlation of ranks and many comparisons become
one matrix product.
"""

from __future__ import annotations

import numpy as np
import rsatoolbox
from scipy.stats import rankdata

from lib.gram import features_gram, rdm_from_gram, upper


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


def _zscored_ranks(vectors: np.ndarray) -> np.ndarray:
    """Rows ranked (ties averaged), centred and scaled to unit norm; constant rows -> NaN."""
    r = rankdata(np.atleast_2d(vectors), axis=1)
    r = r - r.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(r, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, r / norm, np.nan)


def spearman_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlations between every row of ``a`` (k, m) and every row of ``b`` (l, m).

    Rows are RDM upper triangles over the same stimulus pairs. A constant row (zero
    variance) yields NaN in its row/column; callers must report why.
    """
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"RDM vectors differ in length ({a.shape[1]} vs {b.shape[1]} pairs): not the same stimuli")
    return _zscored_ranks(a) @ _zscored_ranks(b).T
