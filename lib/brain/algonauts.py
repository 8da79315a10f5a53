"""Loader for the Algonauts 2023 challenge release (NSD fMRI on the fsaverage surface).

Layout per subject ``<root>/subjXX/``::

    training_split/training_fmri/{lh,rh}_training_fmri.npy   images x vertices
    training_split/training_images/train-0001_nsd-00013.png  row order = sorted names
    roi_masks/{lh,rh}.<family>_challenge_space.npy           one integer label per vertex
    roi_masks/mapping_<family>.npy                           label -> ROI name (0 = outside)

Why a loader of our own: the analysis needs the images *every* selected subject saw,
matched by NSD id, and every mismatch (rows vs images, vertices vs masks, NaNs) must be
caught here with a message naming the file, not surface later as a wrong RDM.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HEMIS = ("lh", "rh")
# ROI families in the release, and the ROI names of each in label order (label 1, 2, ...).
FAMILIES: dict[str, tuple[str, ...]] = {
    "prf-visualrois": ("V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4"),
    "floc-bodies": ("EBA", "FBA-1", "FBA-2", "mTL-bodies"),
    "floc-faces": ("OFA", "FFA-1", "FFA-2", "mTL-faces", "aTL-faces"),
    "floc-places": ("OPA", "PPA", "RSC"),
    "floc-words": ("OWFA", "VWFA-1", "VWFA-2", "mfs-words", "mTL-words"),
    "streams": ("early", "midventral", "midlateral", "midparietal", "ventral", "lateral", "parietal"),
}
ALL_VERTICES = "All vertices"
PAPER_SUBJECTS = (1, 2, 3, 4, 5, 6, 8)
IMAGE_NAME = re.compile(r"^train-(\d+)_nsd-(\d+)\.png$")


class AlgonautsError(ValueError):
    """The Algonauts folder is missing something or is inconsistent; the message says how to fix it."""


def subject_dir(root: str | Path, subject: int) -> Path:
    return Path(root) / f"subj{subject:02d}"


def fmri_path(root: str | Path, subject: int, hemi: str) -> Path:
    return subject_dir(root, subject) / "training_split" / "training_fmri" / f"{hemi}_training_fmri.npy"


def images_dir(root: str | Path, subject: int) -> Path:
    return subject_dir(root, subject) / "training_split" / "training_images"


def mask_path(root: str | Path, subject: int, hemi: str, family: str) -> Path:
    return subject_dir(root, subject) / "roi_masks" / f"{hemi}.{family}_challenge_space.npy"


def mapping_path(root: str | Path, subject: int, family: str) -> Path:
    return subject_dir(root, subject) / "roi_masks" / f"mapping_{family}.npy"


_HOWTO = (
    "The Algonauts 2023 data need a (free) registration at http://algonauts.csail.mit.edu/challenge.html; "
    "download the challenge data and unpack it so that <algonauts_dir>/subj01/training_split exists "
    "(set -p algonauts_dir=<folder>), or run with -p brain_source=synthetic."
)


def read_npy(path: Path, expected: str, mmap: bool = False, howto: str = _HOWTO) -> np.ndarray:
    """``np.load`` of a release file; a missing, truncated or garbled file is an
    :class:`AlgonautsError` naming the file and what it should hold."""
    if not path.is_file():
        raise AlgonautsError(f"missing file {path} ({expected}). {howto}")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        size = path.stat().st_size
        raise AlgonautsError(
            f"{path} ({size} bytes) cannot be read as a NumPy array ({err}); expected {expected}. The file is "
            f"truncated or not the release's; replace it with the one from the archive. {howto}"
        ) from None


def read_mapping(path: Path, howto: str = _HOWTO) -> dict[int, str]:
    """label -> ROI name. The release stores a Python dict with ``np.save`` (a pickled object
    array), so pickle loading is allowed for this file only; a plain array of names indexed by
    label is accepted too."""
    if not path.is_file():
        raise AlgonautsError(f"missing ROI mapping file {path}. {howto}")
    try:
        try:
            arr = np.load(path, allow_pickle=False)
            mapping = {i: str(name) for i, name in enumerate(arr.tolist())}
        except ValueError as err:  # object array: the release's pickled dict
            if "allow_pickle" not in str(err):
                raise
            obj = np.load(path, allow_pickle=True)
            mapping = obj.item() if obj.shape == () else {i: str(v) for i, v in enumerate(obj.tolist())}
    except (ValueError, OSError, EOFError, TypeError, AttributeError, ImportError, pickle.UnpicklingError) as err:
        raise AlgonautsError(f"{path} cannot be read ({type(err).__name__}: {err}); expected a dict label -> ROI "
                             f"name saved with np.save. Replace it with the one from the archive. {howto}") from None
    if not isinstance(mapping, dict):
        raise AlgonautsError(f"{path} should hold a dict label -> ROI name, found {type(mapping).__name__}")
    return {int(k): str(v) for k, v in mapping.items()}


@dataclass
class Subject:
    """One subject's fMRI (rows = its images in file order), NSD ids and ROI masks."""

    subject: int
    nsd_ids: np.ndarray                      # (n_images,) int, row order of the fMRI
    image_paths: list[Path]
    fmri: dict[str, np.ndarray]              # hemi -> (n_images, n_vertices); float32 after load_algonauts
    masks: dict[tuple[str, str], np.ndarray]  # (hemi, family) -> (n_vertices,) int labels
    mappings: dict[str, dict[int, str]]      # family -> label -> name

    def roi_names(self) -> list[tuple[str, str]]:
        """(family, roi) in file order (families in release order, labels ascending)."""
        out = []
        for family in FAMILIES:
            for label in sorted(self.mappings[family]):
                if label != 0:
                    out.append((family, self.mappings[family][label]))
        return out

    def roi_vertices(self, family: str, roi: str, hemi: str) -> np.ndarray:
        """Indices of the vertices of ``roi`` in one hemisphere (may be empty)."""
        if family == ALL_VERTICES:
            return np.arange(self.fmri[hemi].shape[1])
        labels = [k for k, v in self.mappings[family].items() if v == roi]
        if not labels:
            raise KeyError(f"ROI {roi!r} is not in the {family} mapping of subject {self.subject}")
        return np.flatnonzero(np.isin(self.masks[(hemi, family)], labels))


def list_images(root: str | Path, subject: int, howto: str = _HOWTO) -> tuple[list[Path], np.ndarray]:
    """Training image paths in row order (sorted names) and their NSD ids."""
    folder = images_dir(root, subject)
    if not folder.is_dir():
        raise AlgonautsError(f"missing image folder {folder}. {howto}")
    paths = sorted(p for p in folder.iterdir() if p.suffix == ".png")
    ids = []
    for p in paths:
        m = IMAGE_NAME.match(p.name)
        if not m:
            raise AlgonautsError(
                f"image {p} is not named like the release (train-0001_nsd-00013.png); "
                "rename it or remove it from the folder"
            )
        ids.append(int(m.group(2)))
    if not paths:
        raise AlgonautsError(f"no .png images in {folder}. {howto}")
    return paths, np.asarray(ids, dtype=np.int64)


def load_subject(root: str | Path, subject: int, families: tuple[str, ...] = tuple(FAMILIES),
                 howto: str = _HOWTO) -> Subject:
    """Read and check one subject's folder; ``howto`` ends every error (how to get the data)."""
    sdir = subject_dir(root, subject)
    if not sdir.is_dir():
        present = sorted(p.name for p in Path(root).glob("subj*")) if Path(root).is_dir() else []
        raise AlgonautsError(
            f"missing subject folder {sdir} (found: {present or 'nothing'}). Set -p subjects=[...] to the "
            f"subjects you have, or add the folder. {howto}"
        )
    paths, ids = list_images(root, subject, howto)
    fmri: dict[str, np.ndarray] = {}
    for hemi in HEMIS:
        path = fmri_path(root, subject, hemi)
        x = read_npy(path, "a float array images x vertices (the subject's training fMRI)", mmap=True, howto=howto)
        if x.ndim != 2 or x.shape[0] != len(paths):
            raise AlgonautsError(
                f"{path} has shape {x.shape} but {images_dir(root, subject)} holds {len(paths)} images; "
                "each fMRI row must be one image (rows in sorted image-name order). Re-extract the subject's "
                "training_split from the release."
            )
        fmri[hemi] = x  # memory-mapped; rows are selected (and checked) by load_algonauts
    masks: dict[tuple[str, str], np.ndarray] = {}
    mappings: dict[str, dict[int, str]] = {}
    for family in families:
        mappings[family] = read_mapping(mapping_path(root, subject, family), howto)
        for hemi in HEMIS:
            path = mask_path(root, subject, hemi, family)
            mask = read_npy(path, "one integer ROI label per vertex (challenge space)", howto=howto)
            mask = mask.astype(np.int64).ravel()
            if mask.shape[0] != fmri[hemi].shape[1]:
                raise AlgonautsError(
                    f"{path} has {mask.shape[0]} entries but {fmri_path(root, subject, hemi)} has "
                    f"{fmri[hemi].shape[1]} vertices; the mask must be the challenge-space one "
                    "(*_challenge_space.npy), not the fsaverage-space one"
                )
            unknown = sorted(set(np.unique(mask).tolist()) - set(mappings[family]) - {0})
            if unknown:
                raise AlgonautsError(f"{path} uses labels {unknown} missing from {mapping_path(root, subject, family)}")
            masks[(hemi, family)] = mask
    return Subject(subject, ids, paths, fmri, masks, mappings)


@dataclass
class BrainData:
    """Selected subjects restricted to the images all of them saw, rows in ``nsd_ids`` order."""

    root: Path
    subjects: list[Subject]
    nsd_ids: np.ndarray                       # (n,) sorted NSD ids shared by all subjects
    image_paths: list[Path]                   # the first subject's PNG of each shared id
    notes: list[str] = field(default_factory=list)

    @property
    def subject_ids(self) -> list[int]:
        return [s.subject for s in self.subjects]


def load_algonauts(root: str | Path, subjects: list[int] | tuple[int, ...], howto: str = _HOWTO) -> BrainData:
    """Load the subjects and keep, in every one, the rows of the images all of them saw.

    ``howto`` ends every error; synthetic subjects pass their own (no registration)."""
    root = Path(root)
    if not root.is_dir():
        raise AlgonautsError(f"Algonauts folder {root} does not exist. {howto}")
    if len(set(subjects)) != len(subjects) or not subjects:
        raise AlgonautsError(f"subjects must be a non-empty list of distinct ids, got {list(subjects)}")
    loaded = [load_subject(root, s, howto=howto) for s in subjects]
    shared = loaded[0].nsd_ids
    for s in loaded[1:]:
        shared = np.intersect1d(shared, s.nsd_ids)
    shared = np.unique(shared)
    if len(shared) < 3:
        raise AlgonautsError(
            f"the subjects {list(subjects)} share only {len(shared)} images; an RDM needs at least 3. "
            "Choose subjects that saw common images (the NSD shared-1000 set)"
        )
    notes = []
    for s in loaded:
        order = {int(v): i for i, v in enumerate(s.nsd_ids)}
        if len(order) != len(s.nsd_ids):
            raise AlgonautsError(f"subject {s.subject}: the same NSD id appears twice in {images_dir(root, s.subject)}")
        rows = np.asarray([order[int(v)] for v in shared])
        if len(rows) != len(s.nsd_ids):
            notes.append(f"subject {s.subject}: {len(s.nsd_ids)} images, {len(rows)} shared with all others kept")
        s.fmri = {h: _checked_rows(fmri_path(root, s.subject, h), x, rows) for h, x in s.fmri.items()}
        s.image_paths = [s.image_paths[i] for i in rows]
        s.nsd_ids = shared.copy()
    return BrainData(root, loaded, shared, list(loaded[0].image_paths), notes)


def _checked_rows(path: Path, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The selected rows as float32, refusing NaN/inf vertices (they would poison every RDM)."""
    out = np.asarray(x[np.sort(rows)], dtype=np.float32)[np.argsort(np.argsort(rows))]
    bad = np.flatnonzero(~np.isfinite(out).all(axis=0))
    if bad.size:
        raise AlgonautsError(
            f"{path} has NaN/inf values in {bad.size} vertices (first: {bad[:5].tolist()}); "
            "remove or impute those vertices before the analysis"
        )
    return out


def load_images(paths: list[Path]) -> list[np.ndarray]:
    """RGB uint8 arrays of the PNGs (the release's images are already NSD's crops)."""
    from PIL import Image

    out = []
    for p in paths:
        with Image.open(p) as im:
            out.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
    return out
