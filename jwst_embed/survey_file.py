"""Your own JWST files as a training file: `prepare_survey` writes it, `SurveyFile` reads it back.

`prepare_survey` reads spectra and cutouts (every format `jwst_embed.io` reads: DJA/msaexp,
JADES, pipeline x1d, HLSP x1d with cutouts), preprocesses each object once onto the model grids,
and writes one HDF5 file in the layout of the mock survey's files
(``jwst_embed.simulation.catalogue``), with what real data need besides: which inputs each object
has (``present``) and labels that may be missing (NaN)::

    /                      attrs: format, metadata (JSON: bands, grids, files, label names)
    /images/<BAND>/        values, ivar (float32, nJy per pixel), mask (bool), present (bool)
    /spectra/PRISM/        values, ivar (float32, nJy), mask (bool), present (bool)
    /labels/<name>         float64, NaN where unknown (redshift, log_mass, morphology index, ...)
    /sources               the file each object came from

A file that cannot be read, or gives nothing usable, is listed in the returned report and
skipped, never silently. Objects are written in chunks, so memory stays flat for any number of
files. ``jwst-embed train --data survey.h5`` trains on such a file as on a mock file.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
import torch

from .bands import NIRCAM_BANDS
from .classes import MORPHOLOGY_CLASSES
from .input_checks import check_inputs, without_failed_inputs
from .io import UnreadableInputWarning, read_objects
from .preprocessing import (
    DEFAULT_IMAGE_GRID,
    DEFAULT_SPECTRAL_GRID,
    Batch,
    ImageGrid,
    SpectralGrid,
    make_batch,
)
from .preprocessing.batch import ModalityTensors

__all__ = ["SURVEY_FORMAT", "PrepareReport", "SurveyFile", "labels_for_files", "prepare_survey"]

#: Format tag of files written by `prepare_survey`.
SURVEY_FORMAT = "jwst_embed-survey-1"


@dataclass
class PrepareReport:
    """What `prepare_survey` did.

    Attributes
    ----------
    path : `~pathlib.Path`
        The training file.
    n_written : int
        Objects written by this call.
    n_objects : int
        Objects in the file now (more than ``n_written`` when appending).
    skipped : list of (str, str)
        ``(file, reason)`` for every input left out: unreadable, or nothing informative in it
        (`jwst_embed.input_checks`: no detection, or every input failed).
    flagged : list of (str, str)
        ``(file, reason)`` for objects written with an input left out (e.g. ``negative:PRISM``).
    """

    path: Path
    n_written: int = 0
    n_objects: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    flagged: list[tuple[str, str]] = field(default_factory=list)


def _label_values(labels: Mapping[str, Any] | None, n: int) -> dict[str, np.ndarray]:
    """Labels as float64 columns with NaN where unknown (masked, None, NaN or an unknown class).

    A `~astropy.units.Quantity` must carry the label's unit: redshifts dimensionless, masses
    ``u.Msun`` (stored as log10) or ``u.dex(u.Msun)``; other labels dimensionless.
    """
    out: dict[str, np.ndarray] = {}
    for name, column in (labels or {}).items():
        if isinstance(column, u.Quantity):
            if name == "log_mass" and not isinstance(column.unit, u.FunctionUnitBase):
                column = np.log10(column.to_value(u.Msun))  # UnitsError unless a mass
            elif name == "log_mass":
                column = u.Dex(column, u.dex(u.Msun)).value
            else:
                column = column.to_value(u.dimensionless_unscaled)  # UnitsError names the unit
        values = np.ma.asarray(column)
        if values.shape[0] != n:
            raise ValueError(f"label column {name!r} has {values.shape[0]} entries for {n} inputs")
        missing = np.ma.getmaskarray(values)
        if name == "morphology" and values.dtype.kind in "USO":
            lookup = {cls.lower(): float(k) for k, cls in enumerate(MORPHOLOGY_CLASSES)}
            column_values = np.array([np.nan if m or v is None else lookup.get(str(v).lower(), np.nan)
                                      for v, m in zip(values.data, missing, strict=True)])  # fmt: skip
        else:
            filled = np.ma.filled(values, np.nan)
            column_values = np.array([np.nan if v is None else v for v in filled.ravel()], dtype=np.float64)
        column_values[missing] = np.nan
        out[name] = column_values
    return out


def labels_for_files(table, table_files: Sequence[Path], files: Sequence[Path]) -> dict[str, list]:
    """The label columns of a catalogue table, one entry per file of ``files`` (None where absent).

    Parameters
    ----------
    table : `~astropy.table.Table`
        One row per object, with a ``file`` column and label columns (``z`` is read as ``redshift``).
    table_files : sequence of `~pathlib.Path`
        The file each row names (relative paths already resolved against the table's folder).
    files : sequence of `~pathlib.Path`
        The inputs, in the order `prepare_survey` gets them.

    Returns
    -------
    labels : dict of str to list
        For `prepare_survey`: a file is matched by its path, or else by its name when exactly one
        row has that name; masked entries and files without a row are None (missing).
    """
    rows = {Path(path).resolve(): k for k, path in enumerate(table_files)}
    names = [Path(path).name for path in table_files]
    by_name = {name: k for k, name in enumerate(names) if names.count(name) == 1}
    index = [rows.get(Path(path).resolve(), by_name.get(Path(path).name)) for path in files]
    labels = {}
    for name in table.colnames:
        if name == "file":
            continue
        column = table[name]
        masked = np.ma.getmaskarray(np.ma.asarray(column))
        labels["redshift" if name == "z" else name] = [None if k is None or masked[k] else column[k] for k in index]
    return labels


def _read_one(path: str, bands: Sequence[str]) -> tuple[dict, Any]:
    """One file's cutouts (of ``bands``) and spectrum; raises ValueError when it gives nothing.

    A file that fails goes into the report with its error, so astropy's warnings about it (a
    damaged header) are not repeated; a file read in part warns that it was (the readers'
    `~jwst_embed.io.UnreadableInputWarning`).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images, spectra = read_objects([path], bands=tuple(bands))
    for warning in caught:
        if issubclass(warning.category, UnreadableInputWarning):
            warnings.warn(warning.message, UnreadableInputWarning, stacklevel=3)
    images = {band: entries[0] for band, entries in images.items() if entries[0] is not None}
    return images, spectra[0] if spectra else None


def prepare_survey(
    inputs: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    labels: Mapping[str, Any] | None = None,
    bands: Sequence[str] = ("F115W", "F150W", "F277W", "F444W"),
    image_grid: ImageGrid = DEFAULT_IMAGE_GRID,
    spectral_grid: SpectralGrid = DEFAULT_SPECTRAL_GRID,
    chunk_size: int = 64,
    append: bool = False,
    progress: bool = True,
) -> PrepareReport:
    """Preprocess real spectra and cutouts once and write them as a training file.

    Parameters
    ----------
    inputs : sequence of path-like
        FITS files, one object each (`jwst_embed.io.read_objects`).
    output : path-like
        The HDF5 file to write (``.h5``).
    labels : mapping of str to array-like, optional
        Catalogue values per input, in the order of ``inputs``: ``"redshift"``, ``"log_mass"``
        (log10 M/Msun), ``"morphology"`` (class names or indices) or any other name. Masked
        entries, None and NaN are missing.
    bands : sequence of str, optional
        NIRCam bands to keep (others in the files are not used); default the mock survey's four.
    image_grid, spectral_grid : optional
        The model grids (the default model's by default).
    chunk_size : int, optional
        Objects preprocessed and written at a time.
    append : bool, optional
        Add to an existing file (same bands and grids; labels it has and ``labels`` lacks are
        missing for the new objects); without it an existing ``output`` is refused.
    progress : bool, optional
        Show a progress bar.

    Returns
    -------
    report : `PrepareReport`

    Raises
    ------
    FileExistsError
        If ``output`` exists and ``append`` is False.
    ValueError
        If ``append`` meets a file of other bands or grids or ``labels`` brings a label the file
        lacks, a band is unknown, a label column has the wrong length, or no input gave an object.

    Examples
    --------
    >>> report = prepare_survey(sorted(Path("spectra").glob("*.fits")), "survey.h5")  # doctest: +SKIP
    >>> report.n_written, report.skipped[:1]  # doctest: +SKIP
    """
    import h5py
    from tqdm.auto import tqdm

    output = Path(output)
    bands = tuple(bands)
    unknown = [band for band in bands if band not in NIRCAM_BANDS]
    if unknown:
        raise ValueError(f"unknown NIRCam bands {unknown}")
    paths = [str(path) for path in inputs]
    label_columns = _label_values(labels, len(paths))
    metadata = {"bands": list(bands), "labels": sorted(label_columns),
                "image_grid": [image_grid.n_pixels, float(image_grid.pixel_scale.to_value("arcsec"))],
                "spectral_grid": [float(spectral_grid.wavelength_min.to_value("um")),
                                  float(spectral_grid.wavelength_max.to_value("um")), spectral_grid.n_pixels]}  # fmt: skip
    if output.exists() and not append:
        raise FileExistsError(f"{output} exists; pass append=True (--append) to add to it, or choose another name")
    report = PrepareReport(path=output)
    mode = "a" if output.exists() else "w"
    with h5py.File(output, mode) as h5:
        if mode == "a":
            if h5.attrs.get("format") != SURVEY_FORMAT:
                raise ValueError(f"{output} is not a jwst_embed survey file (format {h5.attrs.get('format')!r})")
            old = json.loads(h5.attrs["metadata"])
            layout = ("bands", "image_grid", "spectral_grid")
            if any(old[key] != metadata[key] for key in layout):
                raise ValueError(f"{output} was prepared with other bands or grids "
                                 f"({ {key: old[key] for key in layout} }); cannot append")  # fmt: skip
            new_labels = set(label_columns) - set(old["labels"])
            if new_labels:
                raise ValueError(f"{output} has no label columns {sorted(new_labels)} for its earlier objects; "
                                 "prepare a new file with them")  # fmt: skip
            # labels the file has and these inputs lack are missing for them
            label_columns.update({name: np.full(len(paths), np.nan) for name in old["labels"] if name not in label_columns})
            metadata["labels"] = old["labels"]
        else:
            h5.attrs["format"] = SURVEY_FORMAT
            h5.attrs["metadata"] = json.dumps(metadata)

        def put(name: str, array: np.ndarray) -> None:
            if name not in h5:
                h5.create_dataset(name, data=array, maxshape=(None, *array.shape[1:]), chunks=True)
                return
            dataset = h5[name]
            start = dataset.shape[0]
            dataset.resize(start + array.shape[0], axis=0)
            dataset[start:] = array

        for start in tqdm(range(0, len(paths), chunk_size), disable=not progress, desc="prepare", unit="chunk"):
            objects, rows = [], []
            for row in range(start, min(start + chunk_size, len(paths))):
                try:
                    images, spectrum = _read_one(paths[row], bands)
                    batch = make_batch(images={band: [images.get(band)] for band in bands},
                                       spectra={"PRISM": [spectrum]}, image_grid=image_grid,
                                       spectral_grid=spectral_grid)  # fmt: skip
                except (OSError, ValueError, TypeError) as err:
                    report.skipped.append((paths[row], str(err)))
                    continue
                # the checks the predictions make: a failed input (a sign flip, a wrong unit) is
                # left out, and an object with nothing informative left is not trained on
                check = check_inputs(batch)
                if bool(check.uninformative[0]):
                    report.skipped.append((paths[row], f"nothing usable: {check.reasons[0]}"))
                    continue
                if check.reasons[0]:
                    report.flagged.append((paths[row], check.reasons[0]))
                batch = without_failed_inputs(batch, check)
                objects.append(batch)
                rows.append(row)
            if not objects:
                continue
            batch = Batch.collate(objects)
            for name in bands:
                column = batch.modalities.index(name)
                tensors = batch.images[name]
                put(f"images/{name}/values", tensors.values.numpy().astype(np.float32))
                put(f"images/{name}/ivar", tensors.ivar.numpy().astype(np.float32))
                put(f"images/{name}/mask", tensors.mask.numpy())
                put(f"images/{name}/present", batch.present[:, column].numpy())
            prism = batch.spectra["PRISM"]
            put("spectra/PRISM/values", prism.values.numpy().astype(np.float32))
            put("spectra/PRISM/ivar", prism.ivar.numpy().astype(np.float32))
            put("spectra/PRISM/mask", prism.mask.numpy())
            put("spectra/PRISM/present", batch.present[:, batch.modalities.index("PRISM")].numpy())
            for name, values in label_columns.items():
                put(f"labels/{name}", values[rows])
            put("sources", np.array([paths[row] for row in rows], dtype=h5py.string_dtype()))
            report.n_written += len(rows)
        report.n_objects = int(h5["sources"].shape[0]) if "sources" in h5 else 0
    if report.n_objects == 0:
        output.unlink()
        raise ValueError(f"no input gave an object; skipped: {report.skipped[:5]}")
    return report


class SurveyFile:
    """Read a training file written by `prepare_survey`, as `~jwst_embed.preprocessing.Batch` objects.

    Parameters
    ----------
    path : path-like
        The file.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not a survey file.

    Examples
    --------
    >>> survey = SurveyFile("survey.h5")  # doctest: +SKIP
    >>> batch = survey.read(slice(0, 32))  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike):
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"survey file {self.path} does not exist")
        with h5py.File(self.path, "r") as h5:
            if h5.attrs.get("format") != SURVEY_FORMAT:
                raise ValueError(f"{self.path} is not a jwst_embed survey file (format {h5.attrs.get('format')!r})")
            self.metadata = json.loads(h5.attrs["metadata"])
            self.n_objects = int(h5["sources"].shape[0])
        self.bands = tuple(self.metadata["bands"])

    def __len__(self) -> int:
        return self.n_objects

    def read(self, index: slice | np.ndarray = slice(None)) -> Batch:
        """Objects ``index`` as a Batch: every band and PRISM a column, labels (NaN = unknown) as targets.

        Parameters
        ----------
        index : slice or array of int
            Which objects.

        Returns
        -------
        batch : `~jwst_embed.preprocessing.Batch`
        """
        import h5py

        if isinstance(index, np.ndarray):
            index = np.sort(index)  # h5py fancy indexing needs increasing indices
        with h5py.File(self.path, "r") as h5:

            def tensors(group: str) -> ModalityTensors:
                return ModalityTensors(
                    values=torch.as_tensor(h5[f"{group}/values"][index]),
                    ivar=torch.as_tensor(h5[f"{group}/ivar"][index]),
                    mask=torch.as_tensor(h5[f"{group}/mask"][index]),
                )

            images = {band: tensors(f"images/{band}") for band in self.bands}
            spectra = {"PRISM": tensors("spectra/PRISM")}
            present = [torch.as_tensor(h5[f"images/{band}/present"][index]) for band in self.bands]
            present.append(torch.as_tensor(h5["spectra/PRISM/present"][index]))
            targets = {name: torch.as_tensor(h5[f"labels/{name}"][index]) for name in self.metadata["labels"]}
        return Batch(images=images, spectra=spectra, present=torch.stack(present, dim=1),
                     modalities=(*self.bands, "PRISM"), targets=targets)  # fmt: skip
