"""Distractor search: this branch's search against the previous one, and the original's
pool's cost per base image.

1. demo: the candidate search of the demo profile (quantile mode, the other photos as pool)
   with the search as it was before the distractor pools (commit 8885bb1) and as it is now
   (per-base tasks; with and without the per-base store), on the same images, embeddings
   and base maps, in the same process, alternating: the ratio holds on a shared machine.
2. paper: the paper profile's search (threshold mode, all of COCO train2017 in COCO's order,
   one placement, the original geometry, R/B-swapped Itti-Koch maps) on the miniature pool of
   tests/stimuli_fixtures.py with the real saliency model: seconds per base image and per
   candidate map, and one vs two workers.

    python bench/bench_distractor_search.py [--repeats 2] [--skip-demo]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
BEFORE = "8885bb1"


def _previous_search(tmp: Path):
    src = subprocess.run(["git", "show", f"{BEFORE}:lib/stimuli/distractors.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    path = tmp / "distractors_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("distractors_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["distractors_before"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def demo(tmp: Path, repeats: int) -> None:
    from lib.config import load_profile
    from lib.stimuli import distractors as D
    from lib.stimuli.captions import embed_captions
    from lib.stimuli.sources import load_source
    from lib.stimuli.stimulus_set import _saliency_fn
    from lib.store import Store

    old = _previous_search(tmp)
    p = load_profile("demo", {"cache_dir": str(tmp / "cache")})
    items = load_source(p)
    images, ids = [it.image for it in items], [it.id for it in items]
    emb = embed_captions({it.id: it.captions for it in items}, p["caption_model"])
    sal = _saliency_fn(p)
    maps = sal(images)
    times: dict[str, list[float]] = {"before": [], "now": [], "now+store": []}
    for r in range(repeats):
        t = time.perf_counter()
        c_old, _ = old.search(images, ids, emb, maps, p, sal)
        old.select(c_old, ids)
        times["before"].append(time.perf_counter() - t)
        t = time.perf_counter()
        c_new, _ = D.search(images, ids, emb, maps, p, sal)
        D.select(c_new, ids, p["max_distractor_reuse"])
        times["now"].append(time.perf_counter() - t)
        t = time.perf_counter()
        D.search(images, ids, emb, maps, p, sal, store=Store(tmp / f"store{r}"))
        times["now+store"].append(time.perf_counter() - t)
    assert c_old["sal_change"].tolist() == c_new["sal_change"].tolist(), "the searches evaluated other candidates"
    best = {k: min(v) for k, v in times.items()}
    print(f"demo search ({len(ids)} photos, {len(c_new)} candidate maps), best of {repeats}:")
    for k, v in best.items():
        print(f"  {k:10s} {v:6.1f} s   ratio to before {v / best['before']:.2f}")


def paper(tmp: Path) -> None:
    from stimuli_fixtures import VectorEncoder, make_coco_pool_fixture

    import lib.stimuli.captions as cap
    from lib.config import load_profile
    from lib.stimuli import distractors as D
    from lib.stimuli.captions import embed_captions
    from lib.stimuli.sources import coco_nsd_items, coco_train2017_pool
    from lib.stimuli.stimulus_set import _saliency_fn

    data = make_coco_pool_fixture(tmp / "raw", scale=2)  # 480-600 px bases: the real saliency model
    cap.load_sentence_model = lambda name="x", device="cpu": VectorEncoder()
    for workers in (1, 2):
        p = load_profile("paper", {"data_dir": str(data), "cache_dir": str(tmp / "c"), "device": "cpu",
                                   "caption_model": "vector", "thresholds_caption_model": "vector",
                                   "search_workers": workers})
        items = coco_nsd_items(data, train2017_only=True)
        emb = embed_captions({it.id: it.captions for it in items}, "vector")
        pool = coco_train2017_pool(p, items)
        sal = _saliency_fn(p)
        maps = sal([it.image for it in items])
        t = time.perf_counter()
        cand, _ = D.search([it.image for it in items], [it.id for it in items], emb, maps, p, sal, pool=pool)
        dt = time.perf_counter() - t
        print(f"paper search, miniature pool ({len(pool)} images, {len(items)} bases), {workers} worker(s): "
              f"{dt / len(items):.2f} s per base image, {len(cand) / len(items):.1f} maps per base, "
              f"{dt / max(1, len(cand)):.3f} s per map")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-demo", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_demo:
            demo(Path(tmp), args.repeats)
        paper(Path(tmp))


if __name__ == "__main__":
    main()
