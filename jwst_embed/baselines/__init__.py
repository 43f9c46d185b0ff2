"""Classical baselines for the benchmark: template-fit redshifts and kNN on preprocessed pixels.

``TemplateFitter`` (from `jwst_embed.redshift`, re-exported here) fits NIRSpec PRISM spectra with
non-negative sums of rest-frame templates over a redshift grid (the EAZY / msaexp approach);
`PixelKNN` is k-nearest-neighbour regression or classification on the model's stretched input
pixels.
"""

from ..redshift.template_fit import TemplateFitter, default_redshift_grid, nnls_normal_equations
from ..redshift.templates import DEFAULT_TEMPLATES, SEDTemplate
from .pixel_knn import *  # noqa: F401,F403
from .pixel_knn import __all__ as _pixel_knn_all

__all__ = [
    "TemplateFitter",
    "default_redshift_grid",
    "nnls_normal_equations",
    "DEFAULT_TEMPLATES",
    "SEDTemplate",
    *_pixel_knn_all,
]
