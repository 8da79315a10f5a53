"""Typed step specs: what each cached step depends on, and its cache key.

Why: a cache key hand-picked from an untyped ``params`` dict misses inputs (the saliency
device, the weights file, the images of a release) and lets stale results through. Here
every step has a frozen dataclass built once from the validated profile; a step's key is

    hash(step name, code version, spec fields, keys of its inputs)

so a field that changes a result is in the key by construction. The code version is a
hash of the source of the modules the step runs (docstrings and comments excluded), so
nobody has to remember to bump a version string.

Input files enter keys by content (:func:`file_digest`, cached by path + size + mtime, so
warm runs do not re-read gigabytes).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, ClassVar, Iterable

# ----------------------------------------------------------------------------- ingredients

def files_digest(paths: Iterable[str | os.PathLike], root: str | os.PathLike | None = None,
                 memo_dir: str | os.PathLike | None = None) -> list[list[str]]:
    """[name, digest] per file (names relative to ``root`` when given, else file names),
    sorted by name. Content hashes, memoised by path + size + mtime: in this process, and
    across processes in the store's file-digest index (:mod:`lib.filehash`) when ``memo_dir``
    (the store root) is given, so a warm run reads no file twice."""
    from lib import filehash

    rows = []
    for p in paths:
        p = Path(p).resolve()
        name = str(p.relative_to(Path(root).resolve())) if root is not None else p.name
        rows.append([name, filehash.file_digest(p, memo_dir)])
    return sorted(rows)


def file_digest(path: str | os.PathLike, memo_dir: str | os.PathLike | None = None) -> str:
    """SHA-256 of one file's content (see :func:`files_digest` for the memo)."""
    return files_digest([path], memo_dir=memo_dir)[0][1]


def _source_files(module: str) -> list[Path]:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ImportError(f"code version: module {module!r} not found")
    if spec.submodule_search_locations:  # a package: every module in it
        return sorted(p for loc in spec.submodule_search_locations for p in Path(loc).rglob("*.py"))
    return [Path(spec.origin)]


_CODE_DIGESTS: dict[tuple[str, int, int], str] = {}  # memo (path, size, mtime_ns) -> code hash


def _code_digest(path: Path) -> str:
    st = path.stat()
    memo = (str(path), st.st_size, st.st_mtime_ns)
    if memo not in _CODE_DIGESTS:
        _CODE_DIGESTS[memo] = hashlib.sha256(_code_text(path).encode()).hexdigest()
    return _CODE_DIGESTS[memo]


def _code_text(path: Path) -> str:
    """The code of a file without comments, docstrings or formatting (its AST)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def code_version(modules: Iterable[str]) -> str:
    """Hash of the code of ``modules`` (dotted names; a package means all its modules).
    Changes when their code changes; a comment or docstring edit leaves it alone."""
    h = hashlib.sha256()
    for module in sorted(set(modules)):
        for path in _source_files(module):
            h.update(f"{module}:{path.name}:{_code_digest(path)}".encode())
    return h.hexdigest()[:16]


def package_version(name: str) -> str:
    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return "absent"


# Environment variables known to change a network's layer table (timm's ViT-B/16 has 113
# hooked layers with fused attention, 125 with TIMM_FUSED_ATTN=0).
LAYER_ENVIRONMENT = ("TIMM_FUSED_ATTN",)


def layer_environment() -> tuple[tuple[str, str], ...]:
    """The settings of :data:`LAYER_ENVIRONMENT` in this process (unset = "")."""
    return tuple((k, os.environ.get(k, "")) for k in LAYER_ENVIRONMENT)


def weights_identity(model: str, params: dict[str, Any]) -> str:
    """Which weights a run of ``model`` uses, as :func:`lib.models.weights_tag` names them:
    source, name, resolved tag, the weights file's sha256 (or the seed), the library version
    and layer-changing settings, and the precision on the run's device. The one place the
    extraction key learns about weights."""
    from lib import models

    return models.weights_tag(model, params["weights"], params["seed"], _device(params))


def saliency_implementation(device: str) -> str:
    """Which Itti–Koch code runs on ``device`` (resolved): OpenCV on CPU, torch elsewhere.
    They differ by up to 2e-3, enough to flip a quantile class, so keys must tell them apart."""
    kind = device.split(":")[0]
    if kind == "cpu":
        import cv2

        return f"opencv-{cv2.__version__}/cpu"
    return f"torch-{package_version('torch')}/{kind}"


# ----------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class StepSpec:
    """Base of every step spec. Subclasses set ``STEP`` (the store folder) and ``MODULES``
    (the code the step runs); nested specs contribute their own modules."""

    STEP: ClassVar[str] = ""
    MODULES: ClassVar[tuple[str, ...]] = ()

    def modules(self) -> tuple[str, ...]:
        mods = set(self.MODULES)
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, StepSpec):
                mods |= set(v.modules())
        return tuple(sorted(mods))

    def version(self) -> str:
        """Code version of this step (and of the steps nested in it)."""
        return code_version(self.modules())

    def ingredients(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key(self, **inputs: Any) -> str:
        """The cache key: this spec, the keys/fingerprints of its inputs, the code version."""
        from lib.store import make_key

        return make_key(self.STEP, self.version(), {"spec": self.ingredients(), "inputs": inputs})

    def get_or_compute(self, store, inputs: dict[str, Any], compute) -> dict[str, Any]:
        """``store.get_or_compute`` under this spec's key (same folder layout as before)."""
        return store.get_or_compute(self.STEP, self.version(), {"spec": self.ingredients(), "inputs": inputs},
                                    compute)

    def get_or_compute_folder(self, store, inputs: dict[str, Any], write) -> Path:
        """``store.get_or_compute_folder`` under this spec's key (steps writing a folder tree)."""
        return store.get_or_compute_folder(self.STEP, self.version(),
                                           {"spec": self.ingredients(), "inputs": inputs}, write)


def _device(params: dict[str, Any]) -> str:
    from lib.config import pick_device

    return pick_device(params.get("device", "auto"))


@dataclass(frozen=True)
class SaliencySpec(StepSpec):
    """Itti–Koch maps: the channel swap and the implementation that runs (device)."""

    STEP: ClassVar[str] = "saliency"
    MODULES: ClassVar[tuple[str, ...]] = ("lib.stimuli.saliency",)
    swap_rb: bool
    implementation: str

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "SaliencySpec":
        return cls(bool(params["swap_rb"]), saliency_implementation(_device(params)))


@dataclass(frozen=True)
class CaptionSpec(StepSpec):
    """Sentence embeddings of captions (mean per image)."""

    STEP: ClassVar[str] = "caption_embeddings"
    MODULES: ClassVar[tuple[str, ...]] = ("lib.stimuli.captions",)
    model: str
    library: str

    @classmethod
    def for_model(cls, model: str) -> "CaptionSpec":
        return cls(model, f"sentence-transformers-{package_version('sentence-transformers')}")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "CaptionSpec":
        return cls.for_model(params["caption_model"])


@dataclass(frozen=True)
class StimulusSpec(StepSpec):
    """The stimulus set: source selection, distractor search, its saliency and captions."""

    STEP: ClassVar[str] = "stimulus_set"
    MODULES: ClassVar[tuple[str, ...]] = ("lib.stimuli.stimulus_set", "lib.stimuli.distractors",
                                          "lib.stimuli.sources", "lib.stimuli.imageio")
    source: str
    n_images: int | None
    nsd_shared1000: bool
    seed: int
    selection_mode: str
    sem_similar_max: float
    sem_dissimilar_min: float
    sal_little_max: float
    sal_alot_min: float
    quantile_low: float
    quantile_high: float
    n_distractors: int | None
    n_placements: int
    max_image_side: int
    distractor_pool: str
    paste_geometry: str
    thresholds_caption_model: str
    thresholds_swap_rb: bool
    saliency_threshold_transfer: str
    max_distractor_reuse: int | None
    saliency: SaliencySpec
    captions: CaptionSpec

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "StimulusSpec":
        own = {f.name: params[f.name] for f in dataclasses.fields(cls) if f.name not in ("saliency", "captions")}
        return cls(**own, saliency=SaliencySpec.from_params(params), captions=CaptionSpec.from_params(params))


@dataclass(frozen=True)
class ExtractionSpec(StepSpec):
    """One network's layer RDMs: weights identity, preprocessing, layer set, metric and
    the environment settings that change its layer table. Batch size, memory budget and
    device do not change the result (the engine's tests check it), so they are not here."""

    STEP: ClassVar[str] = "model_rdms"
    MODULES: ClassVar[tuple[str, ...]] = ("lib.extract", "lib.gram", "lib.models")
    model: str
    weights: str
    preprocessing: str
    layers: str
    layer_rule: str
    metric: str
    environment: tuple[tuple[str, str], ...]

    @classmethod
    def from_params(cls, params: dict[str, Any], model: str) -> "ExtractionSpec":
        return cls(model, weights_identity(model, params), params["preprocessing"], params["layers"],
                   params["layer_rule"], params["metric"], layer_environment())


@dataclass(frozen=True)
class InferenceSpec(StepSpec):
    """RSA tables (RSA, ΔRSA, partial RSA, contrasts): resampling counts, CI level, seed."""

    STEP: ClassVar[str] = "rsa"
    MODULES: ClassVar[tuple[str, ...]] = ("lib.rsa", "lib.inference", "lib.gram")
    n_permutations: int
    n_bootstrap: int
    level: float
    seed: int

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "InferenceSpec":
        return cls(params["n_permutations"], params["n_bootstrap"], 1 - 0.05, params["seed"])


@dataclass(frozen=True)
class ReferenceSpec(StepSpec):
    """Which reference representations a run computes (see :mod:`lib.references`), each
    with the identity of what it runs (e.g. the CLIP text tower's weights)."""

    STEP: ClassVar[str] = "references"
    MODULES: ClassVar[tuple[str, ...]] = ("lib.references", "lib.stimuli.references")
    names: tuple[str, ...]
    identities: tuple[tuple[str, str], ...]

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "ReferenceSpec":
        from lib.references import REGISTRY, enabled

        names = tuple(enabled(params))
        return cls(names, tuple((n, REGISTRY[n].identity(params)) for n in names))


@dataclass(frozen=True)
class SyntheticSpec(StepSpec):
    """Synthetic subjects planted with the stimulus set's reference structures."""

    STEP: ClassVar[str] = "brain-synthetic"
    MODULES: ClassVar[tuple[str, ...]] = ("lib.brain.synthetic",)
    SCALE: ClassVar[float] = 0.05  # vertex counts relative to the release (demo: ~1,000 per hemisphere)
    subjects: tuple[int, ...]
    noise: float
    seed: int
    scale: float

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "SyntheticSpec":
        return cls(tuple(params["subjects"]), params["synthetic_noise"], params["seed"], cls.SCALE)


@dataclass(frozen=True)
class BrainSetSpec(StepSpec):
    """Which fMRI subjects (release or synthetic) the brain chapter uses."""

    STEP: ClassVar[str] = "brain-set"
    MODULES: ClassVar[tuple[str, ...]] = ("lib.brain.algonauts",)
    brain_source: str
    subjects: tuple[int, ...]
    synthetic: SyntheticSpec | None

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "BrainSetSpec":
        synth = SyntheticSpec.from_params(params) if params["brain_source"] == "synthetic" else None
        return cls(params["brain_source"], tuple(params["subjects"]), synth)


@dataclass(frozen=True)
class BrainReferencesSpec(StepSpec):
    """Reference RDMs of the brain image set: saliency maps of the images the subjects saw
    (implementation = device), caption embeddings, the enabled references."""

    STEP: ClassVar[str] = "brain-references"
    MODULES: ClassVar[tuple[str, ...]] = ("lib.brain.pipeline",)
    saliency: SaliencySpec
    captions: CaptionSpec
    references: ReferenceSpec
    brain_saliency_crop: str  # the original computed brain-side maps on uncropped images

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "BrainReferencesSpec":
        return cls(SaliencySpec.from_params(params), CaptionSpec.from_params(params),
                   ReferenceSpec.from_params(params), params["brain_saliency_crop"])


@dataclass(frozen=True)
class BrainRoiSpec(StepSpec):
    """ROI RDMs per subject."""

    STEP: ClassVar[str] = "brain-roi-rdms"
    MODULES: ClassVar[tuple[str, ...]] = ("lib.brain.rois", "lib.gram")
    subjects: tuple[int, ...]
    roi_rdm_mode: str
    roi_policy: str

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "BrainRoiSpec":
        return cls(tuple(params["subjects"]), params["roi_rdm_mode"], params["roi_policy"])


@dataclass(frozen=True)
class BrainModelRsaSpec(StepSpec):
    """Every layer of one network against every ROI and subject, and against the references."""

    STEP: ClassVar[str] = "brain-model-rsa"
    MODULES: ClassVar[tuple[str, ...]] = ("lib.brain.analysis", "lib.inference")
    subjects: tuple[int, ...]
    roi_rdm_mode: str

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "BrainModelRsaSpec":
        return cls(tuple(params["subjects"]), params["roi_rdm_mode"])


#: Every step spec, for iteration (tests, provenance).
STEP_SPECS: tuple[type[StepSpec], ...] = (SaliencySpec, CaptionSpec, StimulusSpec, ExtractionSpec, InferenceSpec,
                                          ReferenceSpec, SyntheticSpec, BrainSetSpec, BrainReferencesSpec,
                                          BrainRoiSpec, BrainModelRsaSpec)


def specs_from_params(params: dict[str, Any]) -> dict[str, StepSpec]:
    """Every step's spec for a validated profile (extraction: one per model, ``model_rdms:<name>``)."""
    out: dict[str, StepSpec] = {}
    for cls in STEP_SPECS:
        if cls is ExtractionSpec:
            for m in params["models"]:
                out[f"{cls.STEP}:{m}"] = cls.from_params(params, m)
        else:
            out[cls.STEP] = cls.from_params(params)
    return out


__all__ = ["StepSpec", "STEP_SPECS", "specs_from_params", "code_version", "file_digest", "files_digest",
           "weights_identity", "layer_environment", "saliency_implementation"] + [c.__name__ for c in STEP_SPECS]
