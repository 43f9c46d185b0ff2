"""Mock galaxies as the astropy objects a user holds: NDData cutouts, Spectrum, a label Table.

`sample_to_astropy` turns a `~jwst_embed.simulation.MockSurvey.sample` dictionary
into what `jwst_embed.io` returns for real files, so that the user-facing path
(`~jwst_embed.MultimodalEmbedder.embed`, `jwst_embed.predictions`) can be run and
checked on mock galaxies whose truth is known:

- images: `~astropy.nddata.NDData` in nJy per pixel on the survey's image grid
  (``meta["pixel_scale"]`` in arcsec, no WCS: mock objects have no sky position),
  `~astropy.nddata.InverseVariance` in 1/nJy^2 and the bad-pixel mask;
- spectra: `~specutils.Spectrum` in nJy on the survey's PRISM grid (um) with
  `~astropy.nddata.InverseVariance` and mask, or None for objects without one;
- labels: an `~astropy.table.Table` of redshift, stellar mass, SFR and morphology.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import astropy.units as u
import numpy as np
from astropy.nddata import InverseVariance, NDData
from astropy.table import Column, Table

from .morphology import MORPHOLOGY_CLASSES

__all__ = ["MockObjects", "sample_to_astropy"]


class MockObjects(NamedTuple):
    """Mock galaxies as astropy objects (what `sample_to_astropy` returns).

    Attributes
    ----------
    images : dict of str to list of `~astropy.nddata.NDData`
        Per band, one cutout per object.
    spectra : list of (`~specutils.Spectrum` or None)
        One PRISM spectrum per object; None where the object has none (all None when
        the survey simulates no spectra).
    labels : `~astropy.table.Table`
        The truth, one row per object.
    """

    images: dict[str, list[NDData]]
    spectra: list[Any]
    labels: Table


def _numpy(sample: dict, key: str) -> np.ndarray:
    value = sample[key]
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


def _labels(sample: dict, n_objects: int) -> Table:
    table = Table()
    table["object"] = np.arange(n_objects)
    table["redshift"] = Column(_numpy(sample, "redshift").astype(np.float64), description="true redshift")
    table["log_mass"] = Column(
        _numpy(sample, "log_mass").astype(np.float64), description="true log10(M*/Msun)"
    )
    if "log_sfr" in sample:
        table["log_sfr"] = Column(
            _numpy(sample, "log_sfr").astype(np.float64), description="true log10(SFR / (Msun/yr))"
        )
    if "star_forming" in sample:
        table["star_forming"] = _numpy(sample, "star_forming").astype(bool)
    morphology = _numpy(sample, "morphology").astype(np.int64)
    table["morphology"] = Column(np.array(MORPHOLOGY_CLASSES, dtype=str)[morphology], description="true class")
    table["morphology_index"] = morphology
    if "has_spectrum" in sample:
        table["has_spectrum"] = _numpy(sample, "has_spectrum").astype(bool)
    return table


def sample_to_astropy(sample: dict, config) -> MockObjects:
    """Convert a mock-survey sample into NDData cutouts, Spectrum objects and a label Table.

    Parameters
    ----------
    sample : dict of `torch.Tensor` (or numpy arrays)
        Output of `~jwst_embed.simulation.MockSurvey.sample` (or
        `~jwst_embed.simulation.MockCatalogue.read_sample`).
    config : `~jwst_embed.simulation.SurveyConfig`
        The configuration that produced it (bands, image and spectral grids).

    Returns
    -------
    `MockObjects`
        ``(images, spectra, labels)``: ``images[band][i]`` an `~astropy.nddata.NDData`
        in nJy per pixel with ``InverseVariance`` (1/nJy^2), ``mask`` (True = bad) and
        ``meta`` ``{"band", "pixel_scale" (arcsec), "object"}``; ``spectra[i]`` a
        `~specutils.Spectrum` (nJy, um, ``InverseVariance``, mask,
        ``meta["spectral_mode"] = "PRISM"``) or None; ``labels`` with ``redshift``,
        ``log_mass``, ``log_sfr``, ``star_forming``, ``morphology`` (class name),
        ``morphology_index`` and ``has_spectrum``. Arrays are copies: changing them
        leaves ``sample`` alone.

    Raises
    ------
    KeyError
        If ``sample`` lacks the labels or the arrays ``config`` says it has.
    ValueError
        If the arrays do not match ``config`` (number of bands, grid sizes).

    Examples
    --------
    >>> from jwst_embed.simulation import MockSurvey, SurveyConfig
    >>> from jwst_embed.simulation.export import sample_to_astropy
    >>> survey = MockSurvey(SurveyConfig(bands=("F150W",)))  # doctest: +SKIP
    >>> images, spectra, labels = sample_to_astropy(survey.sample(4, seed=1), survey.config)  # doctest: +SKIP
    >>> images["F150W"][0].unit, spectra[0].flux.unit  # doctest: +SKIP
    (Unit("nJy"), Unit("nJy"))
    """
    from specutils import Spectrum

    for key in ("redshift", "log_mass", "morphology"):
        if key not in sample:
            raise KeyError(f"sample has no {key!r}; give the output of MockSurvey.sample")
    n_objects = int(_numpy(sample, "redshift").shape[0])
    images: dict[str, list[NDData]] = {}
    bands = tuple(config.bands)
    if bands:
        values = _numpy(sample, "images").astype(np.float32)
        ivar = _numpy(sample, "images_ivar").astype(np.float32)
        mask = _numpy(sample, "images_mask").astype(bool)
        size = config.image_grid.n_pixels
        if values.shape != (n_objects, len(bands), size, size):
            raise ValueError(
                f"sample['images'] has shape {values.shape}, expected {(n_objects, len(bands), size, size)} "
                f"for bands {bands} on a {size} x {size} grid"
            )
        scale = float(config.image_grid.pixel_scale.to_value(u.arcsec))
        for k, band in enumerate(bands):
            images[band] = []
            for i in range(n_objects):
                bad = mask[i, k] | ~(ivar[i, k] > 0)
                images[band].append(
                    NDData(
                        np.where(bad, 0.0, values[i, k]).astype(np.float32),
                        unit=u.nJy,
                        uncertainty=InverseVariance(np.where(bad, 0.0, ivar[i, k]), unit=u.nJy**-2),
                        mask=bad.copy(),
                        meta={"band": band, "pixel_scale": scale, "object": i},
                    )
                )
    spectra: list[Any] = [None] * n_objects
    if config.include_spectra and "spectrum" in sample:
        flux = _numpy(sample, "spectrum").astype(np.float32)
        ivar = _numpy(sample, "spectrum_ivar").astype(np.float32)
        mask = _numpy(sample, "spectrum_mask").astype(bool)
        has = (
            _numpy(sample, "has_spectrum").astype(bool)
            if "has_spectrum" in sample
            else np.ones(n_objects, bool)
        )
        wavelength = config.spectral_grid.wavelength
        if flux.shape != (n_objects, wavelength.size):
            raise ValueError(
                f"sample['spectrum'] has shape {flux.shape}, expected {(n_objects, wavelength.size)}"
            )
        for i in np.flatnonzero(has):
            bad = mask[i] | ~(ivar[i] > 0)
            if bad.all():  # nothing usable: the object has no spectrum to offer
                continue
            spectra[i] = Spectrum(
                flux=np.where(bad, 0.0, flux[i]) * u.nJy,
                spectral_axis=wavelength,
                uncertainty=InverseVariance(np.where(bad, 0.0, ivar[i]), unit=u.nJy**-2),
                mask=bad.copy(),
                meta={"spectral_mode": "PRISM", "object": int(i)},
            )
    return MockObjects(images, spectra, _labels(sample, n_objects))
