"""Peak memory of a folder stimulus build with one 6000x4000 photo stays within 1.3x of
the same build without it (issue 14): large images are downscaled while decoded."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

CHILD = textwrap.dedent("""
    import json, resource, sys
    sys.path.insert(0, "tests")
    import lib.stimuli.captions as cap
    from stimuli_fixtures import FakeEncoder
    cap.load_sentence_model = lambda name="x", device="cpu": FakeEncoder()
    from lib.config import load_profile
    from lib.stimuli import build_stimulus_set
    params = load_profile("tiny", {"source": "folder", "folder_path": sys.argv[1], "cache_dir": sys.argv[2],
                                   "n_images": None, "device": "cpu"})
    ss = build_stimulus_set(params, progress=False)
    print(json.dumps({"peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "n": len(ss.ids),
                      "sides": sorted({max(im.shape[:2]) for im in ss.images("Baseline")})}))
""")


def _peak(folder, cache):
    done = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(cache)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.getcwd()), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_one_huge_photo_keeps_peak_memory_near_the_build_without_it(tmp_path):
    from lib.stimuli.sources import demo_items

    small, big = tmp_path / "small", tmp_path / "big"
    for folder in (small, big):
        folder.mkdir()
    captions = {}
    for item in demo_items(size=300, n=7):  # real photos and captions, as the demo uses
        for folder in (small, big):
            Image.fromarray(item.image).save(folder / f"{item.id}.png")
        captions[item.id] = item.captions
    yy, xx = np.mgrid[0:4000, 0:6000]
    huge = np.stack([(xx // 23) % 256, (yy // 17) % 256, ((xx + yy) // 31) % 256], -1).astype(np.uint8)
    Image.fromarray(huge).save(big / "street.jpg", quality=85)
    del huge, yy, xx
    (small / "captions.yaml").write_text(json.dumps(captions))
    (big / "captions.yaml").write_text(json.dumps({**captions, "street": ["a wide street with cars and people",
                                                                          "a city road seen from above"]}))

    without = _peak(small, tmp_path / "c1")
    with_huge = _peak(big, tmp_path / "c2")
    assert with_huge["sides"][-1] <= 1024  # the photo was downscaled (max_image_side)
    ratio = with_huge["peak_kb"] / without["peak_kb"]
    print(f"peak RSS without {without['peak_kb'] / 1024:.0f} MB, with the 6000x4000 photo "
          f"{with_huge['peak_kb'] / 1024:.0f} MB: ratio {ratio:.2f}")
    assert ratio < 1.3
