"""Vectorised inference for RDM comparisons: permutation p-values, stimulus bootstrap, FDR.

Why this module exists: the original study compared distributions of layer values with
KS / Mann–Whitney tests, which ignore that every layer is measured on the *same* stimuli.
Here each comparison gets its own test, and the tests resample the unit that is actually
random: the stimulus.

- **Permutation** (Mantel-style): relabel the stimuli of the reference RDM (permute its
  rows and columns together). Ranking commutes with relabelling, so the reference is
  ranked once and each permutation is a gather of its z-scored ranks; the null
  correlations of all layers with all permutations are one matrix product.
- **Bootstrap over stimuli**: resample stimuli with replacement; pairs of a stimulus
  with itself are dropped (as rsatoolbox's ``subsample_pattern`` does). A resampled RDM
  vector holds original pair (i, j) exactly ``c_i * c_j`` times (``c`` = how often each
  stimulus was drawn), so Spearman on the resampled vector is a *weighted* rank
  correlation on the original pairs: ranks come from a weighted cumulative sum over each
  vector's (precomputed) sort groups, with ties averaged exactly as ``rankdata`` would on
  the expanded vector. No vector is ever re-sorted, and every layer shares the draw.
- **FDR**: Benjamini–Hochberg, NaN-aware, over *distinct* RDMs: a layer whose RDM equals
  the previous layer's exactly (Dropout at eval, identity) is one test, not two
  (:func:`duplicate_of`), and the number of permutations grows with the number of tests
  (:func:`n_permutations_for`) so that the smallest attainable p (the *floor*,
  :func:`p_floor`) can pass the Benjamini–Hochberg threshold.
- **Partial RSA** (:func:`freedman_lane_null`): Freedman–Lane residual permutation on ranks.
- **Few independent units** (subjects, networks): :func:`sign_flip_pvalue` (exact when all
  2^k sign patterns can be enumerated) and :func:`t_interval`.

Memory: nothing scales with (resamples x pairs) as a whole; bootstrap pair weights and
permuted references are built in blocks sized by :data:`BLOCK_BYTES`, so n = 872 images
(~380k pairs) run in a few hundred MB beyond the layer RDMs themselves.
"""

from __future__ import annotations

import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
from scipy.stats import rankdata

_SIGN = np.uint64(1 << 63)


def _sort_order(row: np.ndarray) -> np.ndarray:
    """Indices that sort a float64 row, via one SIMD sort of 64-bit keys.

    Why: ``np.argsort`` of float64 is ~3x slower than ``np.sort`` of 64-bit integers. The
    float's bits are mapped to an order-preserving unsigned key whose lowest bits are replaced
    by the element's index, so sorting the keys sorts the values and carries the indices.
    Values that agree in all but those low bits may come out in index order; the caller
    checks the result and repairs it (a stable sort of an almost sorted array is cheap).
    """
    m = len(row)
    bits = np.uint64(max(1, int(m - 1).bit_length()))
    u = np.ascontiguousarray(row, dtype=np.float64).view(np.uint64)
    key = u ^ ((np.uint64(0) - (u >> np.uint64(63))) | _SIGN)  # negative: all bits flipped; else sign bit set
    key >>= bits
    key <<= bits
    key |= np.arange(m, dtype=np.uint64)
    key.sort()
    return (key & ((np.uint64(1) << bits) - np.uint64(1))).astype(np.intp)


def _centred(r: np.ndarray) -> np.ndarray:
    r = r - r.mean()
    norm = np.linalg.norm(r)
    return r / norm if norm > 0 else np.full(len(r), np.nan)


def _rank_row(row: np.ndarray, out: np.ndarray, base: np.ndarray) -> None:
    """Write the centred, unit-norm ranks of ``row`` into ``out``. Exact ties are averaged
    (scipy's rankdata); the common tie-free case is one integer sort, one gather and one
    scatter of the precomputed centred ranks ``base``."""
    if not np.isfinite(row).all():
        out[:] = _centred(rankdata(row))
        return
    order = _sort_order(row)
    s = row[order]
    if (s[1:] < s[:-1]).any():  # near-equal values left in index order: repair
        fix = np.argsort(s, kind="stable")
        order, s = order[fix], s[fix]
    if (s[1:] == s[:-1]).any():
        out[:] = _centred(rankdata(row))
    else:
        out[order] = base


def ranked(vectors: np.ndarray, dtype=np.float32, workers: int | None = None) -> np.ndarray:
    """Rows -> centred unit-norm ranks (ties averaged): Spearman = dot product. Constant rows -> NaN."""
    v = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    n_rows, m = v.shape
    out = np.empty(v.shape, dtype=dtype)
    base = _centred(np.arange(1, m + 1, dtype=np.float64)).astype(dtype)
    workers = workers or min(4, os.cpu_count() or 1)

    def one(i: int) -> None:
        _rank_row(v[i], out[i], base)

    if workers > 1 and n_rows > 1 and m > 50_000:
        with ThreadPoolExecutor(workers) as ex:  # numpy's sorts release the GIL
            list(ex.map(one, range(n_rows)))
    else:
        for i in range(n_rows):
            one(i)
    return out


def zscored_ranks(vectors: np.ndarray) -> np.ndarray:
    """Rows ranked (ties averaged), centred and scaled to unit norm; constant rows -> NaN.

    The Pearson correlation of two such rows is their dot product, i.e. Spearman's rho.
    """
    return ranked(vectors, np.float64)


def n_from_pairs(m: int) -> int:
    """Number of stimuli whose RDM upper triangle has ``m`` entries."""
    n = int(round((1 + np.sqrt(1 + 8 * m)) / 2))
    if n * (n - 1) // 2 != m:
        raise ValueError(f"{m} is not the length of an RDM upper triangle (n(n-1)/2 for some n)")
    return n


def _square(vector: np.ndarray, n: int) -> np.ndarray:
    sq = np.zeros((n, n), dtype=np.float64)
    iu, ju = np.triu_indices(n, k=1)
    sq[iu, ju] = vector
    sq[ju, iu] = vector
    return sq


def permutations(n: int, n_perm: int, seed: int) -> np.ndarray:
    """(n_perm, n) stimulus relabellings, seeded; the identity is never among them by design
    of the +1 correction in :func:`permutation_pvalues` (it counts the observed value once)."""
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((n_perm, n)), axis=1)


def permuted_vectors(ref_z: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """(n_perm, m) upper triangles of the reference's z-scored ranks under each relabelling."""
    m = ref_z.shape[-1]
    n = n_from_pairs(m)
    sq = _square(ref_z, n)
    iu, ju = np.triu_indices(n, k=1)
    return sq[perms[:, iu], perms[:, ju]]


def permutation_null(layer_z: np.ndarray, ref_z: np.ndarray, perms: np.ndarray, chunk: int | None = None) -> np.ndarray:
    """(k, n_perm) null Spearman correlations of every layer with the relabelled reference.

    Permuted references are built ``chunk`` at a time (default: as many as fit in
    :data:`BLOCK_BYTES`, counting the index arrays of the gather), so memory does not grow
    with the number of permutations."""
    layer_z = np.atleast_2d(layer_z)
    m = layer_z.shape[1]
    chunk = chunk or max(1, min(250, BLOCK_BYTES // (24 * m)))
    out = np.empty((layer_z.shape[0], len(perms)))
    safe = np.nan_to_num(layer_z)
    for start in range(0, len(perms), chunk):
        pv = permuted_vectors(ref_z, perms[start : start + chunk]).astype(safe.dtype, copy=False)
        out[:, start : start + chunk] = safe @ pv.T
    out[np.isnan(layer_z).any(axis=1)] = np.nan
    return out


def permutation_pvalues(observed: np.ndarray, null: np.ndarray, alternative: str = "two-sided") -> np.ndarray:
    """p = (1 + #null at least as extreme) / (1 + n_perm); NaN where the observation is NaN.

    Two-sided by default: the paper's key effect (saliency *suppression*) is a negative RSA.
    """
    observed = np.asarray(observed, dtype=np.float64)
    null = np.atleast_2d(null)
    tol = 1e-12
    if alternative == "two-sided":
        extreme = np.abs(null) >= np.abs(observed)[:, None] - tol
    elif alternative == "greater":
        extreme = null >= observed[:, None] - tol
    elif alternative == "less":
        extreme = null <= observed[:, None] + tol
    else:
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}")
    p = (1.0 + extreme.sum(axis=1)) / (1.0 + null.shape[1])
    return np.where(np.isnan(observed), np.nan, p)


def bootstrap_counts(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) how often each stimulus is drawn in each resample. The same (n, seed)
    gives the same draws, which is what makes bootstraps *paired* across models/conditions."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    return np.stack([np.bincount(row, minlength=n) for row in idx])


def pair_weights(counts: np.ndarray) -> np.ndarray:
    """(n_boot, m) multiplicity of every original pair in each resample: c_i * c_j.

    Callers with many resamples of many pairs take it a block of draws at a time (as
    :func:`bootstrap_spearman` does): all of them at n = 872 would be ~3 GB per 1,000."""
    counts = np.atleast_2d(counts).astype(np.float64)
    n = counts.shape[1]
    iu, ju = np.triu_indices(n, k=1)
    return counts[:, iu] * counts[:, ju]


class WeightedRanker:
    """Ranks of many vectors under pair weights, from sort orders and tie groups computed once.

    For a weight vector ``w`` (pair multiplicities) each row's sorted weights are
    cumulated; a pair's rank in the expanded vector is the average of the positions its
    copies (and any exactly tied pairs) occupy. Rows without ties (the usual case for
    continuous distances) skip the tie bookkeeping entirely.
    """

    def __init__(self, vectors: np.ndarray, workspace: dict | None = None):
        v = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        self.k, self.m = v.shape
        self.nan_rows = np.isnan(v).any(axis=1)
        v = np.where(np.isnan(v), 0.0, v)
        order = np.argsort(v, axis=1, kind="stable")
        self.order = order  # intp: numpy's take/scatter convert narrower indices on every call (~2.5x slower)
        offsets = np.arange(self.k)[:, None] * self.m
        self.order_flat = (order + offsets).ravel()
        # Scratch buffers, shared by all rankers of one computation (they are used in turn).
        self._workspace = workspace if workspace is not None else {}
        sv = np.take_along_axis(v, order, axis=1)
        new_group = np.ones_like(sv, dtype=bool)
        new_group[:, 1:] = sv[:, 1:] != sv[:, :-1]
        self.tied_rows = np.flatnonzero(~new_group.all(axis=1))
        self._first = self._last = None
        if self.tied_rows.size:
            ng = new_group[self.tied_rows]
            pos = np.broadcast_to(np.arange(self.m), ng.shape)
            first = np.maximum.accumulate(np.where(ng, pos, 0), axis=1)
            end_group = np.ones_like(ng)
            end_group[:, :-1] = ng[:, 1:]
            last = np.minimum.accumulate(np.where(end_group, pos, self.m - 1)[:, ::-1], axis=1)[:, ::-1]
            self._first, self._last = first, last

    def ranks(self, w: np.ndarray) -> np.ndarray:
        """(k, m) average ranks each pair would get in the expanded vector, minus 1/2
        (a shift Pearson ignores; their weighted mean is S/2 for total weight S).

        Works in preallocated buffers: this runs once per bootstrap draw."""
        key = (self.k, self.m)
        if key not in self._workspace:
            self._workspace[key] = (np.empty((self.k, self.m)), np.empty((self.k, self.m)), np.empty(self.k * self.m))
        ws, cum, out = self._workspace[key]
        np.take(w, self.order, out=ws)
        np.cumsum(ws, axis=1, out=cum)
        if self.tied_rows.size:
            c = cum[self.tied_rows]
            cex = c - ws[self.tied_rows]
            lo = np.take_along_axis(cex, self._first, axis=1)
            hi = np.take_along_axis(c, self._last, axis=1)
            tied = lo + (hi - lo) / 2.0
        ws *= 0.5
        cum -= ws
        if self.tied_rows.size:
            cum[self.tied_rows] = tied
        out[self.order_flat] = cum.ravel()
        return out.reshape(self.k, self.m)


def _weighted_rank_corr(ra: np.ndarray, rb: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted Pearson of :meth:`WeightedRanker.ranks` output. The weighted mean of such
    ranks is S/2 for every row (S = total weight), which saves a pass."""
    s = w.sum()
    if s <= 0:
        return np.full((ra.shape[0], rb.shape[0]), np.nan)
    mean = s / 2.0
    raw = ra * w
    va = np.einsum("km,km->k", raw, ra) - s * mean * mean
    vb = np.einsum("km,km->k", rb * w, rb) - s * mean * mean
    cov = raw @ rb.T - s * mean * mean
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.sqrt(np.outer(va, vb))
        r = np.where(denom > 1e-9 * s * mean * mean, cov / denom, np.nan)
    return np.clip(r, -1.0, 1.0)


def weighted_corr(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(ka, kb) weighted Pearson correlations between rows; zero variance -> NaN."""
    s = w.sum()
    if s <= 0:
        return np.full((a.shape[0], b.shape[0]), np.nan)
    ac = a - (a @ w / s)[:, None]
    bc = b - (b @ w / s)[:, None]
    cov = (ac * w) @ bc.T
    va = (ac * ac) @ w
    vb = (bc * bc) @ w
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.sqrt(np.outer(va, vb))
        scale = np.sqrt(np.outer((a * a) @ w, (b * b) @ w)) + 1e-300
        r = np.where(denom > 1e-12 * scale, cov / denom, np.nan)
    return np.clip(r, -1.0, 1.0)


def bootstrap_spearman(
    a: np.ndarray,
    b: np.ndarray,
    counts: np.ndarray,
    progress: bool = False,
    desc: str = "bootstrap",
) -> np.ndarray:
    """(n_boot, ka, kb) Spearman correlations between the rows of ``a`` and ``b`` (RDM upper
    triangles over the same n stimuli) in each stimulus resample given by ``counts``."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"RDM vectors differ in length ({a.shape[1]} vs {b.shape[1]} pairs): not the same stimuli")
    n = n_from_pairs(a.shape[1])
    counts = np.atleast_2d(counts)
    if counts.shape[1] != n:
        raise ValueError(f"bootstrap counts are over {counts.shape[1]} stimuli but the RDMs over {n}")
    ka, kb = a.shape[0], b.shape[0]
    m = a.shape[1]
    n_boot = len(counts)
    out = np.empty((n_boot, ka, kb))
    # Work in cache-sized pieces: a chunk of layer rows (~1 MB per array) against a block
    # of draws whose pair weights and reference ranks are computed once (~64 MB at most).
    rows = max(1, CHUNK_BYTES // (8 * m))
    workspace: dict = {}
    chunks = [WeightedRanker(a[s : s + rows], workspace) for s in range(0, ka, rows)]
    ranker_b = WeightedRanker(b, workspace)
    block = max(1, min(n_boot, BLOCK_BYTES // (8 * m * (kb + 1))))
    bar = None
    if progress:
        from lib.progress import tqdm

        bar = tqdm(total=n_boot, desc=desc, leave=False)
    for d0 in range(0, n_boot, block):
        ws = pair_weights(counts[d0 : d0 + block])
        rb = [ranker_b.ranks(w).copy() for w in ws]
        start = 0
        for ranker in chunks:
            stop = start + ranker.k
            for i, w in enumerate(ws):
                out[d0 + i, start:stop] = _weighted_rank_corr(ranker.ranks(w), rb[i], w)
            start = stop
        if bar is not None:
            bar.update(len(ws))
    if bar is not None:
        bar.close()
    nan_a = np.isnan(a).any(axis=1)
    out[:, nan_a, :] = np.nan
    out[:, :, ranker_b.nan_rows] = np.nan
    return out


CHUNK_BYTES = 1 << 20
BLOCK_BYTES = 64 << 20


def percentile_ci(draws: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over axis 0, ignoring NaN draws (a resample that left a vector
    constant); all-NaN -> NaN."""
    lo = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore"), _quiet_nan_warnings():
        low = np.nanquantile(draws, lo, axis=0)
        high = np.nanquantile(draws, 1.0 - lo, axis=0)
    return low, high


def bootstrap_pvalue(draws: np.ndarray, tail_fit: bool = False, min_tail: int = 10) -> np.ndarray:
    """Two-sided bootstrap p for 'the statistic is 0': twice the smaller tail share, with the
    +1 correction so it is never exactly 0 (resolution 2/(n_boot+1)).

    ``tail_fit``: where fewer than ``min_tail`` draws lie on the far side of 0, the empirical
    share cannot resolve p below its floor, so the tail is taken from a normal fitted to the
    draws instead, 2 * Phi(-|mean| / sd). Why: with ~150 layers per family, Benjamini–
    Hochberg needs p < alpha/150 ~ 3e-4, below the floor of 1,000 draws (2e-3), and 6,000+
    draws per table are not affordable at n = 872."""
    valid = (~np.isnan(draws)).sum(axis=0)
    below = (draws <= 0).sum(axis=0)
    above = (draws >= 0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 2.0 * (np.minimum(below, above) + 1.0) / (valid + 1.0)
    p = np.where(valid > 0, np.minimum(p, 1.0), np.nan)
    if tail_fit:
        from scipy.stats import norm

        with np.errstate(invalid="ignore", divide="ignore"), _quiet_nan_warnings():
            mean = np.nanmean(draws, axis=0)
            sd = np.nanstd(draws, axis=0, ddof=1)
            fitted = 2.0 * norm.sf(np.abs(mean) / sd)
        thin = (np.minimum(below, above) < min_tail) & (valid > 2) & (sd > 0)
        p = np.where(thin, fitted, p)
    return p


def fdr_bh(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q); NaN entries stay NaN and do not count."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    pv = p[ok]
    if pv.size == 0:
        return q
    order = np.argsort(pv)
    ranked = pv[order] * pv.size / np.arange(1, pv.size + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(pv)
    out[order] = np.minimum(ranked, 1.0)
    q[ok] = out
    return q


def partial_from_corr(r_xy: np.ndarray, r_xz: np.ndarray, r_yz: np.ndarray) -> np.ndarray:
    """First-order partial correlation of x and y given z (on ranks: partial Spearman)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.sqrt((1.0 - r_xz**2) * (1.0 - r_yz**2))
        return np.where(denom > 1e-12, (r_xy - r_xz * r_yz) / denom, np.nan)


class _quiet_nan_warnings:
    """All-NaN slices are expected (constant RDMs) and reported via the reason column."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.filterwarnings("ignore", message="All-NaN slice")
        warnings.filterwarnings("ignore", message="Mean of empty slice")
        return self

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


# ----------------------------------------------------------------------------- many tests
def n_permutations_for(n_tests: int, alpha: float, minimum: int = 0) -> int:
    """Permutations needed for one test to be able to pass Benjamini–Hochberg at ``alpha``
    among ``n_tests`` with the book's strict ``q < alpha``: the smallest p, 1/(P+1), times
    n_tests must stay below alpha, so P >= n_tests/alpha. Never fewer than ``minimum``
    (the profile's n_permutations)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return max(int(minimum), int(math.ceil(max(int(n_tests), 1) / alpha)))


def p_floor(n_permutations: int) -> float:
    """The smallest p-value :func:`permutation_pvalues` can return with this many permutations."""
    return 1.0 / (n_permutations + 1.0)


def duplicate_of(vectors: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """For each row, the name of the first row of the run of *exactly* equal consecutive
    rows it belongs to ("" for the first of a run). Why: a layer that is the identity at
    evaluation (Dropout, Identity) repeats its input's RDM; it is one test, not two."""
    v = np.atleast_2d(vectors)
    if len(names) != len(v):
        raise ValueError(f"{len(names)} names for {len(v)} RDM vectors")
    out = np.full(len(v), "", dtype=object)
    for i in range(1, len(v)):
        if np.array_equal(v[i], v[i - 1], equal_nan=True):
            out[i] = out[i - 1] or names[i - 1]
    return out


def fdr_bh_once(p: np.ndarray, duplicate: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg counting each distinct RDM once: duplicates (non-empty
    ``duplicate``) are left out of the family and share their original's q."""
    p = np.asarray(p, dtype=np.float64)
    dup = np.asarray(duplicate, dtype=object) != ""
    q = np.full_like(p, np.nan)
    q[~dup] = fdr_bh(p[~dup])
    # a duplicate takes the q of the last distinct row before it (its run's first row)
    last = -1
    for i in range(len(p)):
        if dup[i]:
            q[i] = q[last] if last >= 0 else np.nan
        else:
            last = i
    return q


# ----------------------------------------------------------------------------- partial RSA
def residual_ranks(target_z: np.ndarray, control_z: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Unit-norm residual of z-scored ranks after regressing out other z-scored ranks.

    Both are centred and unit-norm, so the residual of x on c is x - (x.c) c; it is
    orthogonal to c and to the constant. NaN where nothing is left (x = +-c) or an input
    is NaN. Rows are done a block at a time (no float64 copy of all of them at once)."""
    x = np.atleast_2d(target_z)
    c = np.asarray(control_z, dtype=np.float64)
    out = np.empty(x.shape, dtype=dtype)
    rows = max(1, CHUNK_BYTES * 16 // (8 * x.shape[1]))
    for s in range(0, len(x), rows):
        e = x[s : s + rows].astype(np.float64)
        e -= np.outer(e @ c, c)
        norm = np.linalg.norm(e, axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[s : s + rows] = np.where(norm > 1e-9, e / norm, np.nan)
    return out


def freedman_lane_null(layer_z: np.ndarray, target_z: np.ndarray, control_z: np.ndarray,
                       perms: np.ndarray) -> np.ndarray:
    """(k, n_perm) null partial Spearman correlations by Freedman–Lane residual permutation.

    Why not permute the raw target (Smouse et al. 1986): a relabelled target no longer
    shares anything with the control, so the null ignores that the two references are
    correlated and the test is liberal. Freedman & Lane (1983), on ranks: regress the
    control out of the target, relabel the stimuli of that *residual* RDM, regress the
    control out again, and correlate with the layer's residual. The partial correlation is
    symmetric in layer and target; permuting the target's residual (one vector shared by
    all layers) makes the null one matrix product. A relabelled residual keeps its mean
    (0) and norm (1), so its correlation with the layer residual is
    (layer_res . u) / sqrt(1 - (u . control)^2).
    """
    lz = np.atleast_2d(layer_z)
    c = np.asarray(control_z, dtype=np.float64)
    e_x = residual_ranks(target_z, c)[0]
    if np.isnan(e_x).any() or np.isnan(c).any():
        return np.full((len(lz), len(perms)), np.nan)
    e_y = residual_ranks(lz, c, dtype=lz.dtype)
    num = permutation_null(e_y, e_x, perms)
    along_control = permutation_null(c[None, :].astype(lz.dtype), e_x, perms)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / np.sqrt(np.clip(1.0 - along_control**2, 1e-12, None))[None, :]


def smouse_null(layer_z: np.ndarray, target_z: np.ndarray, control_z: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """(k, n_perm) null partial correlations from relabelling the *raw* target (the previous
    method, kept to show its inflation in the simulation tests)."""
    lz = np.atleast_2d(layer_z)
    r_xy = permutation_null(lz, target_z, perms)
    r_zy = permutation_null(np.asarray(control_z)[None, :], target_z, perms)[0]
    r_lc = np.nan_to_num(lz) @ np.asarray(control_z)
    return partial_from_corr(r_xy, r_lc[:, None], r_zy[None, :])


# ----------------------------------------------------------------------------- few units
MAX_EXACT_SIGN_FLIPS = 1 << 16


def sign_flips(k: int, n_flips: int = 10_000, seed: int = 0) -> tuple[np.ndarray, bool]:
    """(F, k) sign patterns: all 2^k when that is at most :data:`MAX_EXACT_SIGN_FLIPS`
    (exact test), else ``n_flips`` random ones plus the identity. Returns (signs, exact)."""
    if 2**k <= MAX_EXACT_SIGN_FLIPS:
        return np.array(list(itertools.product((1.0, -1.0), repeat=k))).reshape(-1, k), True
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(n_flips, k))
    return np.vstack([np.ones((1, k)), signs]), False


def sign_flip_pvalue(values: np.ndarray, n_flips: int = 10_000, seed: int = 0) -> np.ndarray:
    """Two-sided sign-flip permutation p of 'mean = 0' for each row of ``values`` (k units
    in the last axis, NaN units dropped per row). Valid when each unit's value is symmetric
    about 0 under the null (independent subjects/networks); exact for small k, where the
    smallest p is 2/2^k (k = 5 units can never reach p < 0.05)."""
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    out = np.full(len(v), np.nan)
    for i, row in enumerate(v):
        x = row[np.isfinite(row)]
        if len(x) < 1:
            continue
        signs, exact = sign_flips(len(x), n_flips, seed)
        null = np.abs(signs @ x)
        obs = abs(x.sum())
        tol = 1e-12 * max(1.0, np.abs(x).sum())
        hits = (null >= obs - tol).sum()
        out[i] = hits / len(signs)  # the identity is among the patterns: p >= 1/len(signs)
    return out


def sign_flip_floor(k: int) -> float:
    """Smallest two-sided p an exact sign-flip test over k units can give."""
    return 2.0 / 2**k if 2**k <= MAX_EXACT_SIGN_FLIPS else 1.0 / (10_000 + 1)


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and Student-t interval over the last axis (NaN dropped per row); (mean, low, high)."""
    from scipy import stats

    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    mean, lo, hi = (np.full(len(v), np.nan) for _ in range(3))
    for i, row in enumerate(v):
        x = row[np.isfinite(row)]
        if len(x) == 0:
            continue
        mean[i] = x.mean()
        if len(x) > 1:
            half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
            lo[i], hi[i] = mean[i] - half, mean[i] + half
    return mean, lo, hi


def constant_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows that have no ranks to correlate (constant or containing NaN), without ranking them."""
    v = np.atleast_2d(vectors)
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(v).all(axis=1) | (np.ptp(np.nan_to_num(v), axis=1) == 0)
