"""RDM arithmetic from Gram matrices: the one place cosine/correlation distances are computed.

Why Gram matrices: an RDM over n images only needs the n x n inner products of their
flattened activations, so the engine can turn each layer's output into G = X Xᵀ on the
spot and drop the activation. Cosine distance is 1 - G_ij / sqrt(G_ii G_jj); correlation
distance is the same on row-centred data, whose Gram follows from G, the row sums s and
the feature count p: Gc = G - s sᵀ / p.
"""

from __future__ import annotations

import numpy as np

METRICS = ("cosine", "correlation")


class ZeroNormError(ValueError):
    """Some rows have zero norm (after centring, for correlation): their distance is undefined."""

    def __init__(self, rows: list[int], metric: str):
        self.rows = rows
        self.metric = metric
        super().__init__(f"rows {rows} have zero norm, so their {metric} distance is undefined")


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"unknown RDM metric {metric!r}; choose one of {list(METRICS)}")


def centre_gram(gram: np.ndarray, row_sums: np.ndarray, n_features: int) -> np.ndarray:
    """Gram matrix of the row-centred data, from the raw Gram, row sums and feature count."""
    s = np.asarray(row_sums, dtype=np.float64)
    return np.asarray(gram, dtype=np.float64) - np.outer(s, s) / n_features


def rdm_from_gram(
    gram: np.ndarray,
    metric: str = "cosine",
    row_sums: np.ndarray | None = None,
    n_features: int | None = None,
    rel_tol: float = 1e-12,
) -> np.ndarray:
    """Square (n, n) distance matrix from a Gram matrix; correlation needs row sums and p."""
    check_metric(metric)
    g = np.asarray(gram, dtype=np.float64)
    if metric == "correlation":
        if row_sums is None or n_features is None:
            raise ValueError("correlation distance needs the row sums and the number of features")
        g = centre_gram(g, row_sums, n_features)
    sq = np.diag(g).copy()
    scale = max(float(np.max(np.abs(sq))), 1e-300) if sq.size else 1.0
    zero = np.flatnonzero(sq <= rel_tol * scale)
    if zero.size:
        raise ZeroNormError(zero.tolist(), metric)
    norms = np.sqrt(sq)
    d = 1.0 - g / np.outer(norms, norms)
    np.fill_diagonal(d, 0.0)
    return (d + d.T) / 2.0  # exact symmetry despite rounding


def features_gram(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(Gram, row sums, p) of an (n, ...) array, flattened per row, in float64."""
    x = np.asarray(features).reshape(len(features), -1).astype(np.float64, copy=False)
    return x @ x.T, x.sum(axis=1), x.shape[1]


def upper(rdm: np.ndarray) -> np.ndarray:
    """Upper triangle (k=1) of a square RDM, row-major: rsatoolbox's vector order."""
    n = rdm.shape[0]
    return rdm[np.triu_indices(n, k=1)]
