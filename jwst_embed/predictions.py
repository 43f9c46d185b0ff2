"""Predictions astronomers ask for: redshift with its PDF, stellar mass, morphology, spectra.

Each function takes the same inputs as `~jwst_embed.MultimodalEmbedder.embed` (any subset of
NIRCam cutouts and NIRSpec spectra of N objects) and returns an astropy
`~astropy.table.Table` with one row per object (or a `~specutils.Spectrum` for
`~jwst_embed.reconstruct_spectrum`). They read the prediction heads of the model
(``model.heads``: redshift PDF, stellar mass with uncertainty, morphology class
probabilities) and its spectrum decoder, all on the fused embedding, in one
model pass per chunk of ``batch_size`` objects.

``embedder=None`` uses the registered ``"default"`` model, loaded once and kept
for later calls; pass a `~jwst_embed.MultimodalEmbedder` (or a model name or path) to use
another one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from astropy.table import Table

from .embedder import MultimodalEmbedder
from .prediction_tables import (
    REDSHIFT_METHODS,
    default_fitter,
    morphology_column_names,
    redshift_table,
)

__all__ = [
    "REDSHIFT_METHODS",
    "default_fitter",
    "predict_redshift",
    "predict_stellar_mass",
    "classify_morphology",
    "reconstruct_spectrum",
    "predict",
    "morphology_column_names",
]

# The default embedder, loaded on first use and kept: loading weights is the slow part.
_DEFAULT_EMBEDDER: MultimodalEmbedder | None = None


def _resolve_embedder(embedder: Any) -> MultimodalEmbedder:
    global _DEFAULT_EMBEDDER
    if isinstance(embedder, MultimodalEmbedder):
        return embedder
    if embedder is None:
        if _DEFAULT_EMBEDDER is None:
            _DEFAULT_EMBEDDER = MultimodalEmbedder.from_pretrained("default")
        return _DEFAULT_EMBEDDER
    if isinstance(embedder, str | os.PathLike):
        return MultimodalEmbedder.from_pretrained(embedder)
    raise TypeError(
        f"embedder must be a MultimodalEmbedder, a model name or path, or None, got {type(embedder).__name__}"
    )


def predict_redshift(
    images: Mapping[str, Any] | None = None,
    spectra: Any = None,
    embedder: MultimodalEmbedder | str | os.PathLike | None = None,
    batch_size: int = 64,
    progress: bool = False,
    method: str = "auto",
    floor: float = 1e-4,
    fitter: Any = None,
) -> Table:
    """Redshift of N objects, with its probability distribution, from images and/or spectra.

    Parameters
    ----------
    images : dict of str to NDData or list of (NDData or None), optional
        NIRCam cutouts keyed by band, as for `~jwst_embed.MultimodalEmbedder.embed`.
    spectra : Spectrum or list of (Spectrum or None), optional
        NIRSpec spectra, as for `~jwst_embed.MultimodalEmbedder.embed`.
    embedder : `~jwst_embed.MultimodalEmbedder`, str or path-like, optional
        The model; None uses the registered ``"default"`` model (loaded once).
    batch_size : int
        Objects per model pass.
    progress : bool
        Show a progress bar.
    method : {"auto", "network", "template", "joint"}
        ``"network"``: the model's p(z) from every input given. ``"template"``: a chi-squared
        fit of each PRISM spectrum with physical templates
        (`~jwst_embed.redshift.TemplateFitter`: galaxies, AGN, broad and strong lines, dense-gas
        Balmer breaks, damped Lyman-alpha; z 0-20). ``"joint"``: the network's p(z) times the
        templates' spectral likelihood, with a ``floor`` so that a wrong network cannot veto the
        data (`~jwst_embed.redshift.joint`); it fits templates only where they matter, at a few
        per cent of the cost of ``"template"``. ``"auto"`` (default): ``"joint"`` for objects with
        a usable spectrum, ``"network"`` for the others. The template methods need the
        stellar-population library (the ``sim`` extra); without it ``"auto"`` warns and uses the
        network.
    floor : float
        Lowest network prior relative to its peak in ``"joint"`` / ``"auto"``.
    fitter : `~jwst_embed.redshift.TemplateFitter`, optional
        Template set and redshift grid for the template methods (default: `~jwst_embed.predictions.default_fitter`).

    Returns
    -------
    table : `~astropy.table.Table`
        One row per object: ``z`` (network: median of p(z), or, for a multimodal p(z) whose median falls
        between its peaks, the median within its most probable peak: see
        `~jwst_embed.models.RedshiftHead.point_estimate`; template methods: most probable
        redshift), ``z_lo`` and ``z_hi`` (16th and 84th percentiles), ``z_mode``, ``pz`` ``(N,
        n_z)`` (probability per redshift of ``table.meta["z_grid"]``, rows sum to 1: the
        network's log(1 + z) bins for ``method="network"``, the template grid otherwise),
        ``method`` (what produced the row), ``chi2_dof`` (reduced chi2 of the best template
        combination at ``z``; masked for network rows), ``z_flag`` (bits of
        `~jwst_embed.redshift.joint.Z_FLAGS`: 1 network and templates disagree, 2 multimodal,
        4 poor fit, 8 too few pixels, 16 network only, 32 an input failed its checks; keep
        ``z_flag == 0`` for clean redshifts) and ``input_flag`` (what `jwst_embed.input_checks`
        found wrong, e.g. ``"negative:PRISM"`` for a sign-flipped spectrum, ``"flux_scale:F150W"``
        for a unit mixed up, ``"no_signal"`` when nothing is detected; ``""`` when all is
        fine). An object none of whose inputs carries information gets the flat p(z) of the
        head's range instead of a confident answer, and ``method="auto"`` does not fit
        templates to a spectrum that failed its checks.

    Raises
    ------
    ValueError
        Bad inputs (as for `~jwst_embed.MultimodalEmbedder.embed`), an unknown method, ``"template"`` or
        ``"joint"`` for objects without a usable spectrum, or a model without prediction heads.
    ImportError
        ``"template"`` or ``"joint"`` without the stellar-population library.

    Examples
    --------
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from astropy.nddata import NDData, StdDevUncertainty
    >>> rng = np.random.default_rng(0)
    >>> pixels = rng.normal(0.0, 0.5, (64, 64))  # sky noise, nJy per 0.04" pixel
    >>> pixels[28:36, 28:36] += 5.0  # a compact galaxy
    >>> cutout = NDData(pixels, unit=u.nJy, uncertainty=StdDevUncertainty(np.full((64, 64), 0.5)),
    ...                 meta={"pixel_scale": 0.04})
    >>> from specutils import Spectrum
    >>> wavelength = np.linspace(0.6, 5.3, 400) * u.um
    >>> flux = (0.2 + 0.1 * (wavelength > 2 * u.um) + rng.normal(0.0, 0.01, 400)) * u.uJy
    >>> spectrum = Spectrum(flux=flux, spectral_axis=wavelength,
    ...                     uncertainty=StdDevUncertainty(np.full(400, 0.01)))
    >>> from jwst_embed import predict_redshift
    >>> table = predict_redshift(images={"F150W": cutout}, spectra=spectrum, method="network")
    >>> table.colnames
    ['z', 'z_lo', 'z_hi', 'z_mode', 'pz', 'method', 'chi2_dof', 'z_flag', 'input_flag']
    >>> bool(table["z_lo"][0] <= table["z"][0] <= table["z_hi"][0]), str(table["method"][0])
    (True, 'network')
    >>> table["pz"].shape == (1, len(table.meta["z_grid"]))
    True
    """
    if method not in REDSHIFT_METHODS:
        raise ValueError(f"method must be one of {', '.join(REDSHIFT_METHODS)}, got {method!r}")
    if method == "template" and not isinstance(embedder, MultimodalEmbedder):
        # the network is not needed: only the spectra, on the default model grid
        return redshift_table(None, images, spectra, batch_size, progress, method, floor, fitter)
    return _resolve_embedder(embedder).predict_redshift(
        images, spectra, batch_size=batch_size, progress=progress, method=method, floor=floor, fitter=fitter
    )

def predict_stellar_mass(
    images: Mapping[str, Any] | None = None,
    spectra: Any = None,
    embedder: MultimodalEmbedder | str | os.PathLike | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> Table:
    """Stellar mass of N objects, with an uncertainty, from images and/or spectra.

    Parameters
    ----------
    images, spectra, embedder, batch_size, progress
        As for `predict_redshift`.

    Returns
    -------
    table : `~astropy.table.Table`
        ``log_mass`` (log10 of the stellar mass in Msun), ``log_mass_err`` (1-sigma, dex)
        and ``input_flag`` (what `jwst_embed.input_checks` found wrong with the inputs; ``""``
        when all is fine), one row per object.

    Raises
    ------
    ValueError
        Bad inputs, or a model without prediction heads.

    Examples
    --------
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from astropy.nddata import NDData, StdDevUncertainty
    >>> rng = np.random.default_rng(0)
    >>> pixels = rng.normal(0.0, 0.5, (64, 64))  # sky noise, nJy per 0.04" pixel
    >>> pixels[28:36, 28:36] += 5.0  # a compact galaxy
    >>> cutout = NDData(pixels, unit=u.nJy, uncertainty=StdDevUncertainty(np.full((64, 64), 0.5)),
    ...                 meta={"pixel_scale": 0.04})
    >>> from jwst_embed import predict_stellar_mass
    >>> table = predict_stellar_mass(images={"F150W": cutout})
    >>> table.colnames
    ['log_mass', 'log_mass_err', 'input_flag']
    >>> bool(7 < table["log_mass"][0] < 12 and table["log_mass_err"][0] > 0)
    True
    """
    return _resolve_embedder(embedder).predict_stellar_mass(images, spectra, batch_size=batch_size, progress=progress)

def classify_morphology(
    images: Mapping[str, Any] | None = None,
    spectra: Any = None,
    embedder: MultimodalEmbedder | str | os.PathLike | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> Table:
    """Morphology class probabilities of N objects.

    Parameters
    ----------
    images, spectra, embedder, batch_size, progress
        As for `predict_redshift`.

    Returns
    -------
    table : `~astropy.table.Table`
        ``morphology`` (the most probable class name, one of
        ``jwst_embed.models.heads.MORPHOLOGY_CLASSES``) and one probability column per
        class named by `~jwst_embed.predictions.morphology_column_names` (``p_spheroid``, ``p_disk``,
        ``p_bulge_disk``, ``p_clumpy_irregular``, ``p_merger``, ``p_point_source``).

    Raises
    ------
    ValueError
        Bad inputs, or a model without prediction heads.

    Examples
    --------
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from astropy.nddata import NDData, StdDevUncertainty
    >>> rng = np.random.default_rng(0)
    >>> pixels = rng.normal(0.0, 0.5, (64, 64))  # sky noise, nJy per 0.04" pixel
    >>> pixels[28:36, 28:36] += 5.0  # a compact galaxy
    >>> cutout = NDData(pixels, unit=u.nJy, uncertainty=StdDevUncertainty(np.full((64, 64), 0.5)),
    ...                 meta={"pixel_scale": 0.04})
    >>> from jwst_embed import classify_morphology
    >>> table = classify_morphology(images={"F150W": cutout})
    >>> table.colnames[:3]
    ['morphology', 'p_spheroid', 'p_disk']
    >>> probabilities = np.array([table[name][0] for name in table.colnames[1:]])
    >>> bool(np.isclose(probabilities.sum(), 1.0))
    True
    """
    return _resolve_embedder(embedder).classify_morphology(images, spectra, batch_size=batch_size, progress=progress)

def reconstruct_spectrum(
    images: Mapping[str, Any] | None = None,
    spectra: Any = None,
    embedder: MultimodalEmbedder | str | os.PathLike | None = None,
    batch_size: int = 64,
    progress: bool = False,
    match_flux: bool = True,
):
    """NIRSpec PRISM spectra of N objects decoded from their fused embedding.

    The decoder reads the fused embedding of whatever each object has, so a
    spectrum can be predicted from images alone.

    Parameters
    ----------
    images, spectra, embedder, batch_size, progress
        As for `predict_redshift`.
    match_flux : bool, optional
        Where an object's PRISM spectrum was given, scale its decoded spectrum to the observed
        flux level (`jwst_embed.reconstruction.match_amplitude`: the data's weighted
        least-squares amplitude, shrunk toward the decoder's own level by its ~20% uncertainty;
        a noise-dominated spectrum keeps the decoder's level). Objects without a usable
        spectrum keep the decoder's level either way. False: the decoder's output as it is.

    Returns
    -------
    spectrum : `~specutils.Spectrum`
        Flux ``(N, n_pixels)`` in nJy (f_nu) on the model's log-wavelength grid
        (``embedder.spectral_grid``, um); ``spectrum[i]`` is object ``i``. With
        ``match_flux``, ``spectrum.meta["flux_scale"]`` holds the ``(N,)`` factors applied.

    Raises
    ------
    ValueError
        Bad inputs (as for `~jwst_embed.MultimodalEmbedder.embed`).

    Examples
    --------
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from astropy.nddata import NDData, StdDevUncertainty
    >>> rng = np.random.default_rng(0)
    >>> pixels = rng.normal(0.0, 0.5, (64, 64))  # sky noise, nJy per 0.04" pixel
    >>> pixels[28:36, 28:36] += 5.0  # a compact galaxy
    >>> cutout = NDData(pixels, unit=u.nJy, uncertainty=StdDevUncertainty(np.full((64, 64), 0.5)),
    ...                 meta={"pixel_scale": 0.04})
    >>> from jwst_embed import reconstruct_spectrum
    >>> predicted = reconstruct_spectrum(images={"F150W": cutout})  # from the image alone
    >>> predicted.flux.shape, predicted.flux.unit
    ((1, 512), Unit("nJy"))
    """
    return _resolve_embedder(embedder).reconstruct_spectrum(
        images, spectra, batch_size=batch_size, progress=progress, match_flux=match_flux
    )

def predict(
    images: Mapping[str, Any] | None = None,
    spectra: Any = None,
    embedder: MultimodalEmbedder | str | os.PathLike | None = None,
    batch_size: int = 64,
    progress: bool = False,
    method: str = "auto",
    floor: float = 1e-4,
) -> Table:
    """Redshift, stellar mass and morphology of N objects in one table (one model pass).

    Parameters
    ----------
    images, spectra, embedder, batch_size, progress
        As for `predict_redshift`.
    method : {"auto", "network", "joint"}
        How the redshift is obtained, as for `predict_redshift` (``"template"`` is not offered
        here: mass and morphology come from the network anyway).
    floor : float
        As for `predict_redshift`.

    Returns
    -------
    table : `~astropy.table.Table`
        ``z``, ``z_lo``, ``z_hi``, ``log_mass``, ``log_mass_err``, ``morphology``,
        ``p_morphology`` (probability of the chosen class), ``z_method``, ``z_flag`` and
        ``input_flag`` (as ``method``, ``z_flag`` and ``input_flag`` of `predict_redshift`), one
        row per object. Use
        `predict_redshift` for the full p(z).

    Raises
    ------
    ValueError
        Bad inputs, an unknown method, or a model without prediction heads.

    Examples
    --------
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from astropy.nddata import NDData, StdDevUncertainty
    >>> rng = np.random.default_rng(0)
    >>> pixels = rng.normal(0.0, 0.5, (64, 64))  # sky noise, nJy per 0.04" pixel
    >>> pixels[28:36, 28:36] += 5.0  # a compact galaxy
    >>> cutout = NDData(pixels, unit=u.nJy, uncertainty=StdDevUncertainty(np.full((64, 64), 0.5)),
    ...                 meta={"pixel_scale": 0.04})
    >>> from specutils import Spectrum
    >>> wavelength = np.linspace(0.6, 5.3, 400) * u.um
    >>> flux = (0.2 + 0.1 * (wavelength > 2 * u.um) + rng.normal(0.0, 0.01, 400)) * u.uJy
    >>> spectrum = Spectrum(flux=flux, spectral_axis=wavelength,
    ...                     uncertainty=StdDevUncertainty(np.full(400, 0.01)))
    >>> from jwst_embed import predict
    >>> table = predict(images={"F150W": [cutout, cutout]}, spectra=[spectrum, None])
    >>> len(table), table.colnames
    (2, ['z', 'z_lo', 'z_hi', 'log_mass', 'log_mass_err', 'morphology', 'p_morphology', 'z_method', 'z_flag', 'input_flag'])
    >>> [str(m) for m in table["z_method"]]  # the second object has no spectrum: the network alone
    ['joint', 'network']
    """
    if method not in REDSHIFT_METHODS or method == "template":
        raise ValueError(f"method must be one of auto, network, joint, got {method!r}")
    return _resolve_embedder(embedder).predict(
        images, spectra, batch_size=batch_size, progress=progress, method=method, floor=floor
    )
