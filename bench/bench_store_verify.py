"""Cost of verifying artifact checksums on read (issue 14: < 10 % on a warm build).

Writes a demo-sized artifact set (one stimulus set of 105 RGB 384x384 images as .npz,
four models' layer RDMs as .npy, 20 tables as .parquet, 10 .json records, about 60 MB)
and times loading every artifact in three modes, interleaved, each repetition starting
from an empty per-process digest memory (as a fresh chapter kernel does):

- ``off``:  ``Store(verify=False)`` (sizes are still checked),
- ``cold``: verification with an empty digest index (the first read after writing:
  every file is hashed),
- ``warm``: verification with the digest index an earlier run left (a warm rebuild).

The minimum over ``--repeats`` counts; the overheads (verify / off - 1) are printed.
Timings on a shared machine are noisy.

    python bench/bench_store_verify.py [--repeats 11]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_artifacts(cache: Path) -> list[tuple[str, str]]:
    import numpy as np
    import pandas as pd

    from lib.store import Store

    rng = np.random.default_rng(0)
    store, keys = Store(cache), []
    images = [rng.integers(0, 255, (384, 384, 3), dtype=np.uint8) for _ in range(105)]
    store.save("stimulus-set", "demo", {"images": images, "table": pd.DataFrame({"id": [f"i{i}" for i in range(105)]})})
    keys.append(("stimulus-set", "demo"))
    for m in range(4):
        store.save("model-rdms", f"m{m}", {"dissimilarities": rng.random((60, 105 * 104 // 2)),
                                           "info": {"layers": [f"layer{i}" for i in range(60)]}})
        keys.append(("model-rdms", f"m{m}"))
    for t in range(20):
        store.save("rsa-table", f"t{t}", {"table": pd.DataFrame({"layer": [f"l{i}" for i in range(60)],
                                                                 "rho": rng.random(60), "p": rng.random(60)})})
        keys.append(("rsa-table", f"t{t}"))
    for j in range(10):
        store.save("record", f"r{j}", {"info": {"values": rng.random(100).tolist()}})
        keys.append(("record", f"r{j}"))
    return keys


def load_all(cache: Path, keys: list[tuple[str, str]], verify: bool, cold: bool = False) -> float:
    """Seconds to load every artifact, starting like a fresh process would."""
    from lib import filehash
    from lib.store import Store

    filehash.forget_memory()
    filehash._indexes.clear()  # reconnect to the index, as a new process must
    if cold:
        for p in cache.glob(filehash.INDEX_NAME + "*"):
            os.remove(p)
    store = Store(cache, verify=verify)
    start = time.perf_counter()
    for step, key in keys:
        store.load(step, key)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=11)
    args = ap.parse_args()

    from lib.filehash import RACY_SECONDS

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        keys = write_artifacts(cache)
        size = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) / 1e6
        time.sleep(RACY_SECONDS + 0.1)  # as in a real warm run, the files are not brand new
        load_all(cache, keys, verify=False)  # page cache warm for every mode
        off, cold, warm = [], [], []
        for _ in range(args.repeats):  # interleaved: load changes on the machine hit all modes alike
            off.append(load_all(cache, keys, verify=False))
            cold.append(load_all(cache, keys, verify=True, cold=True))
            warm.append(load_all(cache, keys, verify=True))
    o, c, w = min(off), min(cold), min(warm)
    paired = statistics.median(wi / oi for wi, oi in zip(warm, off))
    print(f"{len(keys)} artifacts, {size:.0f} MB; load time (min of {args.repeats}, noisy shared CPU):")
    print(f"  verify off            {o * 1000:8.1f} ms")
    print(f"  verify, cold index    {c * 1000:8.1f} ms   overhead {c / o - 1:+.1%} "
          "(first read after writing: every file hashed)")
    print(f"  verify, warm index    {w * 1000:8.1f} ms   overhead {w / o - 1:+.1%} (a warm rebuild); median of "
          f"paired runs {paired - 1:+.1%}")


if __name__ == "__main__":
    main()
