"""`Batch`: the tensors the model reads, one entry per modality, plus a presence mask.

Below this module nothing sees astropy objects. A `Batch` holds, for each imaging
band and each spectral mode, a `ModalityTensors` of physical values (nJy per pixel
for images, f_nu in nJy for spectra), inverse variance and a bad-pixel mask, and a
``present`` matrix (objects x modalities) saying which object has which modality.
A modality an object lacks is absent (``present`` False, values 0, ivar 0, mask all
True), never a zero image the model could read as data.

`make_batch` (module ``inputs``) builds one from astropy objects; `Batch.to`
moves it to a device in one call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from jwst_embed.bands import NIRCAM_BANDS, SPECTRAL_MODES, get_band, get_spectral_mode

__all__ = ["ModalityTensors", "Batch", "modality_order"]

_MODALITY_ORDER = {name: i for i, name in enumerate([*NIRCAM_BANDS, *SPECTRAL_MODES])}


def modality_order(names: Iterable[str]) -> tuple[str, ...]:
    """Canonical column order: NIRCam bands by pivot wavelength, then spectral modes.

    Parameters
    ----------
    names : iterable of str
        NIRCam band names (e.g. ``"F150W"``) and spectral mode names (e.g. ``"PRISM"``).

    Returns
    -------
    tuple of str
        The names in canonical order, duplicates removed.

    Raises
    ------
    ValueError
        If a name is neither a known NIRCam band nor a known spectral mode.

    Examples
    --------
    >>> from jwst_embed.preprocessing import modality_order
    >>> modality_order(["PRISM", "F444W", "F150W"])
    ('F150W', 'F444W', 'PRISM')
    """
    names = list(names)
    unknown = [name for name in names if name not in _MODALITY_ORDER]
    if unknown:
        raise ValueError(
            f"unknown modalities {unknown}; valid are the NIRCam bands ({', '.join(NIRCAM_BANDS)}) "
            f"and spectral modes ({', '.join(SPECTRAL_MODES)})"
        )
    return tuple(sorted(dict.fromkeys(names), key=_MODALITY_ORDER.__getitem__))


def _as_float_tensor(value: Any) -> torch.Tensor:
    tensor = torch.as_tensor(value)
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float32)
    return tensor


@dataclass
class ModalityTensors:
    """Values, inverse variance and mask of one modality for a batch of objects.

    Parameters
    ----------
    values : `torch.Tensor`
        ``(B, H, W)`` nJy per pixel for images or ``(B, L)`` f_nu in nJy for spectra;
        floating point (float32 from `make_batch`). Arrays are converted to tensors.
    ivar : `torch.Tensor`
        Same shape, inverse variance in 1/nJy^2; 0 where masked.
    mask : `torch.Tensor`
        Same shape, bool, True = bad.

    Raises
    ------
    ValueError
        If the shapes differ, there is no batch dimension, or values/ivar contain NaN or
        inf, or ivar is negative.
    """

    values: torch.Tensor
    ivar: torch.Tensor
    mask: torch.Tensor

    def __post_init__(self) -> None:
        self.values = _as_float_tensor(self.values)
        self.ivar = _as_float_tensor(self.ivar)
        self.mask = torch.as_tensor(self.mask, dtype=torch.bool, device=self.values.device)
        if self.values.ndim < 2:
            raise ValueError(
                f"values must have a batch dimension, e.g. (B, H, W) or (B, L); got {tuple(self.values.shape)}"
            )
        for name in ("ivar", "mask"):
            shape = tuple(getattr(self, name).shape)
            if shape != tuple(self.values.shape):
                raise ValueError(
                    f"{name} has shape {shape}, values have shape {tuple(self.values.shape)}"
                )
        if not torch.isfinite(self.values).all():
            raise ValueError(
                "values contain NaN or inf; mask those pixels (mask=True, value 0, ivar 0)"
            )
        if not torch.isfinite(self.ivar).all() or (self.ivar < 0).any():
            raise ValueError(
                "ivar contains NaN, inf or negative values; mask those pixels (ivar 0)"
            )

    @property
    def batch_size(self) -> int:
        return int(self.values.shape[0])

    def __len__(self) -> int:
        return self.batch_size

    @property
    def device(self) -> torch.device:
        return self.values.device

    def to(
        self, device: Any = None, dtype: torch.dtype | None = None, non_blocking: bool = False
    ) -> ModalityTensors:
        """A copy on ``device``; ``dtype`` (floating) applies to values and ivar, not the mask."""
        return _unchecked(
            ModalityTensors,
            values=self.values.to(device=device, dtype=dtype, non_blocking=non_blocking),
            ivar=self.ivar.to(device=device, dtype=dtype, non_blocking=non_blocking),
            mask=self.mask.to(device=device, non_blocking=non_blocking),
        )

    def index(self, idx: Any) -> ModalityTensors:
        """Objects ``idx`` (int, slice, index or bool tensor); an int keeps the batch dimension."""
        idx = _normalise_index(idx, self.values.device)
        return _unchecked(
            ModalityTensors, values=self.values[idx], ivar=self.ivar[idx], mask=self.mask[idx]
        )

    @classmethod
    def absent(cls, batch_size: int, shape: Sequence[int], device: Any = None) -> ModalityTensors:
        """Placeholder for objects that lack the modality: values 0, ivar 0, mask all True."""
        full = (batch_size, *shape)
        return _unchecked(
            cls,
            values=torch.zeros(full, device=device),
            ivar=torch.zeros(full, device=device),
            mask=torch.ones(full, dtype=torch.bool, device=device),
        )


def _unchecked(cls, **fields):
    # Internal constructor for values derived from validated ones (to(), index(), select()):
    # skips __post_init__ checks, which would force a device synchronisation on a GPU.
    obj = cls.__new__(cls)
    obj.__dict__.update(fields)
    return obj


def _normalise_index(idx: Any, device: torch.device) -> Any:
    if isinstance(idx, int | np.integer):
        idx = int(idx)
        return slice(idx, idx + 1) if idx != -1 else slice(-1, None)
    if isinstance(idx, slice):
        return idx
    return torch.as_tensor(
        np.asarray(idx) if not isinstance(idx, torch.Tensor) else idx, device=device
    )


@dataclass
class Batch:
    """Tensors of a batch of objects, per modality, with a presence mask.

    Parameters
    ----------
    images : dict of str to `ModalityTensors`
        Keyed by canonical NIRCam band name (``"F150W"``); values ``(B, H, W)``.
    spectra : dict of str to `ModalityTensors`
        Keyed by spectral mode (``"PRISM"``); values ``(B, L)``.
    present : `torch.Tensor`, optional
        ``(B, M)`` bool, True where the object has the modality; columns in the order of
        ``modalities``. Default: an object has a modality when any of its pixels is unmasked.
    modalities : tuple of str, optional
        Column order of ``present``; must be `modality_order` of the keys (the default).
    targets : dict of str to `torch.Tensor`, optional
        Labels with a leading batch dimension (e.g. ``"redshift"``); NaN may mark a
        missing label.

    Raises
    ------
    ValueError
        Unknown modality names, no modality, batch sizes or shapes that disagree, NaN
        or inf in values or ivar, wrong ``present`` shape or ``modalities`` order, or an
        absent modality whose pixels are not all masked with ivar 0.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.preprocessing import Batch, ModalityTensors
    >>> f150w = ModalityTensors(torch.ones(2, 8, 8), torch.ones(2, 8, 8), torch.zeros(2, 8, 8, dtype=torch.bool))
    >>> prism = ModalityTensors.absent(2, (16,))
    >>> batch = Batch(images={"F150W": f150w}, spectra={"PRISM": prism})
    >>> batch.modalities, batch.present.tolist(), len(batch)
    (('F150W', 'PRISM'), [[True, False], [True, False]], 2)
    >>> batch.to("cpu").select(["PRISM"]).modalities
    ('PRISM',)
    """

    images: dict[str, ModalityTensors] = field(default_factory=dict)
    spectra: dict[str, ModalityTensors] = field(default_factory=dict)
    present: torch.Tensor | None = None
    modalities: tuple[str, ...] = ()
    targets: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.images = dict(self.images)
        self.spectra = dict(self.spectra)
        for kind, entries, lookup in (
            ("images", self.images, get_band),
            ("spectra", self.spectra, get_spectral_mode),
        ):
            for name, tensors in entries.items():
                canonical = lookup(name).name  # raises ValueError listing the valid names
                if canonical != name:
                    raise ValueError(
                        f"{kind} key {name!r} must be the canonical name {canonical!r}"
                    )
                if not isinstance(tensors, ModalityTensors):
                    raise TypeError(
                        f"{kind}[{name!r}] must be a ModalityTensors, got {type(tensors).__name__}"
                    )
        for name, tensors in self.images.items():
            if tensors.values.ndim != 3:
                raise ValueError(
                    f"images[{name!r}] must be (B, H, W), got {tuple(tensors.values.shape)}"
                )
        for name, tensors in self.spectra.items():
            if tensors.values.ndim != 2:
                raise ValueError(
                    f"spectra[{name!r}] must be (B, L), got {tuple(tensors.values.shape)}"
                )
        if not self.images and not self.spectra:
            raise ValueError("a Batch needs at least one modality (images or spectra)")
        expected = modality_order([*self.images, *self.spectra])
        if not self.modalities:
            self.modalities = expected
        self.modalities = tuple(self.modalities)
        if self.modalities != expected:
            raise ValueError(
                f"modalities {self.modalities} must be {expected} (bands by wavelength, then spectra)"
            )
        sizes = {name: self._tensors(name).batch_size for name in self.modalities}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"modalities have different batch sizes: {sizes}")
        batch_size = next(iter(sizes.values()))
        device = self._tensors(self.modalities[0]).device
        if self.present is None:
            self.present = torch.stack(
                [~self._tensors(name).mask.flatten(1).all(dim=1) for name in self.modalities], dim=1
            )
        self.present = torch.as_tensor(self.present, dtype=torch.bool, device=device)
        if tuple(self.present.shape) != (batch_size, len(self.modalities)):
            raise ValueError(
                f"present has shape {tuple(self.present.shape)}, expected (batch size, modalities) = "
                f"({batch_size}, {len(self.modalities)})"
            )
        for column, name in enumerate(self.modalities):
            tensors = self._tensors(name)
            absent = ~self.present[:, column]
            if absent.any():
                if not tensors.mask[absent].all() or (tensors.ivar[absent] != 0).any():
                    raise ValueError(
                        f"modality {name!r} is absent (present False) for some objects whose pixels are not "
                        "all masked with ivar 0; use ModalityTensors.absent or fix present"
                    )
        self.targets = {
            key: torch.as_tensor(value, device=device) for key, value in dict(self.targets).items()
        }
        for key, value in self.targets.items():
            if value.ndim == 0 or value.shape[0] != batch_size:
                raise ValueError(
                    f"targets[{key!r}] has shape {tuple(value.shape)}, expected ({batch_size}, ...)"
                )

    # --- access ---------------------------------------------------------------------------------

    def _tensors(self, name: str) -> ModalityTensors:
        return self.images[name] if name in self.images else self.spectra[name]

    def __getitem__(self, name: str) -> ModalityTensors:
        """The `ModalityTensors` of one modality, by name."""
        if name not in self.modalities:
            raise KeyError(f"modality {name!r} is not in this batch; it has {self.modalities}")
        return self._tensors(name)

    def present_of(self, name: str) -> torch.Tensor:
        """``(B,)`` bool: which objects have modality ``name``."""
        if name not in self.modalities:
            raise KeyError(f"modality {name!r} is not in this batch; it has {self.modalities}")
        return self.present[:, self.modalities.index(name)]

    @property
    def batch_size(self) -> int:
        return int(self.present.shape[0])

    def __len__(self) -> int:
        return self.batch_size

    @property
    def device(self) -> torch.device:
        return self.present.device

    # --- transforms -----------------------------------------------------------------------------

    def to(
        self, device: Any = None, dtype: torch.dtype | None = None, non_blocking: bool = False
    ) -> Batch:
        """A new Batch with every tensor on ``device`` (values/ivar and floating targets in ``dtype``)."""

        def move_target(value: torch.Tensor) -> torch.Tensor:
            target_dtype = dtype if (dtype is not None and value.is_floating_point()) else None
            return value.to(device=device, dtype=target_dtype, non_blocking=non_blocking)

        return _unchecked(
            Batch,
            images={k: v.to(device, dtype, non_blocking) for k, v in self.images.items()},
            spectra={k: v.to(device, dtype, non_blocking) for k, v in self.spectra.items()},
            present=self.present.to(device=device, non_blocking=non_blocking),
            modalities=self.modalities,
            targets={k: move_target(v) for k, v in self.targets.items()},
        )

    def select(self, modalities: str | Iterable[str]) -> Batch:
        """A Batch with only the given modalities (in canonical order)."""
        names = [modalities] if isinstance(modalities, str) else list(modalities)
        missing = [name for name in names if name not in self.modalities]
        if missing:
            raise ValueError(
                f"modalities {missing} are not in this batch; it has {self.modalities}"
            )
        if not names:
            raise ValueError("select needs at least one modality")
        kept = modality_order(names)
        columns = [self.modalities.index(name) for name in kept]
        return _unchecked(
            Batch,
            images={k: v for k, v in self.images.items() if k in kept},
            spectra={k: v for k, v in self.spectra.items() if k in kept},
            present=self.present[:, columns],
            modalities=kept,
            targets=dict(self.targets),
        )

    def index(self, idx: Any) -> Batch:
        """The objects ``idx`` (int, slice, index list/tensor or bool mask) as a Batch."""
        idx = _normalise_index(idx, self.device)
        return _unchecked(
            Batch,
            images={k: v.index(idx) for k, v in self.images.items()},
            spectra={k: v.index(idx) for k, v in self.spectra.items()},
            present=self.present[idx],
            modalities=self.modalities,
            targets={k: v[idx] for k, v in self.targets.items()},
        )

    @classmethod
    def collate(cls, batches: Sequence[Batch]) -> Batch:
        """Concatenate batches along the object axis.

        A modality missing from some batches is filled in as absent for their objects.
        All batches must have the same target keys and the same per-modality shapes.
        Usable as a `torch.utils.data.DataLoader` ``collate_fn`` over single-object Batches.
        """
        batches = list(batches)
        if not batches:
            raise ValueError("collate needs at least one Batch")
        for i, batch in enumerate(batches):
            if not isinstance(batch, Batch):
                raise TypeError(f"batches[{i}] is a {type(batch).__name__}, not a Batch")
        target_keys = set(batches[0].targets)
        for i, batch in enumerate(batches):
            if set(batch.targets) != target_keys:
                raise ValueError(
                    f"batches[{i}] has targets {sorted(batch.targets)}, batches[0] has {sorted(target_keys)}"
                )
        device = batches[0].device
        modalities = modality_order(name for batch in batches for name in batch.modalities)
        shapes: dict[str, tuple[int, ...]] = {}
        for i, batch in enumerate(batches):
            for name in batch.modalities:
                shape = tuple(batch[name].values.shape[1:])
                if shapes.setdefault(name, shape) != shape:
                    raise ValueError(
                        f"batches[{i}][{name!r}] has shape {shape}, an earlier batch has {shapes[name]}"
                    )
        merged: dict[str, ModalityTensors] = {}
        present_columns = []
        for name in modalities:
            parts, present = [], []
            for batch in batches:
                if name in batch.modalities:
                    parts.append(batch[name].to(device))
                    present.append(batch.present_of(name).to(device))
                else:
                    parts.append(
                        ModalityTensors.absent(batch.batch_size, shapes[name], device=device)
                    )
                    present.append(torch.zeros(batch.batch_size, dtype=torch.bool, device=device))
            merged[name] = _unchecked(
                ModalityTensors,
                values=torch.cat([p.values for p in parts]),
                ivar=torch.cat([p.ivar for p in parts]),
                mask=torch.cat([p.mask for p in parts]),
            )
            present_columns.append(torch.cat(present))
        return _unchecked(
            Batch,
            images={k: v for k, v in merged.items() if k in NIRCAM_BANDS},
            spectra={k: v for k, v in merged.items() if k in SPECTRAL_MODES},
            present=torch.stack(present_columns, dim=1),
            modalities=modalities,
            targets={k: torch.cat([b.targets[k].to(device) for b in batches]) for k in target_keys},
        )

    def __repr__(self) -> str:
        shapes = ", ".join(
            f"{name}: {tuple(self._tensors(name).values.shape[1:])}" for name in self.modalities
        )
        return f"Batch(batch_size={self.batch_size}, device={self.device}, modalities={{{shapes}}}, targets={sorted(self.targets)})"
