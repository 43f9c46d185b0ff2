"""Mock-survey files: write simulated objects to HDF5 and read them back as Batches.

Layout of a file written by `write_mock` (all arrays have the object axis first)::

    /                      attrs: format, metadata (JSON: simulator and library versions, seed, config)
    /images/<BAND>/        values, noiseless, ivar (float32, nJy per pixel), mask (bool), depth_ab
    /spectra/PRISM/        values, noiseless, ivar (float32, nJy), mask (bool), present (bool)
    /spectra/PRISM/wavelength   model-grid wavelengths (um)
    /labels/<name>         redshift, log_mass, log_sfr, morphology, star_forming, Sersic parameters, ...

Objects are simulated in chunks of ``chunk_size``; chunk ``k`` is drawn from
``batch_generator(seed, k)``, so a file is reproducible from its seed and chunk size (both recorded).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .sample_batch import LABEL_KEYS, sample_to_batch
from .survey import SurveyConfig, batch_generator

__all__ = ["write_mock", "MockCatalogue", "sample_to_batch", "LABEL_KEYS", "MOCK_FORMAT"]

MOCK_FORMAT = "jwst_embed-mock-1"

def write_mock(
    path: str | os.PathLike,
    survey,
    n_objects: int,
    seed: int,
    chunk_size: int = 512,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Simulate ``n_objects`` and write them to an HDF5 file.

    Parameters
    ----------
    path : path-like
        Output file (``.h5``). Written to a temporary name and renamed when complete.
    survey : `MockSurvey`
        The survey to draw from.
    n_objects : int
        Number of objects (> 0).
    seed : int
        Survey seed.
    chunk_size : int
        Objects simulated at a time (part of what makes the file reproducible).
    progress : bool
        Show a progress bar.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    path : `~pathlib.Path`
    """
    import h5py

    if not isinstance(n_objects, int | np.integer) or n_objects <= 0:
        raise ValueError(f"number of objects must be a positive integer, got {n_objects!r}")
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    config = survey.config
    metadata = survey.metadata(seed)
    metadata["chunk_size"] = int(chunk_size)
    metadata["n_objects"] = int(n_objects)

    with h5py.File(tmp, "w") as h5:
        h5.attrs["format"] = MOCK_FORMAT
        h5.attrs["metadata"] = json.dumps(metadata)
        datasets: dict[str, h5py.Dataset] = {}

        def put(name: str, array: np.ndarray, start: int) -> None:
            if name not in datasets:
                shape = (n_objects, *array.shape[1:])
                chunks = (min(chunk_size, n_objects), *array.shape[1:])
                datasets[name] = h5.create_dataset(
                    name, shape=shape, dtype=array.dtype, chunks=chunks, compression="lzf"
                )
            datasets[name][start : start + array.shape[0]] = array

        n_chunks = (n_objects + chunk_size - 1) // chunk_size
        with tqdm(total=n_objects, disable=not progress, unit="obj", desc="simulating") as bar:
            for k in range(n_chunks):
                start = k * chunk_size
                count = min(chunk_size, n_objects - start)
                generator = batch_generator(seed, k, survey.device)
                sample = survey.sample(chunk_size, generator=generator)
                # The last chunk is simulated whole and truncated, so object i never depends on n_objects.
                sample = {key: value[:count].cpu().numpy() for key, value in sample.items()}
                for b, band in enumerate(config.bands):
                    put(f"images/{band}/values", sample["images"][:, b].astype(np.float32), start)
                    put(f"images/{band}/noiseless", sample["images_noiseless"][:, b].astype(np.float32), start)
                    put(f"images/{band}/ivar", sample["images_ivar"][:, b].astype(np.float32), start)
                    put(f"images/{band}/mask", sample["images_mask"][:, b].astype(bool), start)
                    put(f"images/{band}/depth_ab", sample["depth_ab"][:, b].astype(np.float32), start)
                if config.include_spectra:
                    put("spectra/PRISM/values", sample["spectrum"].astype(np.float32), start)
                    put("spectra/PRISM/noiseless", sample["spectrum_noiseless"].astype(np.float32), start)
                    put("spectra/PRISM/ivar", sample["spectrum_ivar"].astype(np.float32), start)
                    put("spectra/PRISM/mask", sample["spectrum_mask"].astype(bool), start)
                    put("spectra/PRISM/present", sample["has_spectrum"].astype(bool), start)
                for key in LABEL_KEYS:
                    if key in sample:
                        put(f"labels/{key}", sample[key], start)
                put("labels/band_flux", sample["band_flux"].astype(np.float32), start)
                bar.update(count)
        if config.include_spectra:
            h5["spectra/PRISM"].attrs["wavelength_unit"] = "um"
            h5.create_dataset(
                "spectra/PRISM/wavelength",
                data=config.spectral_grid.wavelength.to_value("um").astype(np.float64),
            )
    os.replace(tmp, path)
    return path


class MockCatalogue:
    """Read a mock-survey HDF5 file written by `write_mock`.

    Parameters
    ----------
    path : path-like
        The file.

    Examples
    --------
    >>> catalogue = MockCatalogue("mock.h5")  # doctest: +SKIP
    >>> batch = catalogue.read(slice(0, 128))  # doctest: +SKIP
    >>> labels = catalogue.labels()  # astropy Table  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike):
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"mock survey file {self.path} does not exist")
        with h5py.File(self.path, "r") as h5:
            if h5.attrs.get("format") != MOCK_FORMAT:
                raise ValueError(
                    f"{self.path} is not a jwst_embed mock file (format {h5.attrs.get('format')!r}, "
                    f"expected {MOCK_FORMAT!r})"
                )
            self.metadata = json.loads(h5.attrs["metadata"])
            self.n_objects = int(h5["labels/redshift"].shape[0])
        self.config = SurveyConfig.from_dict(self.metadata["config"])

    def __len__(self) -> int:
        return self.n_objects

    def read_sample(self, index: slice | np.ndarray) -> dict:
        """Read objects as a `MockSurvey.sample`-style dictionary of CPU tensors."""
        import h5py

        if isinstance(index, np.ndarray):
            index = np.sort(index)  # h5py fancy indexing needs increasing indices
        config = self.config
        out: dict[str, torch.Tensor] = {}
        with h5py.File(self.path, "r") as h5:
            for key in h5["labels"]:
                out[key] = torch.as_tensor(h5[f"labels/{key}"][index])
            if config.bands:
                for name, dataset in (
                    ("images", "values"),
                    ("images_noiseless", "noiseless"),
                    ("images_ivar", "ivar"),
                    ("images_mask", "mask"),
                    ("depth_ab", "depth_ab"),
                ):
                    out[name] = torch.stack(
                        [torch.as_tensor(h5[f"images/{band}/{dataset}"][index]) for band in config.bands], dim=1
                    )
            if config.include_spectra:
                out["spectrum"] = torch.as_tensor(h5["spectra/PRISM/values"][index])
                out["spectrum_noiseless"] = torch.as_tensor(h5["spectra/PRISM/noiseless"][index])
                out["spectrum_ivar"] = torch.as_tensor(h5["spectra/PRISM/ivar"][index])
                out["spectrum_mask"] = torch.as_tensor(h5["spectra/PRISM/mask"][index])
                out["has_spectrum"] = torch.as_tensor(h5["spectra/PRISM/present"][index])
        return out

    def read(self, index: slice | np.ndarray = slice(None)):
        """Read objects as a `~jwst_embed.preprocessing.Batch`."""
        return sample_to_batch(self.read_sample(index), self.config)

    def batches(self, batch_size: int, shuffle: bool = False, seed: int = 0) -> Iterator:
        """Iterate over the file in Batches of ``batch_size`` objects."""
        order = np.arange(self.n_objects)
        if shuffle:
            order = np.random.default_rng(seed).permutation(self.n_objects)
        for start in range(0, self.n_objects, batch_size):
            chunk = order[start : start + batch_size]
            yield self.read(slice(chunk[0], chunk[-1] + 1) if not shuffle else chunk)

    def labels(self):
        """The per-object labels as an `~astropy.table.Table`."""
        import h5py
        from astropy.table import Table

        with h5py.File(self.path, "r") as h5:
            columns = {key: h5[f"labels/{key}"][:] for key in h5["labels"] if h5[f"labels/{key}"].ndim == 1}
        table = Table(columns)
        table.meta["mock_metadata"] = json.dumps(self.metadata)
        return table
