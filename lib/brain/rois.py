"""ROI RDMs: one cosine RDM per subject and ROI, from the Algonauts vertices.

Why this module is careful about empty ROIs: the original analysis reused the previous
ROI's RDM when an ROI had no vertices, so a plotted value could belong to another area.
Here an ROI present in one hemisphere only uses that hemisphere and says so; an ROI absent
in both is skipped for that subject and listed; an ROI kept for fewer than two subjects is
dropped and listed. Nothing is ever NaN-filled or borrowed.

``policy="original"`` reproduces which ROIs the original analysis could use: an ROI that any
subject lacks in either hemisphere was NaN there and is dropped for everyone (23 of the 32
Algonauts ROIs survive).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import rsatoolbox

from lib.brain.algonauts import ALL_VERTICES, FAMILIES, HEMIS, AlgonautsError, BrainData
from lib.gram import ZeroNormError, rdm_from_gram, upper

MODES = ("mean", "concat")
POLICIES = ("per_hemisphere", "original")


@dataclass
class RoiRdms:
    """ROI RDM vectors per subject, ROI table, and what was skipped or fell back, and why."""

    nsd_ids: np.ndarray
    rois: pd.DataFrame                # roi, family, n_subjects, subjects (kept ROIs, file order)
    vectors: dict[str, np.ndarray]    # roi -> (n_subjects_with_roi, n_pairs) upper triangles
    subjects: dict[str, list[int]]    # roi -> subjects whose RDM is in vectors[roi]
    notes: pd.DataFrame               # roi, family, subject, status, detail: every deviation
    mode: str
    _ranked_cache: tuple | None = field(default=None, repr=False, compare=False)  # set by lib.brain.analysis

    def rdms(self, roi: str) -> rsatoolbox.rdm.RDMs:
        """The ROI's RDMs, one per subject (descriptor ``subject``), for rsatoolbox tools."""
        if roi not in self.vectors:
            raise KeyError(f"ROI {roi!r} has no RDMs (kept: {list(self.vectors)}); see .notes for why")
        return rsatoolbox.rdm.RDMs(
            self.vectors[roi],
            dissimilarity_measure="cosine",
            rdm_descriptors={"subject": self.subjects[roi], "roi": [roi] * len(self.subjects[roi])},
            pattern_descriptors={"nsd_id": [int(v) for v in self.nsd_ids]},
        )

    def to_store(self) -> dict:
        """Values for the artifact store (arrays + tables, no pickles)."""
        out = {"nsd_ids": self.nsd_ids, "rois": self.rois.assign(subjects=self.rois["subjects"].map(
            lambda s: ",".join(map(str, s)))), "notes": self.notes, "meta": {"mode": self.mode}}
        for i, roi in enumerate(self.rois["roi"]):
            out[f"vec_{i:03d}"] = self.vectors[roi].astype(np.float32)
        return out

    @classmethod
    def from_store(cls, values: dict) -> "RoiRdms":
        rois = values["rois"].copy()
        rois["subjects"] = rois["subjects"].map(lambda s: [int(v) for v in str(s).split(",") if v])
        vectors = {roi: values[f"vec_{i:03d}"].astype(np.float64) for i, roi in enumerate(rois["roi"])}
        subjects = dict(zip(rois["roi"], rois["subjects"]))
        return cls(values["nsd_ids"], rois, vectors, subjects, values["notes"], values["meta"]["mode"])


def _cosine_vector(gram: np.ndarray, what: str) -> np.ndarray:
    """Upper triangle of the cosine RDM from the Gram matrix of (n_images, n_vertices) patterns."""
    try:
        return upper(rdm_from_gram(gram, "cosine"))
    except ZeroNormError as err:
        raise AlgonautsError(
            f"{what}: images at rows {err.rows[:10]} have an all-zero response pattern, so their cosine "
            "distance is undefined; check the fMRI file (or drop those images)"
        ) from None


def _roi_grams(subject, hemi: str, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]:
    """Gram matrix of every wanted ROI in one hemisphere (only ROIs with vertices).

    Why atoms: ROI families overlap (V1v lies inside the stream "early", and every vertex is
    in "All vertices"), so the vertices are split into atoms, sets sharing the same label in
    every family; each atom's Gram is computed once and added to every ROI containing it.
    That costs one pass over the vertices instead of one per ROI.
    """
    x = subject.fmri[hemi]
    families = [f for f in FAMILIES if (hemi, f) in subject.masks]
    labels = np.stack([subject.masks[(hemi, f)] for f in families]) if families else np.zeros((0, x.shape[1]), int)
    atoms, inverse = np.unique(labels, axis=1, return_inverse=True)
    inverse = inverse.ravel()
    grams: dict[tuple[str, str], np.ndarray] = {}
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(atoms.shape[1] + 1))
    for a in range(atoms.shape[1]):
        idx = order[bounds[a]:bounds[a + 1]]
        xa = np.asarray(x[:, idx], dtype=np.float64)
        g = xa @ xa.T
        targets = [(ALL_VERTICES, ALL_VERTICES)]
        for f, fam in enumerate(families):
            if atoms[f, a] != 0:
                targets.append((fam, subject.mappings[fam][int(atoms[f, a])]))
        for t in targets:
            if t in wanted:
                if t in grams:
                    grams[t] += g
                else:
                    grams[t] = g.copy()
    return grams


def _subject_vectors(s, shared: tuple[list[tuple[str, str]], str]) -> tuple[dict[str, np.ndarray], list[dict]]:
    """One subject's ROI RDM vectors (ROI order) and notes: one task of :func:`roi_rdms`."""
    order, mode = shared
    known = set(s.roi_names())
    wanted = known | {(ALL_VERTICES, ALL_VERTICES)}
    grams = {h: _roi_grams(s, h, wanted) for h in HEMIS}
    vectors: dict[str, np.ndarray] = {}
    notes: list[dict] = []
    for family, roi in order:
        if family != ALL_VERTICES and (family, roi) not in known:
            notes.append(dict(roi=roi, family=family, subject=s.subject, status="skipped",
                              detail="ROI not in this subject's mapping file"))
            continue
        present = [h for h in HEMIS if (family, roi) in grams[h]]
        if not present:
            notes.append(dict(roi=roi, family=family, subject=s.subject, status="skipped",
                              detail="no vertices in either hemisphere"))
            continue
        if len(present) == 1:
            count = s.roi_vertices(family, roi, present[0]).size
            notes.append(dict(roi=roi, family=family, subject=s.subject, status="one hemisphere",
                              detail=f"only {present[0]} has vertices ({count}); its RDM is used alone"))
        what = f"subject {s.subject}, ROI {roi}"
        if mode == "mean":
            vectors[roi] = np.mean([_cosine_vector(grams[h][(family, roi)], f"{what} ({h})") for h in present], axis=0)
        else:
            vectors[roi] = _cosine_vector(sum(grams[h][(family, roi)] for h in present), what)
    return vectors, notes


def roi_rdms(data: BrainData, mode: str = "mean", progress: bool = False,
             policy: str = "per_hemisphere", executor=None) -> RoiRdms:
    """Cosine RDM of every ROI (file order, then "All vertices") for every subject.

    ``mode="mean"``: RDM per hemisphere, averaged over the two (the paper);
    ``mode="concat"``: one RDM over the vertices of both hemispheres together.
    ``policy``: ``per_hemisphere`` keeps an ROI wherever one hemisphere has vertices;
    ``original`` drops an ROI that any subject lacks in either hemisphere.
    ``executor``: where the per-subject tasks run (lib.executor; default this process).
    """
    if mode not in MODES:
        raise ValueError(f"roi_rdm_mode must be one of {list(MODES)}, got {mode!r}")
    if policy not in POLICIES:
        raise ValueError(f"roi_policy must be one of {list(POLICIES)}, got {policy!r}")
    from lib.executor import InProcessExecutor

    order: list[tuple[str, str]] = []
    for s in data.subjects:
        for item in s.roi_names() + [(ALL_VERTICES, ALL_VERTICES)]:
            if item not in order:
                order.append(item)
    # "All vertices" last, whatever order the subjects listed their ROIs in
    order = [o for o in order if o[0] != ALL_VERTICES] + [(ALL_VERTICES, ALL_VERTICES)]
    vectors: dict[str, list[np.ndarray]] = {roi: [] for _, roi in order}
    subjects: dict[str, list[int]] = {roi: [] for _, roi in order}
    notes: list[dict] = []
    executor = executor if executor is not None else InProcessExecutor()
    per_subject = executor.map(_subject_vectors, data.subjects, desc="ROI RDMs", progress=progress,
                               shared=(order, mode))
    for s, (vecs, subject_notes) in zip(data.subjects, per_subject):
        notes.extend(subject_notes)
        for roi, vec in vecs.items():
            vectors[roi].append(vec)
            subjects[roi].append(s.subject)
    rows, kept = [], {}
    incomplete = {}  # roi -> subjects lacking it in a hemisphere (the original policy's drop rule)
    for n in notes:
        if n["status"] in ("skipped", "one hemisphere"):
            incomplete.setdefault(n["roi"], []).append(n["subject"])
    for family, roi in order:
        if policy == "original" and roi in incomplete:
            notes.append(dict(roi=roi, family=family, subject=-1, status="dropped",
                              detail="roi_policy=original: subject(s) "
                                     f"{', '.join(map(str, incomplete[roi]))} lack vertices in a hemisphere"))
            continue
        if len(subjects[roi]) < 2:
            notes.append(dict(roi=roi, family=family, subject=-1, status="dropped",
                              detail=f"present in {len(subjects[roi])} subject(s); a group analysis with a "
                                     "noise ceiling needs at least 2"))
            continue
        kept[roi] = np.stack(vectors[roi])
        rows.append(dict(roi=roi, family=family, n_subjects=len(subjects[roi]), subjects=subjects[roi]))
    rois = pd.DataFrame(rows, columns=["roi", "family", "n_subjects", "subjects"])
    notes_df = pd.DataFrame(notes, columns=["roi", "family", "subject", "status", "detail"])
    return RoiRdms(np.asarray(data.nsd_ids), rois, kept, {r: subjects[r] for r in kept}, notes_df, mode)
