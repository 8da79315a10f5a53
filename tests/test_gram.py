"""RDMs from Gram matrices equal scipy's distances."""

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from lib.gram import ZeroNormError, features_gram, rdm_from_gram, upper
from lib.rsa import rdm


@pytest.mark.parametrize("metric", ["cosine", "correlation"])
def test_rdm_from_gram_matches_scipy(metric):
    x = np.random.default_rng(0).normal(size=(12, 3, 7))
    gram, sums, p = features_gram(x)
    d = rdm_from_gram(gram, metric, row_sums=sums, n_features=p)
    np.testing.assert_allclose(d, squareform(pdist(x.reshape(12, -1), metric)), atol=1e-12)
    np.testing.assert_allclose(upper(d), pdist(x.reshape(12, -1), metric), atol=1e-12)


def test_public_rdm_helper_matches_scipy_and_rsatoolbox_order():
    x = np.random.default_rng(1).normal(size=(9, 20)).astype(np.float32)
    r = rdm(x, "cosine")
    np.testing.assert_allclose(r.get_vectors()[0], pdist(x.astype(np.float64), "cosine"), atol=1e-6)
    np.testing.assert_allclose(r.get_matrices()[0], squareform(pdist(x.astype(np.float64), "cosine")), atol=1e-6)


def test_zero_norm_rows_are_named():
    x = np.random.default_rng(2).normal(size=(5, 4))
    x[3] = 0
    with pytest.raises(ZeroNormError) as err:
        rdm_from_gram(*features_gram(x)[:1], "cosine")
    assert err.value.rows == [3]
    x[3] = 2.0  # constant row: fine for cosine, undefined for correlation
    gram, sums, p = features_gram(x)
    with pytest.raises(ZeroNormError):
        rdm_from_gram(gram, "correlation", row_sums=sums, n_features=p)


def test_unknown_metric():
    with pytest.raises(ValueError, match="cosine"):
        rdm_from_gram(np.eye(3), "euclid")
