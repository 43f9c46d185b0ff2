"""Predictions astronomers ask for: redshift with its PDF, stellar mass, morphology, spectra.

Each function takes the same inputs as `MultimodalEmbedder.embed` (any subset of
NIRCam cutouts and NIRSpec spectra of N objects) and returns an astropy
`~astropy.table.Table` with one row per object (or a `~specutils.Spectrum` for
`reconstruct_spectrum`). They read the prediction heads of the model
(``model.heads``: redshift PDF, stellar mass with uncertainty, morphology class
probabilities) and its spectrum decoder, all on the fused embedding, in one
model pass per chunk of ``batch_size`` objects.

``embedder=None`` uses the registered ``"default"`` model, loaded once and kept
for later calls; pass a `MultimodalEmbedder` (or a model name or path) to use
another one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import astropy.units as u
import numpy as np
from astropy.table import Column, Table

from .embedder import MultimodalEmbedder
from .models.heads import MORPHOLOGY_CLASSES
from .preprocessing.stretch import SPECTRUM_SOFTENING_NJY

__all__ = [
    "predict_redshift",
    "predict_stellar_mass",
    "classify_morphology",
    "reconstruct_spectrum",
    "predict",
    "morphology_column_names",
]

# The default embedder, loaded on first use and kept: loading weights is the slow part.
_DEFAULT_EMBEDDER: MultimodalEmbedder | None = None

_HEAD_NAMES = ("redshift", "log_mass", "morphology")


def morphology_column_names(classes: Sequence[str] = MORPHOLOGY_CLASSES) -> list[str]:
    """Column names ``p_<class>`` of the morphology probabilities, safe for FITS and ECSV.

    Characters other than letters and digits become ``_`` (``"bulge+disk"`` ->
    ``p_bulge_disk``, ``"point source"`` -> ``p_point_source``).

    Parameters
    ----------
    classes : sequence of str
        Class names, by default `~jwst_embed.models.heads.MORPHOLOGY_CLASSES`.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from jwst_embed.predictions import morphology_column_names
    >>> morphology_column_names(["spheroid", "bulge+disk", "clumpy/irregular"])
    ['p_spheroid', 'p_bulge_disk', 'p_clumpy_irregular']
    """
    return ["p_" + re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_") for name in classes]


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


def _require_heads(embedder: MultimodalEmbedder) -> None:
    heads = getattr(embedder.model, "heads", None)
    if heads is None or not all(name in heads for name in _HEAD_NAMES):
        raise ValueError(
            "this model has no prediction heads (its config.prediction_heads is False); "
            "fine-tune one on labelled objects with jwst_embed.training.finetune.FineTuner, "
            "or use a model trained with prediction_heads=True (e.g. the default model)"
        )


def _run(
    embedder: Any,
    images: Mapping[str, Any] | None,
    spectra: Any,
    batch_size: int,
    progress: bool,
    heads: Sequence[str] = _HEAD_NAMES,
    decode: bool = False,
) -> tuple[dict[str, np.ndarray], MultimodalEmbedder]:
    """One model pass per chunk: head predictions (and the decoded spectrum) as numpy arrays."""
    embedder = _resolve_embedder(embedder)
    if heads:
        _require_heads(embedder)
    model_heads = embedder.model.heads
    _, _, chunks = embedder._chunked_outputs(images, spectra, batch_size, progress, desc="predicting")
    parts: dict[str, list[np.ndarray]] = {}
    for _, _, output in chunks:
        fused = output.fused.float()
        values: dict[str, Any] = {}
        for name in heads:
            values.update(model_heads[name].predict(fused))
        if decode:
            values["decoded_spectrum"] = output.decoded_spectrum
        for key, value in values.items():
            parts.setdefault(key, []).append(value.detach().float().cpu().numpy())
    result = {key: np.concatenate(chunks_) for key, chunks_ in parts.items()}
    for key, value in result.items():
        if not np.isfinite(value).all():
            bad = np.flatnonzero(~np.isfinite(value.reshape(len(value), -1)).all(axis=1)).tolist()
            raise RuntimeError(f"the model produced non-finite {key} for objects {bad[:10]}")
    if "redshift" in heads:
        result["z_grid"] = model_heads["redshift"].z_centers.detach().cpu().numpy().astype(np.float64)
    return result, embedder


def _redshift_columns(values: dict[str, np.ndarray]) -> list[Column]:
    # Percentile interpolation within a bin and the bin-centre mode can disagree by a
    # rounding step; keep z_lo <= z <= z_hi exactly, as users will assume it.
    z = values["z_median"].astype(np.float64)
    z_lo = np.minimum(values["z_16"].astype(np.float64), z)
    z_hi = np.maximum(values["z_84"].astype(np.float64), z)
    return [
        Column(z, name="z", description="median of p(z)"),
        Column(z_lo, name="z_lo", description="16th percentile of p(z)"),
        Column(z_hi, name="z_hi", description="84th percentile of p(z)"),
        Column(values["z_mode"].astype(np.float64), name="z_mode", description="most probable bin of p(z)"),
    ]


def _mass_columns(values: dict[str, np.ndarray]) -> list[Column]:
    # Plain floats: logarithmic astropy units (dex(Msun)) cannot be written to FITS tables.
    return [
        Column(values["log_mass"].astype(np.float64), name="log_mass", description="log10(M*/Msun)"),
        Column(
            values["log_mass_sigma"].astype(np.float64),
            name="log_mass_err",
            description="1-sigma uncertainty of log_mass (dex)",
        ),
    ]


def _morphology_labels(probabilities: np.ndarray) -> np.ndarray:
    return np.array(MORPHOLOGY_CLASSES, dtype=str)[probabilities.argmax(axis=1)]


def predict_redshift(
    images: Mapping[str, Any] | None = None,
    spectra: Any = None,
    embedder: MultimodalEmbedder | str | os.PathLike | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> Table:
    """Redshift of N objects, with its probability distribution, from images and/or spectra.

    Parameters
    ----------
    images : dict of str to NDData or list of (NDData or None), optional
        NIRCam cutouts keyed by band, as for `MultimodalEmbedder.embed`.
    spectra : Spectrum or list of (Spectrum or None), optional
        NIRSpec spectra, as for `MultimodalEmbedder.embed`.
    embedder : `MultimodalEmbedder`, str or path-like, optional
        The model; None uses the registered ``"default"`` model (loaded once).
    batch_size : int
        Objects per model pass.
    progress : bool
        Show a progress bar.

    Returns
    -------
    table : `~astropy.table.Table`
        One row per object: ``z`` (median of p(z)), ``z_lo`` and ``z_hi`` (16th and
        84th percentiles), ``z_mode`` and ``pz`` ``(N, n_bins)`` (probability per bin,
        rows sum to 1). ``table.meta["z_grid"]`` holds the redshift of each bin centre
        (bins are uniform in log(1 + z)).

    Raises
    ------
    ValueError
        Bad inputs (as for `MultimodalEmbedder.embed`), or a model without
        prediction heads.

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
    >>> table = predict_redshift(images={"F150W": cutout}, spectra=spectrum)
    >>> table.colnames
    ['z', 'z_lo', 'z_hi', 'z_mode', 'pz']
    >>> bool(table["z_lo"][0] <= table["z"][0] <= table["z_hi"][0])
    True
    >>> table["pz"].shape == (1, len(table.meta["z_grid"]))
    True
    """
    values, _ = _run(embedder, images, spectra, batch_size, progress, heads=("redshift",))
    table = Table(_redshift_columns(values))
    table["pz"] = Column(values["pdf"].astype(np.float64), description="p(z) per bin of meta['z_grid']")
    table.meta["z_grid"] = values["z_grid"]
    return table


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
        ``log_mass`` (log10 of the stellar mass in Msun) and ``log_mass_err``
        (1-sigma, dex), one row per object.

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
    ['log_mass', 'log_mass_err']
    >>> bool(7 < table["log_mass"][0] < 12 and table["log_mass_err"][0] > 0)
    True
    """
    values, _ = _run(embedder, images, spectra, batch_size, progress, heads=("log_mass",))
    return Table(_mass_columns(values))


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
        `~jwst_embed.models.heads.MORPHOLOGY_CLASSES`) and one probability column per
        class named by `morphology_column_names` (``p_spheroid``, ``p_disk``,
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
    values, _ = _run(embedder, images, spectra, batch_size, progress, heads=("morphology",))
    probabilities = values["probabilities"].astype(np.float64)
    table = Table()
    table["morphology"] = Column(_morphology_labels(probabilities), description="most probable class")
    for column, name in enumerate(morphology_column_names()):
        table[name] = Column(probabilities[:, column], description=f"p({MORPHOLOGY_CLASSES[column]})")
    return table


def _decoded_to_spectrum(decoded: np.ndarray, embedder: MultimodalEmbedder):
    from specutils import Spectrum

    # The decoder predicts the asinh-stretched spectrum; undo the fixed stretch to get nJy.
    flux = SPECTRUM_SOFTENING_NJY * np.sinh(decoded.astype(np.float64))
    return Spectrum(
        flux=flux * u.nJy,
        spectral_axis=embedder.spectral_grid.wavelength,
        meta={"spectral_mode": "PRISM", "reconstructed": True},
    )


def reconstruct_spectrum(
    images: Mapping[str, Any] | None = None,
    spectra: Any = None,
    embedder: MultimodalEmbedder | str | os.PathLike | None = None,
    batch_size: int = 64,
    progress: bool = False,
):
    """NIRSpec PRISM spectra of N objects decoded from their fused embedding.

    The decoder reads the fused embedding of whatever each object has, so a
    spectrum can be predicted from images alone.

    Parameters
    ----------
    images, spectra, embedder, batch_size, progress
        As for `predict_redshift`.

    Returns
    -------
    spectrum : `~specutils.Spectrum`
        Flux ``(N, n_pixels)`` in nJy (f_nu) on the model's log-wavelength grid
        (``embedder.spectral_grid``, um); ``spectrum[i]`` is object ``i``.

    Raises
    ------
    ValueError
        Bad inputs (as for `MultimodalEmbedder.embed`).

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
    values, embedder = _run(embedder, images, spectra, batch_size, progress, heads=(), decode=True)
    return _decoded_to_spectrum(values["decoded_spectrum"], embedder)


def predict(
    images: Mapping[str, Any] | None = None,
    spectra: Any = None,
    embedder: MultimodalEmbedder | str | os.PathLike | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> Table:
    """Redshift, stellar mass and morphology of N objects in one table (one model pass).

    Parameters
    ----------
    images, spectra, embedder, batch_size, progress
        As for `predict_redshift`.

    Returns
    -------
    table : `~astropy.table.Table`
        ``z``, ``z_lo``, ``z_hi``, ``log_mass``, ``log_mass_err``, ``morphology``
        and ``p_morphology`` (probability of the chosen class), one row per object.
        Use `predict_redshift` for the full p(z).

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
    >>> from specutils import Spectrum
    >>> wavelength = np.linspace(0.6, 5.3, 400) * u.um
    >>> flux = (0.2 + 0.1 * (wavelength > 2 * u.um) + rng.normal(0.0, 0.01, 400)) * u.uJy
    >>> spectrum = Spectrum(flux=flux, spectral_axis=wavelength,
    ...                     uncertainty=StdDevUncertainty(np.full(400, 0.01)))
    >>> from jwst_embed import predict
    >>> table = predict(images={"F150W": [cutout, cutout]}, spectra=[spectrum, None])
    >>> len(table), table.colnames
    (2, ['z', 'z_lo', 'z_hi', 'log_mass', 'log_mass_err', 'morphology', 'p_morphology'])
    """
    values, _ = _run(embedder, images, spectra, batch_size, progress)
    table = Table([*_redshift_columns(values)[:3], *_mass_columns(values)])
    probabilities = values["probabilities"].astype(np.float64)
    table["morphology"] = Column(_morphology_labels(probabilities), description="most probable class")
    table["p_morphology"] = Column(probabilities.max(axis=1), description="probability of that class")
    return table
