"""jwst_embed: one representation of a JWST galaxy from any subset of NIRCam
bands and NIRSpec PRISM spectra."""

try:
    from ._version import version as __version__
except ImportError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

from .bands import NIRCAM_BANDS, SPECTRAL_MODES, Band, SpectralMode, get_band, get_spectral_mode
from .devices import resolve_device
from .embedder import EmbeddingResult, MultimodalEmbedder
from .predictions import (
    classify_morphology,
    predict,
    predict_redshift,
    predict_stellar_mass,
    reconstruct_spectrum,
)
from .similarity import EmbeddingIndex, nearest_neighbors
from .tuning import fine_tune

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


def __getattr__(name: str):
    # scikit-learn (a second to import) only when its estimators are asked for
    if name in ("EmbeddingRegressor", "EmbeddingClassifier"):
        from . import estimators

        return getattr(estimators, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
