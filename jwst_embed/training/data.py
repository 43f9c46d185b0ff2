"""Data sources of the pretraining `~jwst_embed.training.pretrain.Trainer`.

A data source yields `~jwst_embed.preprocessing.Batch` objects with random access
by batch index (`DataSource`): batch ``k`` depends only on the source's seed and
``k``, so a distributed or resumed run can start the stream at any index. Four
sources implement `IndexedSource`: the on-the-fly mock survey (`SurveySource`),
a prepared HDF5 file of mocks or of real objects (`FileSource`), simple galaxy-like
tensors that need neither the SPS library nor files (`SyntheticSource`), and a mix of
these in fixed proportions (`MixedSource`). Each also provides a fixed held-out
validation set (``validation_batches``).

Examples
--------
>>> from jwst_embed.training.data import SyntheticSource
>>> source = SyntheticSource(4, seed=0, image_size=16, spectrum_length=32)
>>> batch = source.batch(0)
>>> tuple(batch.spectra["PRISM"].values.shape)
(4, 32)
>>> bool((source.batch(0).spectra["PRISM"].values == batch.spectra["PRISM"].values).all())
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch

if TYPE_CHECKING:
    from ..preprocessing.batch import Batch

__all__ = ["DataSource", "IndexedSource", "SurveySource", "FileSource", "SyntheticSource", "MixedSource",
           "mix_counts", "MOCK_SURVEY"]

#: The data entry that stands for the on-the-fly mock survey in a mix of sources.
MOCK_SURVEY = "mock-survey"


def seed_from(*parts: Any) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in ("jwst_embed", *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@runtime_checkable
class DataSource(Protocol):
    """What the trainer reads: a stream of Batches that can restart at any batch index."""

    def batches(self, start_index: int = 0, stride: int = 1) -> Iterator:
        """Yield batches ``start_index, start_index + stride, ...`` (endless)."""
        ...


class IndexedSource:
    """A `DataSource` with random access: subclasses implement ``batch(index, size=None)``.

    ``validation_batches(n)`` returns a fixed held-out set of ``n`` objects.
    """

    batch_size: int

    def batch(self, index: int, size: int | None = None):  # pragma: no cover - abstract
        raise NotImplementedError

    def batches(self, start_index: int = 0, stride: int = 1) -> Iterator:
        index = start_index
        while True:
            yield self.batch(index)
            index += stride

    def validation_batches(self, n_objects: int) -> list:  # pragma: no cover - abstract
        raise NotImplementedError


class SurveySource(IndexedSource):
    """Batches of the on-the-fly mock survey (`~jwst_embed.simulation.survey.MockSurvey`).

    Parameters
    ----------
    survey : `~jwst_embed.simulation.survey.MockSurvey`
        The survey (simulating on the training device).
    batch_size : int
        Objects per batch.
    seed : int
        Stream seed; the validation set is drawn from a separate stream of the same survey.
    """

    def __init__(self, survey, batch_size: int, seed: int = 0) -> None:
        self.survey, self.batch_size, self.seed = survey, int(batch_size), int(seed)

    def batch(self, index: int, size: int | None = None, seed: int | None = None):
        from ..simulation.survey import batch_generator

        generator = batch_generator(self.seed if seed is None else seed, index, self.survey.device)
        return self.survey.to_batch(self.survey.sample(size or self.batch_size, generator=generator))

    def validation_batches(self, n_objects: int) -> list:
        seed = seed_from("validation", self.seed) % (2**31)
        sizes = _chunk_sizes(n_objects, self.batch_size)
        return [self.batch(k, size, seed=seed) for k, size in enumerate(sizes)]


class FileSource(IndexedSource):
    """Batches from a mock-survey HDF5 file (`~jwst_embed.simulation.catalogue.MockCatalogue`) or
    a file of real objects (`~jwst_embed.survey_file.prepare_survey`).

    The first ``holdout`` objects are the validation set and never trained on;
    the rest are reshuffled every epoch with a permutation seeded by ``(seed, epoch)``
    (incomplete last batches of an epoch are dropped so every batch has ``batch_size`` objects).

    Batch ``k`` reads only its own rows from the file. Under ``torchrun`` process ``rank``
    of ``world_size`` reads batches ``rank, rank + world_size, ...``, so the processes read
    disjoint shards of every epoch (a new split each epoch) and none loads the whole file.

    Parameters
    ----------
    path : path-like
        The HDF5 file.
    batch_size : int
        Objects per batch.
    seed : int
        Shuffling seed.
    holdout : int
        Objects kept for validation.
    device : str or `torch.device`
        Where the batches go.

    Raises
    ------
    ValueError
        If the file has no objects left for training after the holdout.
    """

    def __init__(self, path, batch_size: int, seed: int = 0, holdout: int = 0, device="cpu") -> None:
        import h5py

        from ..simulation.catalogue import MockCatalogue
        from ..survey_file import SURVEY_FORMAT, SurveyFile

        if not Path(path).is_file():
            raise FileNotFoundError(f"training file {path} does not exist")
        with h5py.File(path, "r") as h5:
            real = h5.attrs.get("format") == SURVEY_FORMAT
        # a mock-survey file or a file of real objects from prepare_survey: both read as Batches
        self.catalogue = SurveyFile(path) if real else MockCatalogue(path)
        self.batch_size, self.seed, self.device = int(batch_size), int(seed), torch.device(device)
        self.holdout = min(int(holdout), len(self.catalogue) // 2)
        self.n_train = len(self.catalogue) - self.holdout
        if self.n_train <= 0:
            raise ValueError(f"{path}: no objects to train on")
        self.batches_per_epoch = max(1, self.n_train // self.batch_size)

    def batch(self, index: int, size: int | None = None):
        epoch, position = divmod(int(index), self.batches_per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n_train) + self.holdout
        chunk = order[position * self.batch_size : (position + 1) * self.batch_size]
        return to_device(self.catalogue.read(chunk), self.device)

    def validation_batches(self, n_objects: int) -> list:
        n = min(n_objects, self.holdout)
        return [
            to_device(self.catalogue.read(slice(start, start + size)), self.device)
            for start, size in zip(range(0, n, self.batch_size), _chunk_sizes(n, self.batch_size), strict=False)
        ]


class SyntheticSource(IndexedSource):
    """Simple galaxy-like batches with labels, needing neither the SPS library nor files.

    Each object has a redshift and a stellar mass; its images in ``bands`` are
    round Gaussian profiles whose flux follows the mass and whose colour follows
    the redshift, and its PRISM spectrum is a power-law continuum with
    H-alpha and [O III] lines at the redshifted wavelengths, with Gaussian noise.
    Learnable structure, labels (``redshift``, ``log_mass``, ``morphology``,
    ``spectrum_noiseless``) and the `~jwst_embed.preprocessing.Batch` layout of the
    mock survey, for tests, benchmarks and the CLI when the simulator is not installed.

    Parameters
    ----------
    batch_size : int
        Objects per batch.
    seed : int
        Stream seed (batch ``k`` depends only on ``(seed, k)``).
    bands : tuple of str
        NIRCam bands.
    image_size, spectrum_length : int
        Model grid sizes (must match the model's configuration).
    spectrum_fraction : float
        Fraction of objects with a spectrum.
    device : str or `torch.device`
        Where the tensors are made.
    """

    def __init__(
        self,
        batch_size: int,
        seed: int = 0,
        bands: tuple[str, ...] = ("F115W", "F150W", "F277W", "F444W"),
        image_size: int = 64,
        spectrum_length: int = 512,
        spectrum_fraction: float = 0.75,
        device="cpu",
    ) -> None:
        from ..bands import get_band

        self.batch_size, self.seed, self.device = int(batch_size), int(seed), torch.device(device)
        self.bands = tuple(get_band(b).name for b in bands)
        self.pivot_um = torch.tensor([get_band(b).pivot_wavelength.to_value("um") for b in self.bands])
        self.image_size, self.spectrum_length, self.spectrum_fraction = image_size, spectrum_length, spectrum_fraction
        self.wavelength_um = torch.logspace(math.log10(0.6), math.log10(5.3), spectrum_length, dtype=torch.float64).float()

    def batch(self, index: int, size: int | None = None, seed: int | None = None):
        from ..preprocessing.batch import Batch, ModalityTensors, modality_order

        n = size or self.batch_size
        g = torch.Generator().manual_seed(seed_from("synthetic", self.seed if seed is None else seed, index))
        redshift = torch.expm1(torch.empty(n).uniform_(math.log1p(0.2), math.log1p(10.0), generator=g))
        log_mass = torch.empty(n).uniform_(8.0, 11.5, generator=g)
        morphology = torch.randint(0, 6, (n,), generator=g)
        # Continuum f_nu ~ A (lambda / 2 um)^beta, redder at higher redshift; A follows the mass.
        amplitude = 30.0 * 10 ** (0.8 * (log_mass - 9.0)) / (1.0 + redshift) ** 0.5
        beta = 0.3 * redshift - 1.0
        size_px = 1.0 + 0.5 * morphology.float() + torch.rand(n, generator=g)
        band_flux = amplitude[:, None] * (self.pivot_um[None, :] / 2.0) ** beta[:, None]
        coords = torch.arange(self.image_size) - (self.image_size - 1) / 2
        r2 = coords[None, :, None] ** 2 + coords[None, None, :] ** 2
        profile = torch.exp(-0.5 * r2 / size_px[:, None, None] ** 2)
        profile = profile / profile.sum(dim=(1, 2), keepdim=True)
        image_sigma = 0.5  # nJy per pixel
        images = {}
        for b, band in enumerate(self.bands):
            noiseless = band_flux[:, b, None, None] * profile
            noisy = noiseless + image_sigma * torch.randn(noiseless.shape, generator=g)
            ivar = torch.full_like(noisy, 1.0 / image_sigma**2)
            images[band] = ModalityTensors(values=noisy, ivar=ivar, mask=torch.zeros_like(noisy, dtype=torch.bool))
        wave = self.wavelength_um[None, :]
        continuum = amplitude[:, None] * (wave / 2.0) ** beta[:, None]
        lines = torch.zeros_like(continuum)
        for rest_um, strength in ((0.6563, 3.0), (0.5007, 4.0)):
            centre = rest_um * (1.0 + redshift[:, None])
            lines += strength * amplitude[:, None] * torch.exp(-0.5 * ((wave - centre) / (0.01 * centre)) ** 2)
        noiseless_spectrum = continuum + lines
        spectrum_sigma = 20.0  # nJy per pixel
        has_spectrum = torch.rand(n, generator=g) < self.spectrum_fraction
        spectrum = noiseless_spectrum + spectrum_sigma * torch.randn(noiseless_spectrum.shape, generator=g)
        mask = ~has_spectrum[:, None].expand_as(spectrum)
        spectra = {
            "PRISM": ModalityTensors(
                values=torch.where(mask, 0.0, spectrum),
                ivar=torch.where(mask, 0.0, torch.full_like(spectrum, 1.0 / spectrum_sigma**2)),
                mask=mask.clone(),
            )
        }
        columns = {band: torch.ones(n, dtype=torch.bool) for band in self.bands}
        columns["PRISM"] = has_spectrum
        present = torch.stack([columns[name] for name in modality_order(columns)], dim=1)
        batch = Batch(
            images=images,
            spectra=spectra,
            present=present,
            modalities=modality_order([*self.bands, "PRISM"]),
            targets={
                "redshift": redshift,
                "log_mass": log_mass,
                "morphology": morphology,
                "spectrum_noiseless": noiseless_spectrum,
            },
        )
        return to_device(batch, self.device)

    def validation_batches(self, n_objects: int) -> list:
        seed = seed_from("validation", self.seed)
        return [self.batch(k, size, seed=seed) for k, size in enumerate(_chunk_sizes(n_objects, self.batch_size))]


def mix_counts(weights, batch_size: int) -> list[int]:
    """Objects per batch from each source: ``batch_size`` split in proportion to ``weights``.

    Largest remainders, and at least one object from every source with a positive weight.

    Parameters
    ----------
    weights : sequence of float
        Non-negative shares (need not sum to 1).
    batch_size : int
        Objects per batch.

    Returns
    -------
    counts : list of int
        Summing to ``batch_size``.

    Raises
    ------
    ValueError
        Negative or non-finite weights, none positive, or fewer objects per batch than
        sources with a positive weight.

    Examples
    --------
    >>> from jwst_embed.training.data import mix_counts
    >>> mix_counts([0.75, 0.25], 64), mix_counts([1, 1, 1], 10)
    ([48, 16], [4, 3, 3])
    """
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 1 or not np.isfinite(weights).all() or (weights < 0).any() or not (weights > 0).any():
        raise ValueError(f"mix weights must be non-negative numbers, at least one positive; got {weights.tolist()}")
    active = weights > 0
    if batch_size < int(active.sum()):
        raise ValueError(f"batch size {batch_size} is smaller than the number of mixed sources ({int(active.sum())})")
    share = weights / weights.sum() * batch_size
    counts = np.where(active, np.maximum(np.floor(share), 1), 0).astype(int)
    while counts.sum() < batch_size:  # hand out the rest by largest remainder
        counts[np.argmax(np.where(active, share - counts, -np.inf))] += 1
    while counts.sum() > batch_size:  # the minimum of one overshot: take from the largest
        counts[np.argmax(np.where(counts > 1, counts - share, -np.inf))] -= 1
    return counts.tolist()


class MixedSource(IndexedSource):
    """Batches drawn from several sources in fixed proportions (e.g. real files and mocks).

    Every batch holds ``counts[i]`` objects of source ``i`` (`mix_counts`); source ``i``
    serves its part of batch ``k`` as its own batch ``k``, so the mix keeps random access
    (and under ``torchrun`` each process reads only its batches' rows). Modalities a source
    lacks are absent for its objects; labels a source lacks are NaN (unknown) for its objects,
    so the supervised terms use only the objects that have that label while the
    self-supervised terms use every object.

    Parameters
    ----------
    sources : sequence of `IndexedSource`
        The sources, each built with its own ``batch_size`` equal to its count.

    Examples
    --------
    >>> from jwst_embed.training.data import MixedSource, SyntheticSource, mix_counts
    >>> counts = mix_counts([3, 1], 8)
    >>> parts = [SyntheticSource(n, seed=i, bands=("F150W",), image_size=16, spectrum_length=32)
    ...          for i, n in enumerate(counts)]
    >>> len(MixedSource(parts).batch(0)), counts
    (8, [6, 2])
    """

    def __init__(self, sources) -> None:
        self.sources = list(sources)
        if not self.sources:
            raise ValueError("MixedSource needs at least one source")
        self.counts = [int(source.batch_size) for source in self.sources]
        self.batch_size = sum(self.counts)

    def batch(self, index: int, size: int | None = None):
        if size is not None and size != self.batch_size:
            raise ValueError(f"a MixedSource serves batches of {self.batch_size} objects, not {size}")
        return collate_mixed([source.batch(index) for source in self.sources])

    def validation_batches(self, n_objects: int) -> list:
        """Each source's validation objects, in proportion to its count (its own batches)."""
        shares = mix_counts(self.counts, max(int(n_objects), len(self.sources)))
        return [batch for source, n in zip(self.sources, shares, strict=True) for batch in source.validation_batches(n)]


def collate_mixed(batches) -> Batch:
    """`~jwst_embed.preprocessing.Batch.collate` for batches with different labels: missing
    ones become NaN (unknown), integer labels become float32 to hold the NaN."""
    from ..preprocessing.batch import Batch

    keys = sorted({key for batch in batches for key in batch.targets})
    shapes = {key: next(batch.targets[key].shape[1:] for batch in batches if key in batch.targets) for key in keys}
    filled = []
    for batch in batches:
        targets = {}
        for key in keys:
            value = batch.targets.get(key)
            if value is None:
                value = torch.full((len(batch), *shapes[key]), float("nan"), device=batch.device)
            targets[key] = value if value.is_floating_point() else value.float()
        filled.append(dataclasses.replace(batch, targets=targets))
    return Batch.collate(filled)


def _chunk_sizes(n: int, batch_size: int) -> list[int]:
    return [min(batch_size, n - start) for start in range(0, n, batch_size)]


def to_device(batch, device: torch.device):
    if device.type == "cpu" and getattr(batch.present, "device", device) == device:
        return batch
    return batch.to(device)
