"""Benchmark: inference for one model's layers x 2 references (issue 5 target: <= 60 s for
~150 layers, n = 100, 1000 permutations + 1000 bootstraps, on 2 cores).

Ours: lib.rsa.rsa_table (vectorised permutation + weighted-rank bootstrap).
Baseline, measured side by side in the same run: the straightforward loop -- for each
(layer, reference, resample) permute the reference with numpy and call scipy.stats.spearmanr,
and resample stimuli with rsatoolbox's subsample_pattern + rsatoolbox.rdm.compare -- on a
sample of layers and resamples, extrapolated linearly to the full workload.

    .venv/bin/python bench/bench_inference.py [--layers 150] [--n 100] [--perm 1000] [--boot 1000]

Paper scale (issue 11): ``--paper-scale`` runs the n = 872 case -- one network's layers
(``--layers``, default 150: ~1,500 layers over 10 networks, which run one after another,
so the peak is per network) x 2 references x 5 conditions: RSA table and partial RSA
(permutations adaptive to the number of layers) and ΔRSA of 4 conditions against
Baseline. Each implementation runs in its own process (its own peak RSS): *ours* (this
checkout) and *today's* (lib/inference.py and lib/rsa.py at ``--today``, read with git).
Both run every step on a sample of resamples (``--sample-perm``, ``--sample-boot``) and
the time is extrapolated linearly to the full counts; peak memory is measured, except
today's n_boot x pairs weight array, whose size at the full count is added by arithmetic
(it grows linearly with n_boot and is allocated at once). Both are printed, with the
8 GB target.

    .venv/bin/python bench/bench_inference.py --paper-scale [--n 872] [--layers 150]
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


TODAY = "8885bb1"  # the commit whose inference this issue replaced


def today_modules(commit: str):
    """lib.inference and lib.rsa as they were at ``commit`` (git show), as fresh modules."""
    import subprocess
    import types

    root = Path(__file__).resolve().parent.parent
    mods = {}
    for name, path in (("_today_inference", "lib/inference.py"), ("_today_rsa", "lib/rsa.py")):
        src = subprocess.run(["git", "-C", str(root), "show", f"{commit}:{path}"], check=True, capture_output=True,
                             text=True).stdout
        src = src.replace("from lib import inference as inf", "import _today_inference as inf")
        mod = types.ModuleType(name)
        sys.modules[name] = mod
        exec(compile(src, f"{commit}:{path}", "exec"), mod.__dict__)
        mods[name] = mod
    return mods["_today_inference"], mods["_today_rsa"]


def paper_rdms(n_layers: int, n: int, seed: int = 0):
    """Layer RDMs of one network on 5 conditions (the base features perturbed a little per
    condition) and two references, as rsatoolbox RDMs with image ids."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 32))
    ids = [f"img{i}" for i in range(n)]
    scales = np.geomspace(0.1, 10, n_layers)
    conds = {}
    for c, cond in enumerate(rsa.CONDITIONS):
        xc = x + (0.2 * c) * rng.normal(size=x.shape)
        vecs = np.empty((n_layers, n * (n - 1) // 2))
        for i, s in enumerate(scales):
            vecs[i] = rsa.rdm(xc + s * rng.normal(size=x.shape)).get_vectors()[0]
        conds[cond] = rsatoolbox.rdm.RDMs(vecs, rdm_descriptors={"model": ["bench"] * n_layers,
                                                                 "layer": [f"l{i}" for i in range(n_layers)]},
                                          pattern_descriptors={"image_id": ids})
    refs = {name: rsatoolbox.rdm.RDMs(rsa.rdm(x + rng.normal(size=x.shape)).get_vectors(),
                                      pattern_descriptors={"image_id": ids})
            for name in ("saliency", "semantic")}
    return conds, refs


def paper_worker(impl: str, args) -> dict:
    """One implementation on the paper-scale workload; returns times, counts and peak RSS."""
    import json

    from lib import inference as inf

    mod = rsa if impl == "ours" else today_modules(args.today)[1]
    conds, refs = paper_rdms(args.layers, args.n)
    base = conds["Baseline"]
    m = base.get_vectors().shape[1]
    kw = {"alpha": args.alpha} if impl == "ours" else {}
    # ours raises the count to m/alpha; the sample may not go below that minimum, so time the same count
    p_full = inf.n_permutations_for(args.layers, args.alpha, args.perm) if impl == "ours" else args.perm
    p_sample = args.sample_perm
    if impl == "ours":
        p_sample = max(p_sample, inf.n_permutations_for(args.layers, 0.99, 0))
        kw = {"alpha": 0.99}  # sample: the floor rule with a lax alpha keeps the count at p_sample
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    steps = {
        "rsa perm": lambda c: mod.rsa_table(base, refs, n_permutations=c, n_bootstrap=0, **kw),
        "rsa boot": lambda c: mod.rsa_table(base, refs, n_permutations=0, n_bootstrap=c, **kw),
        "partial perm": lambda c: mod.partial_rsa(base, refs, n_permutations=c, n_bootstrap=0, **kw),
        "partial boot": lambda c: mod.partial_rsa(base, refs, n_permutations=0, n_bootstrap=c, **kw),
        "delta boot": lambda c: mod.delta_rsa(conds, refs, n_bootstrap=c),
    }
    t, fixed = {}, {}
    for name, step in steps.items():
        count = p_sample if "perm" in name else args.sample_boot
        start = time.perf_counter()
        if name != "delta boot":  # ΔRSA needs at least one bootstrap; its fixed part is small
            step(0)
        fixed[name] = time.perf_counter() - start
        start = time.perf_counter()
        step(count)
        t[name] = max(time.perf_counter() - start - fixed[name], 0.0)  # the part that grows with the count
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    full = sum(fixed.values()) + sum(v * (p_full / p_sample if "perm" in k else args.boot / args.sample_boot)
                                     for k, v in t.items())
    # today's pair_weights holds n_boot x pairs float64 at once: at the full count it adds this much
    extra = 0.0 if impl == "ours" else (args.boot - args.sample_boot) * m * 8 / 2**20
    out = dict(impl=impl, times=t, fixed=fixed, full_s=full, p_full=p_full, p_sample=p_sample, peak_mb=peak,
               peak_full_mb=peak + extra, inputs_mb=rss0, pairs=m)
    print("RESULT " + json.dumps(out))
    return out


def paper_scale(args) -> None:
    import json
    import subprocess

    results = {}
    for impl in ("ours", "today"):
        cmd = [sys.executable, __file__, "--worker", impl, "--n", str(args.n), "--layers", str(args.layers),
               "--perm", str(args.perm), "--boot", str(args.boot), "--sample-perm", str(args.sample_perm),
               "--sample-boot", str(args.sample_boot), "--alpha", str(args.alpha), "--today", args.today]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not line:
            print(f"{impl}: failed (exit {proc.returncode})\n{proc.stderr[-2000:]}")
            continue
        results[impl] = json.loads(line[-1][7:])
    print(f"paper-scale workload: n = {args.n} images ({results.get('ours', {}).get('pairs', '?')} pairs), "
          f"{args.layers} layers x 2 references x 5 conditions (RSA table, partial RSA, ΔRSA of 4 conditions); "
          f"{args.boot} bootstraps; permutations: {args.perm} requested")
    for impl, r in results.items():
        name = "ours (this checkout)" if impl == "ours" else f"today's ({args.today})"
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in r["times"].items())
        print(f"{name}: sample of {r['p_sample']} permutations / {args.sample_boot} bootstraps (time beyond each "
              f"step's fixed part, {sum(r['fixed'].values()):.1f} s in all): {parts}")
        print(f"  extrapolated to {r['p_full']} permutations + {args.boot} bootstraps: {r['full_s'] / 60:.1f} min "
              f"per network, x 10 networks = {r['full_s'] * 10 / 3600:.1f} h")
        extra = ("" if impl == "ours" else f"; at {args.boot} bootstraps its n_boot x pairs weights add "
                 f"{r['peak_full_mb'] - r['peak_mb']:.0f} MB -> {r['peak_full_mb']:.0f} MB (extrapolated)")
        print(f"  peak RSS {r['peak_mb']:.0f} MB measured (before inference, with the layer RDMs of 5 conditions: "
              f"{r['inputs_mb']:.0f} MB)"
              f"{extra}; target <= 8192 MB: {'met' if r['peak_full_mb'] <= 8192 else 'NOT met'}")
    if len(results) == 2:
        o, d = results["ours"], results["today"]
        same = {k: d["times"][k] / o["times"][k] for k in o["times"] if o["times"][k] > 0}
        print("time per resample, today / ours (same sample counts; > 1: ours faster; noisy on a shared CPU): "
              + ", ".join(f"{k} {v:.2f}x" for k, v in same.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=150)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--perm", type=int, default=1000)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--sample-layers", type=int, default=2)
    ap.add_argument("--sample-resamples", type=int, default=30)
    ap.add_argument("--paper-scale", action="store_true", help="the n = 872 case (issue 11); --n defaults to 872")
    ap.add_argument("--sample-perm", type=int, default=200)
    ap.add_argument("--sample-boot", type=int, default=10)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--today", default=TODAY, help="git commit of today's implementation")
    ap.add_argument("--worker", choices=("ours", "today"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.paper_scale or args.worker:
        if args.paper_scale and args.n == 100:
            args.n = 872
        if args.worker:
            paper_worker(args.worker, args)
        else:
            paper_scale(args)
        return

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
