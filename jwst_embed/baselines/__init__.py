"""Classical baselines for the benchmark: template-fit redshifts and kNN on preprocessed pixels.

`TemplateFitter` fits NIRSpec PRISM spectra with non-negative sums of stellar-population
templates over a redshift grid (the EAZY / msaexp approach); `PixelKNN` is k-nearest-neighbour
regression or classification on the model's stretched input pixels.
"""

from .pixel_knn import *  # noqa: F401,F403
from .pixel_knn import __all__ as _pixel_knn_all
from .template_fit import *  # noqa: F401,F403
from .template_fit import __all__ as _template_fit_all

__all__ = [*_template_fit_all, *_pixel_knn_all]
