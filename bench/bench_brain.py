"""Benchmark: ROI RDMs + every model-layer x ROI x subject RSA at paper scale, on a
synthetic Algonauts folder, against a per-pair ``scipy.stats.spearmanr`` loop measured
side by side on a sample of pairs (extrapolated to all pairs).

Paper scale: 7 subjects, 32 ROIs (31 + "All vertices"), 872 images, ~20k vertices per
hemisphere, 1,500 layers (10 models x 150). Run: ``python bench/bench_brain.py``
(``--quick`` for a smaller check). Prints timings, the speed-up ratio and peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scipy.stats import spearmanr  # noqa: E402

from lib.brain.algonauts import load_algonauts  # noqa: E402
from lib.brain.analysis import model_brain_rsa, ranked  # noqa: E402
from lib.brain.rois import roi_rdms  # noqa: E402
from lib.brain.synthetic import write_synthetic_algonauts  # noqa: E402
from lib.rsa import rdm  # noqa: E402


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


def layer_rdms(n_layers: int, m: int, rng, model: str):
    import rsatoolbox

    return rsatoolbox.rdm.RDMs(rng.random((n_layers, m)), rdm_descriptors={
        "model": [model] * n_layers, "layer": [f"layer{i}" for i in range(n_layers)],
        "depth": list(range(n_layers)), "rel_depth": list(np.linspace(0, 1, n_layers))})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="200 images, scale 0.2, 2 models: a smoke run")
    ap.add_argument("--sample", type=int, default=20, help="pairs timed with scipy.stats.spearmanr")
    ap.add_argument("--fixture", type=Path, default=None,
                    help="keep the synthetic folder here and reuse it on the next run (default: a temp folder)")
    args = ap.parse_args()
    n, scale, n_models, per_model = (200, 0.2, 2, 150) if args.quick else (872, 1.0, 10, 150)
    subjects = [1, 2, 3, 4, 5, 6, 8]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        structs = {"saliency": rdm(np.abs(rng.standard_normal((n, 40))) + 0.5).get_matrices()[0],
                   "semantic": rdm(rng.standard_normal((n, 30))).get_matrices()[0]}
        images = [np.zeros((4, 4, 3), np.uint8)] * n
        if args.fixture is not None:
            tmp = str(args.fixture / f"n{n}_scale{scale}")
        if (Path(tmp) / "synthetic.json").is_file():
            print(f"fixture: reusing {tmp}")
        else:
            write_synthetic_algonauts(tmp, images, np.arange(n) * 7 + 13, structs, subjects=subjects, scale=scale)
            print(f"fixture: {n} images, {len(subjects)} subjects, written in {time.perf_counter() - t:.1f} s")

        c0 = time.process_time()
        t0 = time.perf_counter()
        data = load_algonauts(tmp, subjects)
        t_load = time.perf_counter() - t0
        nv = data.subjects[0].fmri["lh"].shape[1], data.subjects[0].fmri["rh"].shape[1]
        t0 = time.perf_counter()
        roi = roi_rdms(data, "mean")
        t_roi = time.perf_counter() - t0
        n_roi_subj = sum(len(v) for v in roi.vectors.values())
        print(f"vertices per hemisphere (subject 1): lh {nv[0]}, rh {nv[1]}; ROIs kept {len(roi.rois)} "
              f"(+{roi.notes.status.eq('dropped').sum()} dropped), ROI x subject RDMs {n_roi_subj}")
        c_roi = time.process_time() - c0
        print(f"load {t_load:.1f} s, ROI RDMs {t_roi:.1f} s (CPU time load + ROI RDMs {c_roi:.1f} s)")

        m = n * (n - 1) // 2
        t_rsa, c_rsa, n_values = 0.0, 0.0, 0
        last = None
        for k in range(n_models):
            layers = layer_rdms(per_model, m, rng, f"model{k}")
            t0, c0 = time.perf_counter(), time.process_time()
            brain, _ = model_brain_rsa(layers, roi, {"saliency": structs["saliency"][np.triu_indices(n, 1)]})
            t_rsa += time.perf_counter() - t0
            c_rsa += time.process_time() - c0
            n_values += len(brain)
            last = (layers, brain)
        print(f"model x ROI x subject RSA: {n_models * per_model} layers, {n_values} values in {t_rsa:.1f} s (CPU time {c_rsa:.1f} s)")
        ours = t_load + t_roi + t_rsa
        print(f"TOTAL (load + ROI RDMs + all RSA): {ours:.1f} s wall, {c_roi + c_rsa:.1f} s CPU "
              f"(of which could run in parallel on 2 cores: ~{(c_roi + c_rsa) / 2:.0f} s)   [target <= 120 s on 2 cores]")

        # side by side: scipy per pair on a sample of the same pairs
        layers, brain = last
        pick = np.random.default_rng(1).choice(len(brain), args.sample, replace=False)
        v = layers.dissimilarities
        t0, c0 = time.perf_counter(), time.process_time()
        worst = 0.0
        for i in pick:
            row = brain.iloc[i]
            li = int(row["depth"])
            si = roi.subjects[row["roi"]].index(row["subject"])
            rho = spearmanr(v[li], roi.vectors[row["roi"]][si])[0]
            worst = max(worst, abs(rho - row["rho"]))
        per_pair = (time.perf_counter() - t0) / args.sample
        per_pair_cpu = (time.process_time() - c0) / args.sample
        baseline = per_pair * n_values
        print(f"scipy.stats.spearmanr: {per_pair * 1e3:.1f} ms per pair -> {baseline / 60:.0f} min for all "
              f"{n_values} pairs (extrapolated); max |difference| on the sample {worst:.1e}")
        print(f"ratio baseline / ours (RSA part, CPU time): {per_pair_cpu * n_values / c_rsa:.0f}x; "
              f"(RSA part, wall): {baseline / t_rsa:.0f}x; "
              f"(whole pipeline): {(baseline + t_load + t_roi) / ours:.0f}x")
        t0 = time.perf_counter()
        ranked(v[:8])
        print(f"ranking one layer RDM vector: {(time.perf_counter() - t0) / 8 * 1e3:.0f} ms")
        print(f"peak RSS: {peak_rss_gb():.2f} GB")


if __name__ == "__main__":
    main()
