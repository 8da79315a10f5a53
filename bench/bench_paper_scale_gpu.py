"""Paper scale on one GPU: ten models x 5 conditions x 872 images, all layers, one RDM each.

Random weights on synthetic images (no downloads needed; the arithmetic and the memory
traffic are those of the real run). Target: <= 10 min on one H200. Runs on CPU with small
numbers for a smoke test:

    python bench/bench_paper_scale_gpu.py                      # the paper scale (GPU)
    python bench/bench_paper_scale_gpu.py --n 8 --models timm:resnet18 --conditions 2 --device cpu

Prints one line per (model, condition) and the total, with peak GPU memory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CONDITIONS = ("Baseline", "Control", "Salient", "Semantic", "Semantic_Salient")


def synthetic_images(n: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h, w = rng.integers(240, 400, size=2)
        base = rng.integers(0, 256, (int(h) // 16 + 1, int(w) // 16 + 1, 3)).astype(np.uint8)
        out.append(np.kron(base, np.ones((16, 16, 1), dtype=np.uint8))[:h, :w])
    return out


def main() -> None:
    import torch

    from lib import extract as E
    from lib import models as M
    from lib.config import pick_device

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=872)
    ap.add_argument("--models", default=",".join(M.MODEL_NAMES))
    ap.add_argument("--conditions", type=int, default=5, help="how many of the 5 conditions")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--budget-gb", type=float, default=None, help="default: 80%% of free GPU memory, or 4 GB on CPU")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    device = pick_device(args.device)
    if args.budget_gb is None:
        args.budget_gb = torch.cuda.mem_get_info()[0] * 0.8 / 1e9 if device == "cuda" else 4.0
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    conds = CONDITIONS[: args.conditions]
    print(f"device {device}" + (f" ({torch.cuda.get_device_name(0)})" if device == "cuda" else "")
          + f"; {len(names)} models x {len(conds)} conditions x {args.n} images; budget {args.budget_gb:.0f} GB",
          flush=True)

    t_all = time.perf_counter()
    t0 = time.perf_counter()
    batches = {c: None for c in conds}
    pre = M.Preprocess(M._clip_transform(), "clip")
    for i, c in enumerate(conds):  # the same preprocessed images serve every model (clip preprocessing)
        batches[c] = pre(synthetic_images(args.n, seed=i))
    t_pre = time.perf_counter() - t0
    print(f"preprocessing {len(conds)} x {args.n} images: {t_pre:.1f} s", flush=True)

    rows = []
    for name in names:
        t0 = time.perf_counter()
        lm = M.load_model(name, weights="random", seed=0, device=device)
        table = lm.layer_table
        t_load = time.perf_counter() - t0
        for c in conds:
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            rep = {}
            grams = E.compute_grams(lm, batches[c], table, budget_bytes=args.budget_gb * 1e9, progress=False,
                                    report=rep)
            rdms = E.grams_to_rdms(grams, table, "cosine", name)
            if device == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            peak = torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else float("nan")
            rows.append(dict(model=name, condition=c, layers=len(table), seconds=dt, load_seconds=t_load,
                             peak_gpu_gb=peak, mode=rep["mode"], passes=rep["forward_passes"],
                             finite=bool(rdms.size and float(abs(rdms).max()) < 3)))
            print(f"{name:28s} {c:17s} {len(table):4d} layers  {dt:7.2f} s  ({rep['mode']}, "
                  f"{rep['forward_passes']} pass(es)) peak GPU {peak:.1f} GB", flush=True)
            t_load = 0.0
        del lm
        E.release_models()
        if device == "cuda":
            torch.cuda.empty_cache()
    total = time.perf_counter() - t_all
    n_rdms = sum(r["layers"] for r in rows)
    print(f"TOTAL {total:.1f} s ({total / 60:.2f} min) for {len(rows)} (model, condition) runs, "
          f"{n_rdms} layer RDMs of {args.n} images; target <= 600 s on one H200", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"total_seconds": total, "rows": rows, "args": vars(args)}, indent=1))


if __name__ == "__main__":
    main()
