"""Stimulus-set build cost.

1. Cold demo build (fresh cache: photos, caption model load + embeddings, base maps,
   candidate search, chosen maps), with its breakdown.
2. Candidate search on a miniature COCO+NSD fixture (real formats, the test fixture), the
   other bases as pool: threshold mode with the paper's thresholds, 4 placements, batch 64 —
   maps computed and seconds per base image — and, for scale, the exhaustive search of
   the same fixture (every candidate evaluated), whose seconds per map extrapolate to the
   paper's pool.

    python bench/bench_stimulus_build.py [--skip-demo]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def _install_fixture(tmp: Path) -> Path:
    from stimuli_fixtures import make_coco_nsd_fixture

    make_coco_nsd_fixture(tmp / "fx")
    serve, data = tmp / "fx" / "serve", tmp / "raw"
    (data / "nsd").mkdir(parents=True)
    shutil.copy(serve / "nsd_stim_info_merged.csv", data / "nsd")
    with zipfile.ZipFile(serve / "annotations_trainval2017.zip") as zf:
        zf.extractall(data / "coco")
    for split in ("train2017", "val2017"):
        shutil.copytree(serve / split, data / "coco" / split)
    return data


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-demo", action="store_true")
    args = ap.parse_args()
    from lib.config import load_profile
    from lib.stimuli import build_stimulus_set
    from lib.stimuli.stimulus_set import _build
    from lib.store import Store

    tmp = Path(tempfile.mkdtemp())
    try:
        if not args.skip_demo:
            p = load_profile("demo", {"cache_dir": str(tmp / "cache-demo")})
            t = time.perf_counter()
            ss = build_stimulus_set(p, progress=False)
            dt = time.perf_counter() - t
            i = ss.info
            print(f"cold demo build: {dt:.1f} s  ({i['n_pool']} photos -> {i['n_kept']} kept; "
                  f"load {i['seconds_load']} s, caption model+embeddings {i['seconds_embed']} s, "
                  f"search {i['seconds_search']} s for {i['n_candidate_maps']} candidate maps)")
            t = time.perf_counter()
            build_stimulus_set(p, progress=False)
            print(f"warm demo build (from the store): {time.perf_counter() - t:.2f} s")

        data = _install_fixture(tmp)
        from lib.stimuli.sources import coco_nsd_items

        n_pool = len(coco_nsd_items(data))
        import numpy as np

        from lib.stimuli.captions import embed_captions
        from lib.stimuli.distractors import cosine_distance_matrix

        items = coco_nsd_items(data)
        sem = cosine_distance_matrix(embed_captions({it.id: it.captions for it in items}))
        q25, q75 = np.quantile(sem[np.triu_indices(len(sem), 1)], [0.25, 0.75])
        runs = [
            ("threshold mode, the paper's thresholds applied to MiniLM distances", "threshold", {}),
            (f"threshold mode, semantic thresholds moved into MiniLM's range ({q25:.2f} / {q75:.2f})",
             "threshold", {"sem_similar_max": float(q25), "sem_dissimilar_min": float(q75)}),
            ("exhaustive: quantile mode (every semantically eligible candidate gets a map)", "quantile", {}),
        ]
        for k, (label, mode, extra) in enumerate(runs):
            # the bases as pool (the paper profile's own pool, all of COCO train2017, is measured by
            # bench/bench_distractor_search.py), MiniLM embeddings, 4 placements
            over = {"cache_dir": str(tmp / f"cache-{k}"), "data_dir": str(data), "device": "cpu",
                    "selection_mode": mode, "n_images": None, "distractor_pool": "bases", "n_placements": 4,
                    "paste_geometry": "fitted", "swap_rb": False, "caption_model": "all-MiniLM-L6-v2",
                    "thresholds_caption_model": "all-MiniLM-L6-v2", "thresholds_swap_rb": False, **extra}
            p = load_profile("paper", over)
            # _build directly: a pool this small may keep no image under absolute thresholds
            # (build_stimulus_set would refuse the set); the cost is what is measured
            i = _build(p, Store(tmp / f"cache-{k}"), False)["info"]
            n_maps = i["n_candidate_maps"]
            print(f"{label}:\n  {n_pool} base images, {n_maps / i['n_pool']:.1f} maps and "
                  f"{i['seconds_search'] / i['n_pool']:.2f} s per base image"
                  + (f" ({i['seconds_search'] / n_maps * 1000:.0f} ms per map incl. pasting)" if n_maps else "")
                  + f", {i['n_kept']} kept")
            if mode == "quantile" and n_maps:
                spm = i["seconds_search"] / n_maps
                worst = 999 * p["n_placements"]
                print(f"  paper pool of 1000 images, worst case per base image: {worst} maps ~ {worst * spm:.0f} s "
                      f"on this CPU at these sizes; the lazy threshold search stops at the first four matches")
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
