"""From astropy objects to the model's grids: spectra, images, the stretch, and Batch.

Nothing below this package sees astropy objects: it turns `~specutils.Spectrum`
and `~astropy.nddata.NDData` into arrays on fixed grids with inverse variance
and masks, and collects them in a `Batch` of tensors.
"""

from .batch import *  # noqa: F401,F403
from .batch import __all__ as _batch_all
from .image_grid import *  # noqa: F401,F403
from .image_grid import __all__ as _image_grid_all
from .image_units import *  # noqa: F401,F403
from .image_units import __all__ as _image_units_all
from .images import *  # noqa: F401,F403
from .images import __all__ as _images_all
from .inputs import *  # noqa: F401,F403
from .inputs import __all__ as _inputs_all
from .resample import *  # noqa: F401,F403
from .resample import __all__ as _resample_all
from .spectra import *  # noqa: F401,F403
from .spectra import __all__ as _spectra_all
from .spectral_grid import *  # noqa: F401,F403
from .spectral_grid import __all__ as _spectral_grid_all
from .stretch import *  # noqa: F401,F403
from .stretch import __all__ as _stretch_all

__all__ = [
    *_spectral_grid_all,
    *_resample_all,
    *_spectra_all,
    *_image_grid_all,
    *_image_units_all,
    *_images_all,
    *_stretch_all,
    *_batch_all,
    *_inputs_all,
]
