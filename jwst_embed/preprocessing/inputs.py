"""`make_batch`: from astropy images and spectra of N objects to a `Batch`.

Each image goes through `preprocess_image` and each spectral mode through
`preprocess_spectra`; an object that lacks a modality gets the absent placeholder
(values 0, ivar 0, mask all True, ``present`` False). Errors name the modality and
the object index.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import astropy.units as u
import numpy as np
import torch
from astropy.coordinates import SkyCoord

from jwst_embed.bands import get_band, get_spectral_mode

from .batch import Batch, ModalityTensors, modality_order
from .image_grid import DEFAULT_IMAGE_GRID, ImageGrid
from .images import preprocess_image
from .spectra import DEFAULT_SPECTRAL_GRID, SpectralGrid, preprocess_spectra

__all__ = ["InputLocation", "make_batch", "input_columns", "relocate_input_error"]


def _as_list(value: Any) -> list:
    if value is None:
        return [None]
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _spectral_mode_of(spectrum: Any) -> str:
    meta = getattr(spectrum, "meta", None) or {}
    mode = meta.get("spectral_mode", "PRISM") if hasattr(meta, "get") else "PRISM"
    return get_spectral_mode(str(mode)).name


def _positions_list(positions: Any, n_objects: int) -> list:
    if positions is None:
        return [None] * n_objects
    if isinstance(positions, SkyCoord):
        if positions.isscalar:
            positions = [positions]
        else:
            positions = list(positions)
    positions = list(positions)
    if len(positions) != n_objects:
        raise ValueError(
            f"positions has {len(positions)} entries but there are {n_objects} objects"
        )
    return positions


def input_columns(images: Any = None, spectra: Any = None) -> tuple[dict[str, list], dict[str, list]]:
    """Normalise user inputs into per-modality lists of N entries (None = absent).

    Parameters
    ----------
    images : dict, optional
        ``{band: NDData or list of NDData/None}``; band names are matched case-insensitively.
    spectra : Spectrum, list or dict, optional
        One spectrum, a list of spectra/None (grouped by ``meta["spectral_mode"]``, default
        PRISM), or ``{mode: list}``.

    Returns
    -------
    image_columns, spectrum_columns : dict of str to list
        Keyed by canonical band / mode name; every list has the same length N.

    Raises
    ------
    TypeError
        If ``images`` is not a dict.
    ValueError
        No input, a band or mode given twice, lists of different lengths (the message names each
        modality and its length), empty lists, or objects with no modality at all (named by index).
    """
    image_columns: dict[str, list] = {}
    spectrum_columns: dict[str, list] = {}
    if images is not None:
        if not isinstance(images, Mapping):
            raise TypeError(
                f"images must be a dict {{band: NDData or list}}, got {type(images).__name__}"
            )
        for key, value in images.items():
            band = get_band(key).name
            if band in image_columns:
                raise ValueError(f"band {band} is given twice in images (as {key!r})")
            image_columns[band] = _as_list(value)
    if spectra is not None:
        if isinstance(spectra, Mapping):
            for key, value in spectra.items():
                mode = get_spectral_mode(key).name
                if mode in spectrum_columns:
                    raise ValueError(f"spectral mode {mode} is given twice in spectra (as {key!r})")
                spectrum_columns[mode] = _as_list(value)
        else:
            entries = _as_list(spectra)
            modes = [None if s is None else _spectral_mode_of(s) for s in entries]
            spectrum_columns = {
                mode: [s if m == mode else None for s, m in zip(entries, modes, strict=True)]
                for mode in dict.fromkeys(m for m in modes if m is not None)
            }
            if not spectrum_columns:  # every entry None: keep PRISM as an all-absent modality
                spectrum_columns = {"PRISM": entries}
    columns = {**image_columns, **spectrum_columns}
    if not columns:
        raise ValueError("no input: give images and/or spectra")
    lengths = {name: len(entries) for name, entries in columns.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"every modality needs one entry per object, got lengths {lengths}")
    n_objects = next(iter(lengths.values()))
    if n_objects == 0:
        raise ValueError(f"no objects: the lists are empty ({lengths})")
    has_any = np.zeros(n_objects, bool)
    for entries in columns.values():
        has_any |= np.array([entry is not None for entry in entries])
    if not has_any.all():
        raise ValueError(f"objects {np.flatnonzero(~has_any).tolist()} have no image and no spectrum")
    return image_columns, spectrum_columns


def make_batch(
    images: Mapping[str, Any] | None = None,
    spectra: Any = None,
    image_grid: ImageGrid = DEFAULT_IMAGE_GRID,
    spectral_grid: SpectralGrid = DEFAULT_SPECTRAL_GRID,
    positions: Any = None,
    progress: bool = False,
    targets: Mapping[str, Any] | None = None,
) -> Batch:
    """Preprocess astropy images and spectra of N objects into a `Batch`.

    Parameters
    ----------
    images : dict of str to NDData or list of (NDData or None), optional
        Keyed by NIRCam band (any case). A single NDData means one object; in a list,
        ``None`` means that object lacks the band.
    spectra : Spectrum, list of (Spectrum or None), or dict of str to list, optional
        A list goes to the spectral mode given by each spectrum's
        ``meta["spectral_mode"]`` (default ``"PRISM"``); a dict is keyed by mode.
        ``None`` entries mean the object has no spectrum.
    image_grid : `ImageGrid`
        Model image grid.
    spectral_grid : `SpectralGrid`
        Model spectral grid.
    positions : SkyCoord (array) or list of (SkyCoord or None), optional
        Centre of each object's cutouts (default: each cutout's centre).
    progress : bool
        Show progress bars.
    targets : dict of str to array, optional
        Labels with one entry per object, e.g. ``{"redshift": [2.1, 0.7]}``.

    Returns
    -------
    `Batch`
        float32 tensors on the CPU; absent modalities have values 0, ivar 0, mask True
        and ``present`` False.

    Raises
    ------
    ValueError
        No input, lists of different lengths (the message names the modalities and
        their lengths), an object with no modality at all, unknown band or mode, or any
        preprocessing error (the message names the modality and the object index).

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> from astropy.nddata import NDData, StdDevUncertainty
    >>> from jwst_embed.preprocessing import ImageGrid, make_batch
    >>> nd = NDData(np.ones((40, 40)), unit=u.nJy, meta={"pixel_scale": 0.04},
    ...             uncertainty=StdDevUncertainty(np.ones((40, 40))))
    >>> batch = make_batch(images={"F150W": [nd, None], "f444w": [nd, nd]}, image_grid=ImageGrid(n_pixels=16))
    >>> batch.modalities, batch.present.tolist()
    (('F150W', 'F444W'), [[True, True], [False, True]])
    """
    if not isinstance(image_grid, ImageGrid):
        raise TypeError(f"image_grid must be an ImageGrid, got {type(image_grid).__name__}")
    image_columns, spectrum_columns = input_columns(images, spectra)
    columns: dict[str, list] = {**image_columns, **spectrum_columns}  # None = absent
    kinds = {**dict.fromkeys(image_columns, "image"), **dict.fromkeys(spectrum_columns, "spectrum")}
    n_objects = len(next(iter(columns.values())))
    object_positions = _positions_list(positions, n_objects)

    image_tensors: dict[str, ModalityTensors] = {}
    spectrum_tensors: dict[str, ModalityTensors] = {}
    present: dict[str, np.ndarray] = {}
    for name, entries in columns.items():
        idx = [i for i, entry in enumerate(entries) if entry is not None]
        present[name] = np.array([entry is not None for entry in entries])
        if kinds[name] == "image":
            shape = image_grid.shape
            values, ivar, mask = _absent_arrays(n_objects, shape)
            iterator = idx
            if progress:
                from tqdm.auto import tqdm

                iterator = tqdm(idx, desc=f"images {name}")
            for i in iterator:
                try:
                    out = preprocess_image(
                        entries[i], band=name, grid=image_grid, position=object_positions[i]
                    )
                except (ValueError, TypeError, u.UnitsError) as err:
                    raise _with_context(err, "images", name, i) from err
                values[i], ivar[i], mask[i] = out.flux, out.ivar, out.mask
            image_tensors[name] = ModalityTensors(values, ivar, mask)
        else:
            shape = (spectral_grid.n_pixels,)
            values, ivar, mask = _absent_arrays(n_objects, shape)
            if idx:
                chosen = [entries[i] for i in idx]
                arrays = _preprocess_spectra_located(chosen, idx, name, spectral_grid, progress)
                values[idx], ivar[idx], mask[idx] = arrays.flux, arrays.ivar, arrays.mask
            spectrum_tensors[name] = ModalityTensors(values, ivar, mask)

    modalities = modality_order(columns)
    present_matrix = torch.as_tensor(np.stack([present[name] for name in modalities], axis=1))
    target_tensors = {}
    for key, value in dict(targets or {}).items():
        tensor = torch.as_tensor(np.asarray(value))
        if tensor.is_floating_point():
            tensor = tensor.to(torch.float32)
        target_tensors[key] = tensor
    return Batch(
        images=image_tensors,
        spectra=spectrum_tensors,
        present=present_matrix,
        modalities=modalities,
        targets=target_tensors,
    )


def _absent_arrays(
    n_objects: int, shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    full = (n_objects, *shape)
    return np.zeros(full, np.float32), np.zeros(full, np.float32), np.ones(full, bool)


@dataclass(frozen=True)
class InputLocation:
    """Which input a `make_batch` error is about; the error carries it as ``err.input_location``.

    Attributes
    ----------
    kind : str
        ``"images"`` or ``"spectra"``.
    name : str
        The band or spectral mode.
    index : int
        The object's index in the inputs given.
    detail : str
        What is wrong with it.
    """

    kind: str
    name: str
    index: int
    detail: str

    def message(self) -> str:
        """``images['F150W'][3]: <detail>``: the text of the error."""
        return f"{self.kind}[{self.name!r}][{self.index}]: {self.detail}"


def _same_type(err: Exception, message: str) -> Exception:
    try:
        return type(err)(message)
    except TypeError:  # an exception class with a different constructor
        return ValueError(message)


def _with_context(err: Exception, kind: str, name: str, index: int) -> Exception:
    location = InputLocation(kind, name, int(index), str(err))
    located = _same_type(err, location.message())
    located.input_location = location
    return located


def relocate_input_error(err: Exception, index: Callable[[int], int]) -> Exception:
    """A `make_batch` error re-issued with its object index mapped by ``index``.

    Callers that pass `make_batch` a chunk of a user's inputs use it so that the error names
    the object by its index in all the inputs, not in the chunk.

    Parameters
    ----------
    err : Exception
        Raised by `make_batch`.
    index : callable
        Maps the index within the chunk to the index over all inputs.

    Returns
    -------
    error : Exception
        Of the same type, with ``input_location`` updated; ``err`` itself when it names no
        object (an error about the inputs as a whole).
    """
    location = getattr(err, "input_location", None)
    if location is None:
        return err
    moved = replace(location, index=int(index(location.index)))
    relocated = _same_type(err, moved.message())
    relocated.input_location = moved
    return relocated


def _preprocess_spectra_located(
    chosen: list, idx: list[int], mode: str, grid: SpectralGrid, progress: bool
):
    """`preprocess_spectra` on all at once; on failure, find the object and name it."""
    try:
        arrays = preprocess_spectra(chosen, grid=grid, progress=progress)
    except (ValueError, TypeError, u.UnitsError) as batch_error:
        for i, spectrum in zip(idx, chosen, strict=True):
            try:
                preprocess_spectra([spectrum], grid=grid)
            except (ValueError, TypeError, u.UnitsError) as err:
                raise _with_context(err, "spectra", mode, i) from err
        raise batch_error
    if arrays.flux.shape[0] != len(chosen):
        raise ValueError(
            f"spectra[{mode!r}]: got {arrays.flux.shape[0]} spectra from {len(chosen)} objects; give one 1D "
            "Spectrum per object"
        )
    return arrays
