"""Thin library behind the Saliency Suppressed, Semantics Surfaced book."""
