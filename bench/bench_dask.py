"""Overhead of the Dask path on the tiny profile, against in-process, in the same run.

Each path runs in its own fresh process with its own empty artifact cache and computes the
tiny profile's heavy steps: the stimulus set (distractor search per base image), layer
RDMs of every (model, condition), and ROI RDMs per subject of the synthetic brain data.

  in-process  the default executor (a plain loop, no Dask)
  dask        a LocalCluster with --workers worker processes on 127.0.0.1 (its start-up
              time is reported separately and included in "total")

Peak memory is the resident memory of the whole process tree (client + workers), sampled
every 50 ms. On a 2-core machine the cluster cannot be faster than in-process: this
measures what the distribution costs, which is what a bigger machine amortises.

Usage: python bench/bench_dask.py [--workers 2] [--profile tiny] [-p key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lib.extract import _PeakRSS  # noqa: E402


class TreeRSS(_PeakRSS):
    """Peak resident memory of this process and all its descendants (the Dask workers), sampled."""

    def __init__(self, interval: float = 0.05):
        super().__init__(interval)

    def _sample(self) -> int:
        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except Exception:  # noqa: BLE001 - a child that just exited
                pass
        return total


def run_path(path: str, profile: str, overrides: dict, workers: int) -> dict:
    from lib import extract as E
    from lib.brain import pipeline
    from lib.config import load_profile
    from lib.executor import DaskExecutor, InProcessExecutor, start_local_cluster

    cache = tempfile.mkdtemp(prefix=f"bench-dask-{path}-")
    params = load_profile(profile, {**overrides, "cache_dir": cache})
    out: dict = {"path": path}
    with TreeRSS() as meter:
        t0 = time.perf_counter()
        if path == "dask":
            from distributed import Client

            cluster = start_local_cluster(n_workers=workers)
            ex = DaskExecutor(Client(cluster), cluster)
            params["cluster"] = ex.address
        else:
            ex = InProcessExecutor()
        out["seconds_start"] = time.perf_counter() - t0
        from lib.stimuli import build_stimulus_set

        t = time.perf_counter()
        ss = build_stimulus_set(params, progress=False)
        out["seconds_stimuli"] = time.perf_counter() - t
        t = time.perf_counter()
        rdms = E.stimulus_set_rdms(ss, params, progress=False, executor=ex)
        out["seconds_extraction"] = time.perf_counter() - t
        bs = pipeline.brain_set(params, progress=False)
        t = time.perf_counter()
        roi = pipeline.roi_rdms(bs.data, params["roi_rdm_mode"], executor=ex)
        out["seconds_roi"] = time.perf_counter() - t
        ex.close()
        out["seconds_total"] = time.perf_counter() - t0
    out["peak_rss_gb"] = meter.peak / 1e9
    out["n_tasks"] = {"distractor search": len(ss.pool_ids), "extraction": len(rdms), "roi": len(bs.data.subjects)}
    import numpy as np

    arrays = {f"rdm {m} {c}": r.dissimilarities for (m, c), r in rdms.items()}
    arrays.update({f"roi {k}": v for k, v in roi.vectors.items()})
    arrays.update({f"image {c} {i}": im for c in ("Baseline", "Semantic_Salient") for i, im in enumerate(ss.images(c))})
    out["arrays"] = str(Path(cache) / "results.npz")
    np.savez(out["arrays"], **arrays)
    return out


def compare(a: str, b: str) -> str:
    """Which results differ between the two paths, and by how much."""
    import numpy as np

    with np.load(a) as x, np.load(b) as y:
        if sorted(x.files) != sorted(y.files):
            return "NO (different sets of results)"
        diffs = {k: float(np.max(np.abs(x[k].astype(float) - y[k].astype(float)))) if x[k].shape == y[k].shape
                 else float("inf") for k in x.files}
    bad = {k: v for k, v in diffs.items() if v > 0}
    if not bad:
        return f"yes ({len(diffs)} arrays bit-identical)"
    worst = max(bad, key=bad.get)
    why = (" -- float32 rounding: Dask workers run one thread each, and a convolution's sums depend on the "
           "thread count" if bad[worst] < 1e-5 else "")
    return (f"{len(diffs) - len(bad)} of {len(diffs)} arrays bit-identical; largest difference {bad[worst]:.1e} "
            f"({worst}){why}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args()
    from lib.config import parse_overrides

    overrides = parse_overrides(args.param)
    if args.path:
        print("RESULT " + json.dumps(run_path(args.path, args.profile, overrides, args.workers)))
        return
    results = {}
    for path in ("in-process", "dask"):
        cmd = [sys.executable, __file__, "--path", path, "--profile", args.profile, "--workers", str(args.workers),
               *sum((["-p", p] for p in args.param), [])]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not line:
            print(f"{path}: failed\n{proc.stderr[-3000:]}")
            continue
        r = results[path] = json.loads(line[0][7:])
        print(f"{path:10s} total {r['seconds_total']:6.1f} s (start {r['seconds_start']:.1f}, stimuli "
              f"{r['seconds_stimuli']:.1f}, extraction {r['seconds_extraction']:.1f}, ROI RDMs {r['seconds_roi']:.1f})"
              f"  peak RSS (all processes) {r['peak_rss_gb']:.2f} GB", flush=True)
    if len(results) == 2:
        a, b = results["in-process"], results["dask"]
        print(f"dask/in-process: total {b['seconds_total'] / a['seconds_total']:.2f}x, excluding cluster start "
              f"{(b['seconds_total'] - b['seconds_start']) / a['seconds_total']:.2f}x, peak memory "
              f"{b['peak_rss_gb'] / a['peak_rss_gb']:.2f}x; tasks {b['n_tasks']}")
        print(f"identical results: {compare(a['arrays'], b['arrays'])}")


if __name__ == "__main__":
    main()
