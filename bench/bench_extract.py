"""Benchmark the extraction engine against its lower bound and the original's approach.

Each phase runs in its own fresh process (clean peak-RSS numbers); phases are measured side
by side in the same run, so ratios hold even on a shared machine.

Phases (ResNet-50, timm, random weights, all ~158 layer calls, synthetic 224x224 images):
  bound     one batched forward pass over n images (no hooks) + one float32 matmul Gram
            per layer on an activation-shaped matrix (the arithmetic the RDMs need)
  engine    lib.extract.compute_grams, memory budget large (all in one pass)
  quarter   memory_budget = 1/4 of what all layers' activations need for n images
            (the planner's own choice)
  grouped   the same budget with batch_size 16 forced: layer groups held, truncated passes
  original  the original analysis's approach at n_orig: one image per forward pass, every
            layer's activation copied to NumPy, sklearn cosine distances per layer
  engine_o  the engine at n_orig (side by side with original)

Stability on a busy machine (--stability): the engine at small n (default 12 images, the
first --stability-layers layers) run --repeats times (default 5) beside a competing
CPU-bound process that the bench starts (a busy loop) and stops at the end, once with the
engine's thread policy (Grams of <= GRAM_ONE_THREAD_MAX_N images on one thread) and once
with the previous one (Grams on all of torch's threads), each in a fresh process. Prints
the times and max/median of both side by side (target <= 1.5).

Usage: python bench/bench_extract.py [--n 96] [--n-orig 64] [--phases bound,engine,...]
       [--model timm:resnet50] [--device cpu]
       python bench/bench_extract.py --stability [--n 12] [--repeats 5] [--stability-layers 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PHASES = ("bound", "engine", "quarter", "grouped", "original", "engine_o")


def _images(n: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):  # blocky colour images: structured enough that layers differ
        base = rng.integers(0, 256, (14, 14, 3)).astype(np.uint8)
        out.append(np.kron(base, np.ones((16, 16, 1), dtype=np.uint8)))
    return out


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run_phase(phase: str, model: str, n: int, device: str) -> dict:
    import numpy as np
    import torch

    from lib import extract as E
    from lib import models as M

    lm = M.load_model(model, weights="random", seed=0, device=device)
    table = lm.layer_table
    x = lm.preprocess(_images(n))
    all_bytes = float(table.bytes.sum() * n)
    out = {"phase": phase, "n": n, "layers": len(table), "all_layers_gb": all_bytes / 1e9,
           "model_gb": sum(p.numel() * 4 for p in lm.module.parameters()) / 1e9}
    with E._PeakRSS() as meter:
        t0 = time.perf_counter()
        if phase == "bound":
            with torch.inference_mode():
                xd = x.to(device)
                _sync(device)
                t0 = time.perf_counter()
                lm.module(xd)
                _sync(device)
                t_fwd = time.perf_counter() - t0
                t_gram = 0.0
                for p in table.numel.tolist():  # one Gram per layer on an activation-shaped matrix
                    a = torch.rand(n, int(p), device=device)
                    _sync(device)
                    t1 = time.perf_counter()
                    g = a @ a.T
                    _sync(device)
                    t_gram += time.perf_counter() - t1
                    del a, g
            out.update(seconds=t_fwd + t_gram, seconds_forward=t_fwd, seconds_gram=t_gram)
        elif phase in ("engine", "engine_o", "quarter", "grouped"):
            budget = {"engine": 1e12, "engine_o": 1e12, "quarter": all_bytes / 4, "grouped": all_bytes / 4}[phase]
            rep = {}
            xd = x.to(device)
            _sync(device)
            t0 = time.perf_counter()
            grams = E.compute_grams(lm, xd, table, budget_bytes=budget, progress=False, report=rep,
                                    batch_size=16 if phase == "grouped" else None)
            E.grams_to_rdms(grams, table, "cosine", model)
            _sync(device)
            out.update(seconds=time.perf_counter() - t0, budget_gb=budget / 1e9,
                       **{k: rep[k] for k in ("mode", "batch_size", "n_groups", "forward_passes")})
        elif phase == "original":
            from sklearn.metrics.pairwise import cosine_distances

            acts: dict[str, list] = {}
            named = {q: m for q, m in lm.module.named_modules() if isinstance(m, M.PAPER_TYPES)}

            def hook_for(q):
                def hook(mod, inp, o):  # the original: copy every output to NumPy (last call wins)
                    acts.setdefault(q, [None] * n)[state["i"]] = M.first_tensor(o).detach().cpu().numpy().copy().ravel()
                return hook

            state = {"i": 0}
            handles = [m.register_forward_hook(hook_for(q)) for q, m in named.items()]
            with torch.no_grad():
                for i in range(n):
                    state["i"] = i
                    lm.module(x[i:i + 1].to(device))
            for h in handles:
                h.remove()
            for q, rows in acts.items():
                cosine_distances(np.stack(rows))
            out.update(seconds=time.perf_counter() - t0)
        else:
            raise SystemExit(f"unknown phase {phase!r}; one of {PHASES}")
    out["peak_rss_gb"] = meter.peak / 1e9
    if device.startswith("cuda"):
        out["peak_cuda_gb"] = torch.cuda.max_memory_allocated() / 1e9
    return out


def run_stability(policy: str, model: str, n: int, repeats: int, n_layers: int) -> dict:
    """Seconds of ``repeats`` engine runs (after one warm-up) under a Gram thread policy."""
    import torch

    from lib import extract as E
    from lib import models as M

    if policy == "threaded":
        E.GRAM_ONE_THREAD_MAX_N = 0  # the previous engine: every Gram on all intra-op threads
    lm = M.load_model(model, weights="random", seed=0)
    table = lm.layer_table.iloc[:n_layers].reset_index(drop=True)
    x = lm.preprocess(_images(n))
    times = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        E.compute_grams(lm, x, table, progress=False)
        if i:
            times.append(time.perf_counter() - t0)
    return {"policy": policy, "threads": torch.get_num_threads(), "seconds": times, "layers": len(table),
            "largest_layer_features": int(table.numel.max())}


def stability(args) -> None:
    import statistics

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # the competing process
    try:
        rows = {}
        for policy in ("threaded", "one-thread"):
            cmd = [sys.executable, __file__, "--stability-phase", policy, "--model", args.model, "--n", str(args.n),
                   "--repeats", str(args.repeats), "--stability-layers", str(args.stability_layers)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not line:
                print(f"{policy}: failed\n{proc.stderr[-2000:]}")
                continue
            rows[policy] = json.loads(line[0][7:])
    finally:
        busy.kill()
        busy.wait()
    print(f"{args.model}, {args.n} images, first {args.stability_layers} layers, {args.repeats} runs beside a "
          f"busy-loop process ({os.cpu_count()} cores)")
    for policy, label in (("threaded", "before (Grams on all threads)"), ("one-thread", "now (small-n Grams on 1 thread)")):
        if policy not in rows:
            continue
        t = rows[policy]["seconds"]
        med = statistics.median(t)
        print(f"  {label:34s} threads={rows[policy]['threads']}  times " + " ".join(f"{v:.2f}" for v in t)
              + f" s  median {med:.2f} s  max/median {max(t) / med:.2f} (target <= 1.5: "
              + f"{'ok' if max(t) / med <= 1.5 else 'MISSED'})")
    if len(rows) == 2:
        a, b = (statistics.median(rows[p]["seconds"]) for p in ("threaded", "one-thread"))
        print(f"  median before/now = {a / b:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="timm:resnet50")
    ap.add_argument("--n", type=int, default=96)
    ap.add_argument("--n-orig", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--phases", default=",".join(PHASES))
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--stability", action="store_true", help="max/median of repeated runs beside a busy process")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--stability-layers", type=int, default=20, help="first layers of the model (keeps it short)")
    ap.add_argument("--stability-phase", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stability_phase:
        print("RESULT " + json.dumps(run_stability(args.stability_phase, args.model, args.n, args.repeats,
                                                   args.stability_layers)))
        return
    if args.stability:
        if "--n" not in sys.argv:
            args.n = 12
        stability(args)
        return
    if args.phase:
        n = args.n_orig if args.phase in ("original", "engine_o") else args.n
        print("RESULT " + json.dumps(run_phase(args.phase, args.model, n, args.device)))
        return
    results = {}
    for phase in args.phases.split(","):
        cmd = [sys.executable, __file__, "--phase", phase, "--model", args.model, "--n", str(args.n),
               "--n-orig", str(args.n_orig), "--device", args.device]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not line:
            print(f"{phase}: failed\n{proc.stderr[-2000:]}")
            continue
        r = json.loads(line[0][7:])
        results[phase] = r
        extra = {k: r[k] for k in ("mode", "batch_size", "n_groups", "forward_passes") if k in r}
        print(f"{phase:9s} n={r['n']:4d}  {r['seconds']:7.2f} s  peak RSS {r['peak_rss_gb']:.2f} GB  {extra}",
              flush=True)
    b = results.get("bound")
    lines = []
    if b:
        for ph, target in (("engine", 1.3), ("quarter", 2.0), ("grouped", 2.0)):
            if ph in results:
                r = results[ph]
                ratio = r["seconds"] / b["seconds"]
                mem_ok = r["peak_rss_gb"] <= r["budget_gb"] + r["model_gb"] + 1.5
                lines.append(f"{ph}/bound = {ratio:.2f} (target <= {target}: {'ok' if ratio <= target else 'MISSED'})"
                             + (f"; peak RSS {r['peak_rss_gb']:.2f} GB vs budget+model+1.5 = "
                                f"{r['budget_gb'] + r['model_gb'] + 1.5:.2f} GB ({'ok' if mem_ok else 'MISSED'})"
                                if ph != "engine" else ""))
        lines.append(f"(bound: forward {b['seconds_forward']:.2f} s + Grams {b['seconds_gram']:.2f} s; "
                     f"all layers' activations for n={b['n']}: {b['all_layers_gb']:.1f} GB)")
    if "original" in results and "engine_o" in results:
        sp = results["original"]["seconds"] / results["engine_o"]["seconds"]
        tgt = 10 if args.device.startswith("cuda") else 1.5
        lines.append(f"original/engine at n={args.n_orig} = {sp:.2f}x faster (target >= {tgt}: "
                     f"{'ok' if sp >= tgt else 'MISSED'}); peak RSS original "
                     f"{results['original']['peak_rss_gb']:.2f} GB vs engine {results['engine_o']['peak_rss_gb']:.2f} GB")
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "summary": lines}, indent=1))


if __name__ == "__main__":
    main()
