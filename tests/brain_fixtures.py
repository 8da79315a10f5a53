"""A tiny hand-made Algonauts folder for the brain tests (written by the test, not the generator)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lib.brain.algonauts import FAMILIES

N_VERT = {"lh": 12, "rh": 10}


def make_fake(root: Path, subjects=(1, 2), nsd_ids=None, seed: int = 0) -> Path:
    """Per subject: 6 images, lh 12 / rh 10 vertices. Labels:
    prf-visualrois: V1v = lh 0-2 + rh 0-2; V1d = lh 3-5 only; hV4 absent everywhere.
    streams: early = lh 0-5 + rh 0-5; ventral = rh 6-9 only. Other families empty."""
    rng = np.random.default_rng(seed)
    for k, subj in enumerate(subjects):
        ids = list(nsd_ids[k] if nsd_ids is not None else [5, 13, 20, 31, 47, 52])
        sdir = root / f"subj{subj:02d}"
        fdir = sdir / "training_split" / "training_fmri"
        idir = sdir / "training_split" / "training_images"
        mdir = sdir / "roi_masks"
        for d in (fdir, idir, mdir):
            d.mkdir(parents=True, exist_ok=True)
        for row, nid in enumerate(ids):
            Image.fromarray(np.full((4, 4, 3), nid % 255, np.uint8)).save(idir / f"train-{row + 1:04d}_nsd-{nid:05d}.png")
        for hemi, nv in N_VERT.items():
            np.save(fdir / f"{hemi}_training_fmri.npy", rng.standard_normal((len(ids), nv)).astype(np.float32))
            for family, names in FAMILIES.items():
                lab = np.zeros(nv, np.int32)
                if family == "prf-visualrois":
                    lab[0:3] = 1
                    if hemi == "lh":
                        lab[3:6] = 2
                if family == "streams":
                    lab[0:6] = 1
                    if hemi == "rh":
                        lab[6:10] = 5
                np.save(mdir / f"{hemi}.{family}_challenge_space.npy", lab)
        for family, names in FAMILIES.items():
            np.save(mdir / f"mapping_{family}.npy", {0: "Unknown", **{i + 1: r for i, r in enumerate(names)}},
                    allow_pickle=True)
    return root
