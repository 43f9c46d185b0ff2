"""jwst_embed: one representation of a JWST galaxy from any subset of NIRCam
bands and NIRSpec PRISM spectra."""

from typing import TYPE_CHECKING

from .bands import NIRCAM_BANDS, SPECTRAL_MODES, Band, SpectralMode, get_band, get_spectral_mode
from .version import version as __version__

__all__ = [
    "__version__",
    "Band",
    "SpectralMode",
    "NIRCAM_BANDS",
    "SPECTRAL_MODES",
    "get_band",
    "get_spectral_mode",
    "resolve_device",
    "MultimodalEmbedder",
    "EmbeddingResult",
    "predict",
    "predict_redshift",
    "predict_stellar_mass",
    "classify_morphology",
    "reconstruct_spectrum",
    "nearest_neighbors",
    "EmbeddingIndex",
    "fine_tune",
    "EmbeddingRegressor",
    "EmbeddingClassifier",
]

# The model side (torch, the preprocessing's astropy and scipy parts; scikit-learn for the
# estimators) is imported on first use of one of its names, so that ``import jwst_embed`` (and
# ``jwst-embed --help``) stays quick: `jwst_embed.MultimodalEmbedder` works as before.
_LAZY = {
    "resolve_device": "devices",
    "MultimodalEmbedder": "embedder",
    "EmbeddingResult": "embedder",
    "predict": "predictions",
    "predict_redshift": "predictions",
    "predict_stellar_mass": "predictions",
    "classify_morphology": "predictions",
    "reconstruct_spectrum": "predictions",
    "nearest_neighbors": "similarity",
    "EmbeddingIndex": "similarity",
    "fine_tune": "tuning",
    "EmbeddingRegressor": "estimators",
    "EmbeddingClassifier": "estimators",
}

if TYPE_CHECKING:  # for type checkers and IDEs, which do not run __getattr__
    from .devices import resolve_device
    from .embedder import EmbeddingResult, MultimodalEmbedder
    from .estimators import EmbeddingClassifier, EmbeddingRegressor
    from .predictions import (
        classify_morphology,
        predict,
        predict_redshift,
        predict_stellar_mass,
        reconstruct_spectrum,
    )
    from .similarity import EmbeddingIndex, nearest_neighbors
    from .tuning import fine_tune


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
