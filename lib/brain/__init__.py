"""Brain side of the study: Algonauts/NSD loader, ROI RDMs, noise ceilings, synthetic
subjects and the model-brain analyses. Importing it registers the doctor check."""

from lib.brain.algonauts import (ALL_VERTICES, FAMILIES, PAPER_SUBJECTS, AlgonautsError, BrainData, load_algonauts,
                                 load_subject)
from lib.brain.noise_ceiling import noise_ceiling
from lib.brain.rois import RoiRdms, roi_rdms
from lib.brain.synthetic import write_synthetic_algonauts

__all__ = [
    "ALL_VERTICES", "FAMILIES", "PAPER_SUBJECTS", "AlgonautsError", "BrainData", "RoiRdms", "load_algonauts",
    "load_subject", "noise_ceiling", "roi_rdms", "write_synthetic_algonauts",
]

from lib.brain import checks as _checks  # noqa: E402,F401  (registers doctor / fetch)
