"""Synthetic subjects: a complete Algonauts-layout folder whose ROIs carry known structure.

Why: the real fMRI needs a registration we cannot do for the user, yet the brain chapter
and its tests must run. Each ROI's responses mix named representational structures (the
saliency RDM, the semantic RDM of the same images, and an ROI-specific "other" structure
shared by all subjects) in planted proportions, plus subject noise, so an analysis can be
checked for *recovering* what was planted.

How: every vertex belongs to one atomic segment (a visual or category ROI, or the rest
of a stream, or unlabelled cortex). A segment with weights a_k has vertex responses
x = Σ_k sqrt(a_k) L_k r_k, with L_k L_kᵀ = S_k the cosine-similarity matrix of structure k
and r_k ~ N(0, I) drawn per vertex, so E[X Xᵀ] = n_vertices · Σ_k a_k S_k and the
expected cosine RDM is Σ_k a_k D_k / Σ_k a_k. The a_k are the planted weights divided
by each structure's spread (standard deviation of its RDM), so a weight is a share of
the *standardised* structure, the scale on which a regression of the ROI RDM recovers it.
Family labels follow the segments: V1v lies inside the stream "early", FFA-1 inside
"ventral", and so on, so a stream's planted mix is the vertex-weighted mix of its parts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from lib.brain.algonauts import FAMILIES, HEMIS, fmri_path, images_dir, mapping_path, mask_path

STRUCTURES = ("saliency", "semantic", "other")

# segment -> (stream, planted weights (saliency, semantic, other), vertices per hemisphere
# at full scale, roughly the release's counts). Category/visual ROIs are their own segment;
# "<stream> rest" is the part of a stream outside them; "cortex" carries no label.
SEGMENTS: dict[str, tuple[str | None, tuple[float, float, float], int]] = {
    "V1v": ("early", (0.80, 0.00, 0.20), 650), "V1d": ("early", (0.80, 0.00, 0.20), 650),
    "V2v": ("early", (0.75, 0.05, 0.20), 550), "V2d": ("early", (0.75, 0.05, 0.20), 550),
    "V3v": ("early", (0.65, 0.10, 0.25), 450), "V3d": ("early", (0.65, 0.10, 0.25), 450),
    "hV4": ("midventral", (0.45, 0.25, 0.30), 350),
    "EBA": ("lateral", (0.15, 0.60, 0.25), 1200), "FBA-1": ("lateral", (0.10, 0.60, 0.30), 150),
    "FBA-2": ("ventral", (0.05, 0.65, 0.30), 200), "mTL-bodies": ("ventral", (0.05, 0.60, 0.35), 20),
    "OFA": ("lateral", (0.20, 0.50, 0.30), 250), "FFA-1": ("ventral", (0.10, 0.65, 0.25), 250),
    "FFA-2": ("ventral", (0.05, 0.70, 0.25), 200), "mTL-faces": ("ventral", (0.05, 0.60, 0.35), 30),
    "aTL-faces": ("ventral", (0.00, 0.70, 0.30), 60),
    "OPA": ("lateral", (0.20, 0.50, 0.30), 700), "PPA": ("ventral", (0.05, 0.70, 0.25), 500),
    "RSC": ("parietal", (0.05, 0.60, 0.35), 300),
    "OWFA": ("lateral", (0.15, 0.55, 0.30), 150), "VWFA-1": ("ventral", (0.10, 0.60, 0.30), 300),
    "VWFA-2": ("ventral", (0.05, 0.65, 0.30), 200), "mfs-words": ("ventral", (0.05, 0.60, 0.35), 150),
    "mTL-words": ("ventral", (0.05, 0.60, 0.35), 50),
    "early rest": ("early", (0.70, 0.05, 0.25), 700),
    "midventral rest": ("midventral", (0.40, 0.30, 0.30), 650),
    "midlateral rest": ("midlateral", (0.35, 0.35, 0.30), 1000),
    "midparietal rest": ("midparietal", (0.40, 0.20, 0.40), 1000),
    "ventral rest": ("ventral", (0.05, 0.65, 0.30), 2800),
    "lateral rest": ("lateral", (0.10, 0.60, 0.30), 1500),
    "parietal rest": ("parietal", (0.15, 0.35, 0.50), 2700),
    "cortex": (None, (0.10, 0.10, 0.80), 1500),
}
# Realistic gaps: ROI -> {"hemis": absent hemispheres, "subjects": which (None = all)}.
DEFAULT_ABSENT: dict[str, dict] = {
    "mTL-bodies": {"hemis": ("lh", "rh"), "subjects": None},   # dropped everywhere
    "aTL-faces": {"hemis": ("lh",), "subjects": None},         # right hemisphere only
    "mTL-words": {"hemis": ("lh", "rh"), "subjects": "second"},  # missing in one subject
}
_FAMILY_OF = {roi: fam for fam, names in FAMILIES.items() for roi in names}
N_OTHER_DIMS = 12


def _similarity(rdm: np.ndarray) -> np.ndarray:
    rdm = np.asarray(rdm, dtype=np.float64)
    if rdm.ndim != 2 or rdm.shape[0] != rdm.shape[1]:
        raise ValueError(f"structures must be square RDMs, got shape {rdm.shape}")
    return 1.0 - (rdm + rdm.T) / 2.0


def _factor(sim: np.ndarray) -> np.ndarray:
    """L (n x rank) with L Lᵀ = sim; eigenvalues at rounding level are dropped (exact, and
    low-rank structures then cost rank, not n, per vertex)."""
    vals, vecs = np.linalg.eigh(sim)
    keep = vals > 1e-10 * max(float(vals.max()), 1e-300)
    return vecs[:, keep] * np.sqrt(vals[keep])[None, :]


def _spread(sim: np.ndarray) -> float:
    iu = np.triu_indices(len(sim), k=1)
    sd = float(np.std(sim[iu]))
    if sd <= 0:
        raise ValueError("a structure RDM is constant: it cannot be planted")
    return sd


def _other_similarity(name: str, n: int, seed: int) -> np.ndarray:
    """Cosine similarity of random per-image features, the same for every subject."""
    rng = np.random.default_rng([seed, 7, *name.encode()])
    f = rng.standard_normal((n, N_OTHER_DIMS))
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    return f @ f.T


def _absent(roi: str, hemi: str, subject_pos: int, absent: dict[str, dict]) -> bool:
    spec = absent.get(roi)
    if not spec or hemi not in spec["hemis"]:
        return False
    who = spec.get("subjects")
    return who is None or (who == "second" and subject_pos == 1) or (isinstance(who, (list, tuple)) and subject_pos in who)


def write_synthetic_algonauts(
    root: str | Path,
    images: list[np.ndarray],
    nsd_ids: list[int] | np.ndarray,
    structures: dict[str, np.ndarray],
    subjects: list[int] | tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8),
    noise: float = 1.0,
    seed: int = 0,
    scale: float = 0.05,
    absent: dict[str, dict] | None = None,
    coco_ids: list[int] | None = None,
    write_images: bool = True,
) -> pd.DataFrame:
    """Write ``root/subjXX/...`` like the release and return the planted table.

    structures: square RDMs over the images, keys "saliency" and "semantic" (cosine
    distances; their similarity matrices must be PSD, as cosine ones are). ``noise``: noise
    standard deviation per vertex relative to the image-dependent part of the signal. ``scale``: vertex
    counts relative to the release. Also writes ``planted.csv`` (per subject and ROI the
    planted shares, by vertex count) and a miniature ``nsd_stim_info_merged.csv``.
    """
    root = Path(root)
    n = len(images)
    nsd_ids = np.asarray(nsd_ids, dtype=np.int64)
    if len(nsd_ids) != n or len(set(nsd_ids.tolist())) != n:
        raise ValueError(f"need {n} distinct NSD ids, got {len(set(nsd_ids.tolist()))}")
    missing = [k for k in ("saliency", "semantic") if k not in structures]
    if missing:
        raise ValueError(f"structures must include {missing}")
    absent = DEFAULT_ABSENT if absent is None else absent
    sims = {k: _similarity(structures[k]) for k in ("saliency", "semantic")}
    for k, s in sims.items():
        if s.shape != (n, n):
            raise ValueError(f"structure {k!r} is {s.shape[0]}x{s.shape[1]}, images are {n}")
    factors = {k: _factor(s) for k, s in sims.items()}
    spreads = {k: _spread(s) for k, s in sims.items()}
    other = {seg: _other_similarity(seg, n, seed) for seg in SEGMENTS}
    other_factor = {seg: _factor(s) for seg, s in other.items()}
    other_spread = {seg: _spread(s) for seg, s in other.items()}
    order = np.argsort(nsd_ids)  # the release lists images in NSD-id order within a subject
    planted_rows = []
    for pos, subj in enumerate(subjects):
        srng = np.random.default_rng([seed, subj])
        sdir = root / f"subj{subj:02d}"
        (sdir / "roi_masks").mkdir(parents=True, exist_ok=True)
        fmri_path(root, subj, "lh").parent.mkdir(parents=True, exist_ok=True)
        idir = images_dir(root, subj)
        idir.mkdir(parents=True, exist_ok=True)
        if write_images:
            from PIL import Image

            for row, i in enumerate(order):
                Image.fromarray(np.asarray(images[i], dtype=np.uint8)).save(
                    idir / f"train-{row + 1:04d}_nsd-{int(nsd_ids[i]):05d}.png")
        for family, names in FAMILIES.items():
            np.save(mapping_path(root, subj, family), {0: "Unknown", **{i + 1: r for i, r in enumerate(names)}},
                    allow_pickle=True)
        # per-ROI accumulators of planted weight x vertices, for the planted table
        acc: dict[str, np.ndarray] = {}
        counts: dict[tuple[str, str], int] = {}
        for hemi in HEMIS:
            seg_sizes = {}
            for seg, (_, _, full) in SEGMENTS.items():
                size = max(4, int(round(full * scale * srng.uniform(0.8, 1.2))))
                if _absent(seg, hemi, pos, absent):
                    size = 0
                seg_sizes[seg] = size
            total = sum(seg_sizes.values())
            x = np.empty((n, total), dtype=np.float32)
            labels = {f: np.zeros(total, dtype=np.int32) for f in FAMILIES}
            start = 0
            for seg, (stream, w, _) in SEGMENTS.items():
                v = seg_sizes[seg]
                if v == 0:
                    continue
                a = np.array([w[0] / spreads["saliency"], w[1] / spreads["semantic"], w[2] / other_spread[seg]])
                a /= a.sum()
                sig = np.zeros((n, v))
                # noise is relative to the image-dependent part of the signal (the mixture's
                # variance around its mean pattern), not to the pattern shared by all images
                mix = sum(a[k] * m for k, m in enumerate((sims["saliency"], sims["semantic"], other[seg])))
                noise_sd = noise * np.sqrt(max(np.trace(mix) - mix.sum() / n, 1e-12) / n)
                for k, L in ((0, factors["saliency"]), (1, factors["semantic"]), (2, other_factor[seg])):
                    if a[k] > 0:
                        sig += np.sqrt(a[k]) * (L @ srng.standard_normal((L.shape[1], v)))
                sig += noise_sd * srng.standard_normal((n, v))
                x[:, start:start + v] = sig[order]
                sl = slice(start, start + v)
                if seg in _FAMILY_OF:
                    fam = _FAMILY_OF[seg]
                    labels[fam][sl] = FAMILIES[fam].index(seg) + 1
                if stream is not None:
                    labels["streams"][sl] = FAMILIES["streams"].index(stream) + 1
                for roi in ([seg] if seg in _FAMILY_OF else []) + ([stream] if stream else []) + ["All vertices"]:
                    acc.setdefault(roi, np.zeros(3))
                    # expected Gram share of structure k is v * a_k; times its spread = standardised share
                    acc[roi] += v * a * np.array([spreads["saliency"], spreads["semantic"], other_spread[seg]])
                    counts[(roi, hemi)] = counts.get((roi, hemi), 0) + v
                start += v
            np.save(fmri_path(root, subj, hemi), x, allow_pickle=False)
            for family in FAMILIES:
                np.save(mask_path(root, subj, hemi, family), labels[family], allow_pickle=False)
        for roi, tot in acc.items():
            share = tot / tot.sum()
            planted_rows.append(dict(subject=subj, roi=roi, saliency=share[0], semantic=share[1], other=share[2],
                                     sal_share=share[0] / max(share[0] + share[1], 1e-12),
                                     n_lh=counts.get((roi, "lh"), 0), n_rh=counts.get((roi, "rh"), 0)))
    planted = pd.DataFrame(planted_rows)
    planted.to_csv(root / "planted.csv", index=False)
    coco = list(coco_ids) if coco_ids is not None else [int(v) + 100000 for v in nsd_ids]
    pd.DataFrame({
        "nsdId": nsd_ids, "cocoId": coco, "cocoSplit": ["train2017"] * n,
        "cropBox": ["(0, 0, 0, 0)"] * n, "shared1000": [True] * n,
    }).to_csv(root / "nsd_stim_info_merged.csv", index=True)
    with open(root / "synthetic.json", "w") as fh:
        json.dump({"noise": noise, "seed": seed, "scale": scale, "subjects": list(subjects),
                   "n_images": n, "absent": {k: {"hemis": list(v["hemis"]), "subjects": v["subjects"]}
                                             for k, v in absent.items()}}, fh)
    return planted


def planted_table(root: str | Path) -> pd.DataFrame:
    """The planted shares written by :func:`write_synthetic_algonauts`, averaged over subjects."""
    df = pd.read_csv(Path(root) / "planted.csv")
    return df.groupby("roi", sort=False)[["saliency", "semantic", "other", "sal_share"]].mean().reset_index()
