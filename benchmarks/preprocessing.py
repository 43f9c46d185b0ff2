"""Speed and accuracy of spectrum resampling against specutils' FluxConservingResampler.

1,000 mock spectra on one PRISM-like input grid (~430 pixels over 0.6-5.3 um, pixel
spacing following R ~ 30-320) are resampled onto the default model grid. specutils is
timed on a subset and scaled per spectrum; ours is timed cold (matrix built, cache empty)
and warm (matrix cached), both through `resample_flux` (the resampling step alone, like
specutils) and through `preprocess_spectra` (Spectrum objects in, unit conversion included).

Run ``python benchmarks/preprocessing.py`` for a table; ``--json`` prints only the JSON
object. The last line is always the JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import astropy.units as u
import numpy as np
from astropy.nddata import StdDevUncertainty
from specutils import Spectrum
from specutils.manipulation import FluxConservingResampler

from jwst_embed.preprocessing import (
    DEFAULT_SPECTRAL_GRID,
    clear_resampling_cache,
    preprocess_spectra,
    resample_flux,
)

# PRISM/CLEAR resolving power (JDox), used only to space the mock pixels realistically.
_R_WAVE = np.array([0.6, 1.2, 2.0, 3.0, 4.0, 5.0, 5.3])
_R_VALUE = np.array([64, 30, 49, 101, 180, 286, 323])


def prism_like_wavelength(n_target: int = 430) -> np.ndarray:
    """Pixel centres in um from 0.6 to 5.3 with dlambda = lambda / (R * s), ~n_target pixels."""

    def march(pixels_per_resolution: float) -> np.ndarray:
        wave = [0.6]
        while wave[-1] < 5.3:
            resolution = np.interp(wave[-1], _R_WAVE, _R_VALUE)
            wave.append(wave[-1] * (1 + 1 / (resolution * pixels_per_resolution)))
        return np.array(wave[:-1])

    trial = march(1.0)
    return march(n_target / trial.size)


def mock_spectra(wave: np.ndarray, n_spectra: int, rng: np.random.Generator):
    """Continua with a break and lines, noise ~ 10-30 nJy; f_nu in nJy."""
    z = rng.uniform(1, 8, (n_spectra, 1))
    level = 10 ** rng.uniform(1.5, 3.5, (n_spectra, 1))
    slope = rng.uniform(-1.5, 1.0, (n_spectra, 1))
    continuum = level * (wave / 2.0) ** slope * np.where(wave < 0.4 * (1 + z), 0.3, 1.0)
    line = 5 * level * np.exp(-0.5 * ((wave - 0.5007 * (1 + z)) / 0.01) ** 2)
    sigma = rng.uniform(10, 30, (n_spectra, wave.size))
    flux = continuum + line + rng.normal(0, 1, sigma.shape) * sigma
    return flux, sigma


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--n-spectra", type=int, default=1000)
    parser.add_argument("--n-specutils", type=int, default=50, help="spectra timed with specutils")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    grid = DEFAULT_SPECTRAL_GRID
    wave = prism_like_wavelength()
    flux, sigma = mock_spectra(wave, args.n_spectra, rng)
    ivar = sigma**-2
    spectra = [
        Spectrum(flux=f * u.nJy, spectral_axis=wave * u.um, uncertainty=StdDevUncertainty(s))
        for f, s in zip(flux, sigma, strict=True)
    ]

    # specutils, one spectrum at a time (its only mode), on a subset.
    resampler = FluxConservingResampler()
    n_ref = min(args.n_specutils, args.n_spectra)
    start = time.perf_counter()
    reference = [resampler(spectrum, grid.wavelength) for spectrum in spectra[:n_ref]]
    specutils_ms = (time.perf_counter() - start) / n_ref * 1e3

    # Ours: cold includes building the matrix; warm is the best of a few repeats.
    clear_resampling_cache()
    start = time.perf_counter()
    out_flux, out_ivar, out_mask = resample_flux(flux, ivar, wave * u.um, grid)
    cold_ms = (time.perf_counter() - start) / args.n_spectra * 1e3
    warm = []
    for _ in range(5):
        start = time.perf_counter()
        resample_flux(flux, ivar, wave * u.um, grid)
        warm.append(time.perf_counter() - start)
    warm_ms = min(warm) / args.n_spectra * 1e3

    clear_resampling_cache()
    start = time.perf_counter()
    preprocess_spectra(spectra)
    pre_cold_ms = (time.perf_counter() - start) / args.n_spectra * 1e3
    warm = []
    for _ in range(3):
        start = time.perf_counter()
        arrays = preprocess_spectra(spectra)
        warm.append(time.perf_counter() - start)
    pre_warm_ms = min(warm) / args.n_spectra * 1e3

    max_rel, mask_mismatch = 0.0, 0
    for row, ref in enumerate(reference):
        ok = np.isfinite(ref.flux.value)
        mask_mismatch += int(np.sum(ok == out_mask[row]))
        for ours, theirs in (
            (out_flux[row], ref.flux.value),
            (out_ivar[row], ref.uncertainty.array),
        ):
            rel = np.abs(ours[ok] - theirs[ok]) / np.abs(theirs[ok])
            max_rel = max(max_rel, float(rel.max()))
    # float32 output of preprocess_spectra against the float64 resampler (rounding only).
    pre_rel = float(
        np.max(
            np.abs(arrays.flux[~arrays.mask] - out_flux[~out_mask]) / np.abs(out_flux[~out_mask])
        )
    )

    result = {
        "speedup_vs_specutils": specutils_ms / warm_ms,
        "speedup_vs_specutils_cold": specutils_ms / cold_ms,
        "max_rel_diff": max_rel,
        "specutils_ms_per_spectrum": specutils_ms,
        "ours_ms_per_spectrum": warm_ms,
        "ours_cold_ms_per_spectrum": cold_ms,
        "preprocess_ms_per_spectrum": pre_warm_ms,
        "preprocess_cold_ms_per_spectrum": pre_cold_ms,
        "speedup_preprocess_vs_specutils": specutils_ms / pre_warm_ms,
        "mask_mismatches": mask_mismatch,
        "n_spectra": args.n_spectra,
        "n_compared": n_ref,
        "n_input_pixels": int(wave.size),
        "n_grid_pixels": grid.n_pixels,
    }
    if not args.json:
        print(f"{args.n_spectra} spectra, {wave.size} input pixels -> {grid.n_pixels} grid pixels")
        print(f"{'method':<42}{'ms/spectrum':>12}{'speedup':>10}")
        rows = [
            ("specutils FluxConservingResampler", specutils_ms),
            ("resample_flux, cold (matrix build)", cold_ms),
            ("resample_flux, warm (cached matrix)", warm_ms),
            ("preprocess_spectra, cold", pre_cold_ms),
            ("preprocess_spectra, warm", pre_warm_ms),
        ]
        for label, ms in rows:
            print(f"{label:<42}{ms:>12.4f}{specutils_ms / ms:>10.1f}")
        print(f"max relative difference vs specutils (flux, ivar; {n_ref} spectra): {max_rel:.2e}")
        print(f"mask/NaN mismatches vs specutils: {mask_mismatch}")
        print(f"float32 preprocess_spectra vs float64 resample_flux: {pre_rel:.2e}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
