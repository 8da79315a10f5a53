"""Benchmark: RSA inputs over a checkpoint series against single-model extractions.

The question: does a series of N checkpoints cost no more than N single-model runs
(target: series <= 1.1 x N single runs)? Both are measured in the same run, each phase in
its own fresh process (clean peak-RSS numbers), so the ratio holds on a shared machine.

Phases (random-weight checkpoints of one architecture, synthetic 224x224 images):
  write    N checkpoint files (plain state dicts, distinct weights) into a temp folder
  single   K cold single-model extractions (lib.extract.extract_rdms: build the network,
           probe its layers, preprocess, one engine pass), each into a fresh store;
           the mean is the cost of one single-model run
  series   lib.checkpoints.find_checkpoints (names, order, SHA-256 of every file) +
           lib.training.series.series_rdms over the N checkpoints into a fresh store

Printed: seconds per single run, per checkpoint, the ratio series / (N x single), and the
peak resident memory of each phase.

Usage (the issue's size is the default; heavy on CPU):
    python bench/bench_training.py [--checkpoints 40] [--n 100] [--model resnet50]
                                   [--singles 3] [--device cpu] [--keep DIR]
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


def _images(n: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return [np.kron(rng.integers(0, 256, (14, 14, 3)).astype(np.uint8), np.ones((16, 16, 1), np.uint8))
            for _ in range(n)]


def _params(model: str, device: str, cache: str) -> dict:
    from lib.config import load_profile

    return load_profile("demo", {"models": [model], "weights": "random", "device": device, "cache_dir": cache,
                                 "layers": "all", "metric": "cosine", "batch_size": None,
                                 "memory_budget_gb": 16.0, "architecture": model})


def write_series(model: str, n_ck: int, folder: Path) -> None:
    """N distinct checkpoints: the seeded random network, perturbed by a seeded amount each."""
    import torch

    from lib.models import load_model

    state = load_model(model, weights="random", seed=0).module.state_dict()
    g = torch.Generator().manual_seed(0)
    for i in range(n_ck):
        noisy = {k: (v + 0.01 * v.std() * torch.randn(v.shape, generator=g) if v.is_floating_point() and v.numel() > 1
                     else v) for k, v in state.items()}
        torch.save(noisy, folder / f"epoch_0_{i}.pt")


def run_phase(args) -> dict:
    from lib.extract import _PeakRSS, extract_rdms, release_models
    from lib.store import Store

    images = _images(args.n)
    out: dict = {"phase": args.phase}
    with tempfile.TemporaryDirectory() as tmp:
        params = _params(args.model, args.device, tmp)
        with _PeakRSS() as meter:
            t0 = time.perf_counter()
            if args.phase == "single":
                times = []
                for k in range(args.singles):
                    release_models()
                    t = time.perf_counter()
                    extract_rdms(args.model, images, images_key="bench", params=params,
                                 store=Store(Path(tmp) / f"s{k}"), progress=False)
                    times.append(time.perf_counter() - t)
                out["seconds_each"] = times
            else:
                from lib.checkpoints import find_checkpoints
                from lib.training.series import series_rdms

                cks = find_checkpoints(args.folder)
                t_find = time.perf_counter() - t0
                res = series_rdms(args.model, cks, images, images_key="bench", ids=[str(i) for i in range(args.n)],
                                  params=params, store=Store(Path(tmp) / "series"), progress=False)
                out.update(n_checkpoints=len(cks), seconds_find_and_hash=t_find,
                           seconds_per_checkpoint_engine=[r["seconds"] for r in res.reports])
            out["seconds"] = time.perf_counter() - t0
        out["peak_rss_gb"] = meter.peak / 1e9
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", type=int, default=40, help="checkpoints in the series (issue: 40)")
    ap.add_argument("--n", type=int, default=100, help="images (issue: 100)")
    ap.add_argument("--model", default="resnet50", help="architecture (a lib.models name)")
    ap.add_argument("--singles", type=int, default=3, help="single-model runs averaged for the baseline")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--keep", type=Path, default=None, help="write the checkpoints here (default: a temp folder)")
    ap.add_argument("--phase", choices=("single", "series"), default=None, help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args)))
        return

    import torch

    tmp = None
    if args.keep is None:
        tmp = tempfile.TemporaryDirectory()
        folder = Path(tmp.name)
    else:
        folder = args.keep
        folder.mkdir(parents=True, exist_ok=True)
    print(f"bench_training: {args.model}, {args.checkpoints} checkpoints, n = {args.n} images, device {args.device}, "
          f"{torch.get_num_threads()} threads", flush=True)
    t = time.perf_counter()
    write_series(args.model, args.checkpoints, folder)
    size = sum(p.stat().st_size for p in folder.glob("*.pt")) / 1e9
    print(f"  write   {time.perf_counter() - t:7.1f} s  ({size:.2f} GB of checkpoints)", flush=True)
    results = {}
    for phase in ("single", "series"):
        cmd = [sys.executable, __file__, "--phase", phase, "--folder", str(folder), "--checkpoints",
               str(args.checkpoints), "--n", str(args.n), "--model", args.model, "--singles", str(args.singles),
               "--device", args.device]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if done.returncode:
            sys.exit(f"phase {phase} failed:\n{done.stderr[-3000:]}")
        results[phase] = json.loads(done.stdout.strip().splitlines()[-1])
        r = results[phase]
        print(f"  {phase:7s} {r['seconds']:7.1f} s  peak RSS {r['peak_rss_gb']:.2f} GB", flush=True)
    single = sum(results["single"]["seconds_each"]) / len(results["single"]["seconds_each"])
    series = results["series"]["seconds"]
    per_ck = series / args.checkpoints
    ratio = series / (args.checkpoints * single)
    print(f"single-model run: {single:.2f} s (mean of {args.singles}: "
          f"{', '.join(f'{s:.2f}' for s in results['single']['seconds_each'])})")
    print(f"series: {series:.2f} s for {args.checkpoints} checkpoints = {per_ck:.2f} s per checkpoint "
          f"(finding + hashing all files {results['series']['seconds_find_and_hash']:.2f} s)")
    print(f"ratio series / ({args.checkpoints} x single) = {ratio:.3f}  (target <= 1.1)  "
          f"{'OK' if ratio <= 1.1 else 'OVER TARGET'}")
    print(f"peak RSS: single {results['single']['peak_rss_gb']:.2f} GB, "
          f"series {results['series']['peak_rss_gb']:.2f} GB")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
