"""Benchmark: inference for one model's layers x 2 references (issue 5 target: <= 60 s for
~150 layers, n = 100, 1000 permutations + 1000 bootstraps, on 2 cores).

Ours: lib.rsa.rsa_table (vectorised permutation + weighted-rank bootstrap).
Baseline, measured side by side in the same run: the straightforward loop -- for each
(layer, reference, resample) permute the reference with numpy and call scipy.stats.spearmanr,
and resample stimuli with rsatoolbox's subsample_pattern + rsatoolbox.rdm.compare -- on a
sample of layers and resamples, extrapolated linearly to the full workload.

    .venv/bin/python bench/bench_inference.py [--layers 150] [--n 100] [--perm 1000] [--boot 1000]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rsatoolbox  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from lib import rsa  # noqa: E402


def make_rdms(n_layers: int, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 32))
    ids = [f"img{i}" for i in range(n)]
    vecs = np.vstack([rsa.rdm(x + s * rng.normal(size=x.shape)).get_vectors()
                      for s in np.geomspace(0.1, 10, n_layers)])
    layers = rsatoolbox.rdm.RDMs(vecs, rdm_descriptors={"model": ["bench"] * n_layers,
                                                         "layer": [f"l{i}" for i in range(n_layers)]},
                                 pattern_descriptors={"image_id": ids})
    refs = {name: rsatoolbox.rdm.RDMs(rsa.rdm(x + rng.normal(size=x.shape)).get_vectors(),
                                      pattern_descriptors={"image_id": ids})
            for name in ("saliency", "semantic")}
    return layers, refs


def baseline(layers, refs, n_layers_sample: int, n_resamples: int, seed: int = 0) -> float:
    """Seconds per (layer, reference, resample) for permutation + bootstrap, loop style."""
    rng = np.random.default_rng(seed)
    n = layers.n_cond
    iu = np.triu_indices(n, 1)
    start = time.perf_counter()
    count = 0
    for li in range(n_layers_sample):
        layer = layers[li]
        lv = layer.get_vectors()[0]
        for ref in refs.values():
            sq = ref.get_matrices()[0]
            for _ in range(n_resamples):  # permutation
                p = rng.permutation(n)
                spearmanr(lv, sq[np.ix_(p, p)][iu])
            for _ in range(n_resamples):  # bootstrap
                idx = rng.integers(0, n, n)
                a = layer.subsample_pattern("image_id", [f"img{i}" for i in idx])
                b = ref.subsample_pattern("image_id", [f"img{i}" for i in idx])
                rsatoolbox.rdm.compare(a, b, method="spearman")
            count += 1
    return (time.perf_counter() - start) / (count * 2 * n_resamples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=150)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--perm", type=int, default=1000)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--sample-layers", type=int, default=2)
    ap.add_argument("--sample-resamples", type=int, default=30)
    args = ap.parse_args()

    layers, refs = make_rdms(args.layers, args.n)
    per = baseline(layers, refs, args.sample_layers, args.sample_resamples)
    base_total = per * args.layers * len(refs) * (args.perm + args.boot)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    start = time.perf_counter()
    table = rsa.rsa_table(layers, refs, n_permutations=args.perm, n_bootstrap=args.boot, seed=0)
    ours = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"workload: {args.layers} layers x {len(refs)} references, n = {args.n} stimuli, "
          f"{args.perm} permutations + {args.boot} bootstraps")
    print(f"ours (lib.rsa.rsa_table): {ours:.1f} s  (target <= 60 s)")
    print(f"baseline loop (scipy/rsatoolbox), measured on {args.sample_layers} layers x "
          f"{args.sample_resamples}+{args.sample_resamples} resamples: {per * 1e3:.2f} ms per comparison "
          f"-> {base_total:.0f} s extrapolated")
    print(f"speed-up: {base_total / ours:.0f}x")
    print(f"peak RSS: {peak:.0f} MB (before ours: {rss_before:.0f} MB)")
    print(f"rows: {len(table)}, NaN rho: {int(table['rho'].isna().sum())}")


if __name__ == "__main__":
    main()
