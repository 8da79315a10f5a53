"""Shared fixtures for the stimulus tests: a fake sentence encoder and a miniature COCO+NSD
folder in the real formats."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd


class FakeEncoder:
    """Bag-of-words hashing encoder: captions sharing words get similar vectors (fast,
    deterministic; the real model is tested in test_stimuli_captions.py)."""

    dim = 64

    def encode(self, sentences, **_):
        out = np.zeros((len(sentences), self.dim), np.float32)
        for i, s in enumerate(sentences):
            for w in s.lower().replace(".", "").split():
                h = int(hashlib.md5(w.encode()).hexdigest(), 16)
                out[i, h % self.dim] += 1.0
        return out + 0.01


def use_fake_encoder(monkeypatch) -> None:
    import lib.stimuli.captions as cap

    monkeypatch.setattr(cap, "load_sentence_model", lambda name="x", device="cpu": FakeEncoder())


# (cocoId, split, shared1000, cropBox, demo photo, original size (h, w))
COCO_FIXTURE = [
    (101, "train2017", True, (0, 0, 0.1, 0.1), "astronaut", (400, 520)),
    (102, "train2017", True, (0.05, 0.05, 0, 0), "rocket", (520, 400)),
    (103, "train2017", True, (0, 0, 0.125, 0.125), "chelsea", (400, 533)),
    (104, "val2017", True, (0, 0, 0.1, 0.1), "coffee", (400, 520)),
    (105, "train2017", True, (0, 0, 0, 0), "flower", (420, 420)),
    (106, "train2017", True, (0, 0, 0.1, 0.1), "grace_hopper", (400, 520)),
    (107, "train2017", False, (0, 0, 0.1, 0.1), "camera", (400, 520)),
]


def make_coco_nsd_fixture(root: Path) -> dict:
    """Write <root>/serve/ (what a server would host) and return the expected facts."""
    import cv2

    from lib.stimuli.imageio import write_image
    from lib.stimuli.sources import DEMO_PHOTOS, read_captions_file, DEMO_CAPTIONS

    serve = root / "serve"
    (serve / "train2017").mkdir(parents=True)
    (serve / "val2017").mkdir(parents=True)
    caps = read_captions_file(DEMO_CAPTIONS)
    table, anns = [], {"train2017": [], "val2017": []}
    images = {"train2017": [], "val2017": []}
    ann_id = 1
    for nsd_id, (coco_id, split, shared, box, photo, (h, w)) in enumerate(COCO_FIXTURE):
        from lib.stimuli.imageio import to_rgb_uint8

        img = cv2.resize(to_rgb_uint8(DEMO_PHOTOS[photo][0]()), (w, h), interpolation=cv2.INTER_AREA)
        write_image(serve / split / f"{coco_id:012d}.jpg", img)
        table.append({"Unnamed: 0": nsd_id, "cocoId": coco_id, "cocoSplit": split, "cropBox": str(tuple(box)),
                      "loss": 0.0, "nsdId": nsd_id, "flagged": False, "BOLD5000": False, "shared1000": shared})
        images[split].append({"id": coco_id, "file_name": f"{coco_id:012d}.jpg", "height": h, "width": w})
        for c in caps[photo]:
            anns[split].append({"image_id": coco_id, "id": ann_id, "caption": c})
            ann_id += 1
    pd.DataFrame(table).rename(columns={"Unnamed: 0": ""}).to_csv(serve / "nsd_stim_info_merged.csv", index=False)
    with zipfile.ZipFile(serve / "annotations_trainval2017.zip", "w") as zf:
        for split in anns:
            zf.writestr(f"annotations/captions_{split}.json", json.dumps(
                {"info": {}, "licenses": [], "images": images[split], "annotations": anns[split]}))
        zf.writestr("annotations/instances_train2017.json", "{}")
    return {"serve": serve}
