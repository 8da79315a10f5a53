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
        # COCO's order of train2017 (the original's pool order): here the reverse of id order
        zf.writestr("annotations/instances_train2017.json", json.dumps(
            {"info": {}, "licenses": [], "images": images["train2017"][::-1], "annotations": []}))
    return {"serve": serve}


# --- the original's distractor pool: a miniature COCO train2017 ---------------------------

# caption word -> embedding; cosine distance to "cat": kitten 0.046 (similar, < 0.32),
# pet 0.553 (neither), car 1.0 (dissimilar, > 0.92)
VECTORS = {"cat": (1.0, 0.0, 0.0), "kitten": (0.95, 0.3, 0.0), "pet": (1.0, 2.0, 0.0), "car": (0.0, 1.0, 0.0)}


class VectorEncoder:
    """Each caption's first word picks a fixed vector, so semantic distances are known exactly."""

    def encode(self, sentences, **_):
        return np.array([VECTORS[s.split()[0]] for s in sentences], np.float32)


def brightness_saliency(images):
    """A stand-in saliency model with hand-computable changes: 1 on dark pixels, 2 on mid-grey
    (red 100-200), 10 on bright (red > 200). On a dark base a paste covering ~10 % of it
    changes the map by cosine distance 0 (dark), ~0.035 (mid) or ~0.42 (bright)."""
    out = []
    for im in images:
        r = np.asarray(im)[..., 0].astype(np.float32)
        out.append(np.where(r > 200, 10.0, np.where(r > 100, 2.0, 1.0)).astype(np.float32))
    return out


# cocoId -> (caption word, red level, (h, w), mode); bases 101-103 (train2017, shared) and 104
# (val2017, shared: not a base of the original) are dark cats
POOL_FIXTURE = {
    101: ("cat", 10, (300, 300), "RGB"), 102: ("cat", 10, (300, 300), "RGB"), 103: ("cat", 10, (300, 300), "RGB"),
    201: ("car", 250, (200, 300), "RGB"),    # dissimilar, bright
    202: ("kitten", 250, (20, 600), "RGB"),  # similar, bright, too wide to fit: skipped
    203: ("kitten", 250, (200, 200), "L"),   # similar, bright, grayscale file: skipped
    204: ("pet", 250, (200, 200), "RGB"),    # semantically neither
    205: ("kitten", 250, (240, 320), "RGB"),  # similar, bright
    206: ("car", 150, (200, 200), "RGB"),    # dissimilar, mid-grey: saliency change neither
    207: ("car", 10, (200, 260), "RGB"),     # dissimilar, dark
    208: ("car", 10, (200, 200), "RGB"),
}
# COCO's order (the instances file's images list) differs from id order and from the
# captions file's order
COCO_ORDER = [201, 103, 202, 203, 204, 101, 205, 206, 207, 102, 208]
# (cocoId, split, cropBox) of the NSD table rows, all shared1000
POOL_NSD = [(101, "train2017", (0, 0, 0.1, 0.1)), (102, "train2017", (0.05, 0.05, 0, 0)),
            (103, "train2017", (0, 0, 0, 0)), (104, "val2017", (0, 0, 0, 0))]


def make_coco_pool_fixture(data: Path, scale: int = 1) -> Path:
    """``data_dir`` with the NSD table, captions and instances files and the images of a
    miniature train2017 (plus one val2017 base), in COCO's real layout and formats.
    ``scale`` multiplies every side (2: large enough for the real Itti-Koch model)."""
    from PIL import Image

    split_of = {101: "train2017", 102: "train2017", 103: "train2017", 104: "val2017"}
    fixture = {**POOL_FIXTURE, 104: ("cat", 10, (300, 300), "RGB")}
    anns = {"train2017": [], "val2017": []}
    images = {"train2017": [], "val2017": []}
    ann_id = 1
    for coco_id in sorted(fixture):
        word, level, (h, w), mode = fixture[coco_id]
        h, w = h * scale, w * scale
        split = split_of.get(coco_id, "train2017")
        folder = data / "coco" / split
        folder.mkdir(parents=True, exist_ok=True)
        img = Image.new("RGB", (w, h), (level, level, level))
        (img.convert("L") if mode == "L" else img).save(folder / f"{coco_id:012d}.jpg", quality=95)
        images[split].append({"id": coco_id, "file_name": f"{coco_id:012d}.jpg", "height": h, "width": w})
        for k in range(2):
            anns[split].append({"image_id": coco_id, "id": ann_id, "caption": f"{word} picture {k}"})
            ann_id += 1
    ann_dir = data / "coco" / "annotations"
    ann_dir.mkdir(parents=True, exist_ok=True)
    for split in anns:
        (ann_dir / f"captions_{split}.json").write_text(json.dumps(
            {"info": {}, "licenses": [], "images": images[split], "annotations": anns[split]}))
    by_id = {im["id"]: im for im in images["train2017"]}
    (ann_dir / "instances_train2017.json").write_text(json.dumps(
        {"info": {"description": "fixture"}, "licenses": [], "images": [by_id[c] for c in COCO_ORDER],
         "annotations": [], "categories": []}))
    rows = [{"": k, "cocoId": c, "cocoSplit": s, "cropBox": str(tuple(b)), "nsdId": k, "shared1000": True}
            for k, (c, s, b) in enumerate(POOL_NSD)]
    (data / "nsd").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(data / "nsd" / "nsd_stim_info_merged.csv", index=False)
    return data
