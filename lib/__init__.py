"""Thin library behind the Saliency Suppressed, Semantics Surfaced book."""

import warnings

# tqdm.auto falls back to a text bar without ipywidgets; its warning about that is noise.
warnings.filterwarnings("ignore", message="IProgress not found")
