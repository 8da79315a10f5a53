"""Noise ceilings: how well any model could do given the between-subject variability.

The paper's bounds (leave one subject out, Spearman): the lower bound correlates each
subject's RDM with the mean RDM of the *other* subjects, the upper bound with the mean of
*all* subjects (itself included), each averaged over subjects. rsatoolbox's
``boot_noise_ceiling`` (same idea, but it pools rank-transformed RDMs) is the alternative.
"""

from __future__ import annotations

import numpy as np
import rsatoolbox

from lib.rsa import spearman_matrix

METHODS = ("loso", "bootstrap")


def noise_ceiling(rdms: rsatoolbox.rdm.RDMs, method: str = "loso") -> tuple[float, float]:
    """(lower, upper) noise-ceiling bounds of an RDMs object holding one RDM per subject."""
    if method not in METHODS:
        raise ValueError(f"noise-ceiling method must be one of {list(METHODS)}, got {method!r}")
    n = rdms.n_rdm
    if n < 2:
        raise ValueError(
            f"a noise ceiling needs RDMs of at least 2 subjects, got {n}; select more subjects (-p subjects=[...])"
        )
    if method == "bootstrap":
        lower, upper = rsatoolbox.inference.boot_noise_ceiling(rdms, method="spearman", rdm_descriptor="index")
        return float(lower), float(upper)
    v = rdms.get_vectors().astype(np.float64)
    total = v.sum(axis=0)
    others = (total[None, :] - v) / (n - 1)
    lower = np.diag(spearman_matrix(v, others))
    upper = spearman_matrix(v, (total / n)[None, :])[:, 0]
    return float(np.mean(lower)), float(np.mean(upper))
