"""Saliency throughput, side by side: the classic per-image OpenCV implementation (the
test suite's reference, written the way pySaliencyMap works) vs lib's itti_koch one image
at a time vs lib's itti_koch on batches. Real photo at 425x640.

    python bench/bench_saliency.py [--n 64] [--batch 32] [--device cpu|cuda]

Prints maps/s of each, the ratios against the classic run measured in the same process,
and peak memory (RSS; GPU memory when on cuda).
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _classic():
    spec = importlib.util.spec_from_file_location("test_saliency", ROOT / "tests" / "test_saliency.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.classic_saliency


def _photo() -> np.ndarray:
    from lib.stimuli.sources import DEMO_PHOTOS

    img = DEMO_PHOTOS["china"][0]()  # 427 x 640
    return np.ascontiguousarray(img[:425])


def _rate(fn, n: int) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64, help="maps per measurement")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds (the best of each is kept)")
    args = ap.parse_args()

    import torch

    from lib.stimuli.saliency import itti_koch

    classic = _classic()
    img = _photo()
    # distinct images (shifted copies) so nothing is cached anywhere
    imgs = [np.roll(img, 7 * k, axis=1) for k in range(args.n)]
    itti_koch(imgs[:2], device=args.device)
    classic(img)
    n_classic = max(8, args.n // 4)
    best = {"classic": 0.0, "batch1": 0.0, "batched": 0.0}
    for _ in range(args.rounds):  # interleaved, so load from other processes hits all alike
        best["classic"] = max(best["classic"], _rate(lambda: [classic(im) for im in imgs[:n_classic]], n_classic))
        best["batch1"] = max(best["batch1"], _rate(
            lambda: [itti_koch(im, device=args.device) for im in imgs[:n_classic]], n_classic))
        best["batched"] = max(best["batched"], _rate(
            lambda: itti_koch(imgs, device=args.device, batch_size=args.batch), args.n))
        if args.device == "cuda":
            torch.cuda.synchronize()
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"saliency maps/s at 425x640 on {args.device} ({torch.get_num_threads()} torch threads, "
          f"batch {args.batch}, best of {args.rounds} interleaved rounds):")
    print(f"  classic per-image OpenCV : {best['classic']:7.1f} maps/s")
    print(f"  itti_koch, one at a time : {best['batch1']:7.1f} maps/s  (x{best['batch1'] / best['classic']:.2f} classic)")
    print(f"  itti_koch, batch {args.batch:<3d}     : {best['batched']:7.1f} maps/s  "
          f"(x{best['batched'] / best['classic']:.2f} classic, x{best['batched'] / best['batch1']:.2f} one at a time)")
    print(f"  peak RSS {peak_rss:.0f} MB" + (f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MB"
                                            if args.device == "cuda" else ""))


if __name__ == "__main__":
    main()
