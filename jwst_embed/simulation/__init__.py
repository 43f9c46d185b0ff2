"""The mock JWST survey used for pretraining: SEDs, PRISM spectra, NIRCam images and labels.

Building the stellar-population library needs the ``sim`` extra (``pip install
"jwst_embed[sim]"``); everything else is plain torch and runs on the CPU or a GPU.
"""

from .absorbers import LYMAN_ALPHA_ANGSTROM, dla_optical_depth, dla_transmission, sample_dla_columns
from .agn import AGN_PARAMETER_NAMES, agn_rest_frame, sample_agn_parameters
from .calibration import (
    CALIBRATION_KEYS,
    apply_calibration,
    model_pixels_per_native_pixel,
    sample_calibration,
)
from .catalogue import LABEL_KEYS, MOCK_FORMAT, MockCatalogue, sample_to_batch, write_mock
from .image_scene import add_artefacts, add_neighbours
from .images import DEFAULT_RENDER_BANDS, STRUCTURE_KEYS, ImageRenderer, pixel_noise_njy
from .morphology import (
    MORPHOLOGY_CLASSES,
    effective_radius_kpc,
    kpc_per_arcsec,
    morphology_fractions,
    sample_structure,
)
from .prism import PrismInstrument, SpectrumSimulator, resolving_power, slit_throughput
from .prism_noise import NATIVE_PIXELS_PER_RESEL, NativePixelNoise, native_pixel_edges
from .psf import FLIGHT_PSF_FWHM, PSF_OBSCURATION, AiryPSF, jwst_psf, psf_fwhm
from .sed import SED_PARAMETER_NAMES, SEDModel, sample_sed_parameters
from .sps import LIBRARY_VERSION, StellarPopulationLibrary, load_library
from .sps_build import build_library
from .survey import SIMULATOR_VERSION, MockSurvey, SurveyConfig, batch_generator

__all__ = [
    "MockSurvey",
    "SurveyConfig",
    "SIMULATOR_VERSION",
    "batch_generator",
    "write_mock",
    "MockCatalogue",
    "sample_to_batch",
    "LABEL_KEYS",
    "MOCK_FORMAT",
    "StellarPopulationLibrary",
    "load_library",
    "build_library",
    "LIBRARY_VERSION",
    "SEDModel",
    "sample_sed_parameters",
    "SED_PARAMETER_NAMES",
    "SpectrumSimulator",
    "PrismInstrument",
    "NativePixelNoise",
    "native_pixel_edges",
    "NATIVE_PIXELS_PER_RESEL",
    "sample_agn_parameters",
    "agn_rest_frame",
    "AGN_PARAMETER_NAMES",
    "sample_dla_columns",
    "dla_transmission",
    "dla_optical_depth",
    "LYMAN_ALPHA_ANGSTROM",
    "sample_calibration",
    "apply_calibration",
    "model_pixels_per_native_pixel",
    "CALIBRATION_KEYS",
    "add_neighbours",
    "add_artefacts",
    "resolving_power",
    "slit_throughput",
    "ImageRenderer",
    "pixel_noise_njy",
    "STRUCTURE_KEYS",
    "DEFAULT_RENDER_BANDS",
    "MORPHOLOGY_CLASSES",
    "morphology_fractions",
    "sample_structure",
    "effective_radius_kpc",
    "kpc_per_arcsec",
    "AiryPSF",
    "jwst_psf",
    "psf_fwhm",
    "FLIGHT_PSF_FWHM",
    "PSF_OBSCURATION",
]
