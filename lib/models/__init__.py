"""Model registry: the paper's ten networks by short name, model sources behind one
protocol, weights policy and identity, preprocessing and the layer tables the extraction
engine works from.

Why a package: every chapter names networks the same way (``resnet50``, ``clip_vit_b16``,
or ``timm:…`` / ``open_clip:…`` / ``torchvision:…`` / ``file:…@path``, see
:mod:`lib.models.registry`), the weights actually used are decided in one place and named
by a :class:`ModelIdentity`, and a new source of networks is one module implementing
:class:`ModelSource` (see :mod:`lib.models.base`).
"""

from lib.models.base import DTYPES, SOURCES, ModelError, ModelSource, ModelSpec, WeightFile, register
from lib.models.registry import MODEL_NAMES, REGISTRY, describe, spec

# Sources register themselves on import: one module per source.
from lib.models import file_source, open_clip_source, timm_source, torchvision_source  # noqa: F401,E402,I001

from lib.models.layers import (LAYER_RULES, PAPER_TYPES, TABLE_COLUMNS, candidate_modules, first_tensor,
                               is_block, probe_layers, select_layers)
from lib.models.loading import LoadedModel, architecture_table, load_model, load_untrained, state_hash, wrap
from lib.models.preprocess import CLIP_MEAN, CLIP_STD, IMAGE_SIZE, Preprocess, clip_transform
from lib.models.weights import (PRECISIONS, WEIGHT_POLICIES, ModelIdentity, download_weights, effective_dtype,
                                fetch_command, model_identity, network_available, resolve_weights, weight_file,
                                weights_tag)
from lib.models.fetch import fetch_weights, weights_checks

_clip_transform = clip_transform  # the name benches used before the package split
_weights_checks = weights_checks

__all__ = [
    "CLIP_MEAN", "CLIP_STD", "DTYPES", "IMAGE_SIZE", "LAYER_RULES", "MODEL_NAMES", "PAPER_TYPES", "PRECISIONS",
    "REGISTRY", "SOURCES", "TABLE_COLUMNS", "WEIGHT_POLICIES", "LoadedModel", "ModelError", "ModelIdentity",
    "ModelSource", "ModelSpec", "Preprocess", "WeightFile", "architecture_table", "candidate_modules",
    "clip_transform", "describe", "download_weights", "effective_dtype", "fetch_command", "fetch_weights",
    "first_tensor", "is_block", "load_model", "load_untrained", "model_identity", "network_available",
    "probe_layers", "register", "resolve_weights", "select_layers", "spec", "state_hash", "weight_file",
    "weights_checks", "weights_tag", "wrap",
]
