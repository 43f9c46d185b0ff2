"""Labels for fine-tuning: masked, unit-bearing or named labels as one float array per head."""

from __future__ import annotations

from typing import Any

import astropy.units as u
import numpy as np
import torch
from torch import nn

from ..models.heads import MORPHOLOGY_CLASSES, MassHead, MLPHead, MorphologyHead, RedshiftHead

__all__ = ["labels_for_head"]

# Kind of label each built-in head reads.
_HEAD_LABELS = {RedshiftHead: "redshift", MassHead: "log_mass", MorphologyHead: "morphology"}


def _unmasked(labels: Any) -> Any:
    """Labels with masked entries made missing: NaN for numbers, None for class names.

    A masked array (`numpy.ma.MaskedArray`, astropy's ``MaskedColumn``) or an astropy
    ``Masked`` quantity would otherwise lose its mask on conversion and its fill values would be
    trained on as labels.
    """
    mask = None
    if isinstance(labels, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(labels)
        unit = getattr(labels, "unit", None)
        labels = np.ma.getdata(labels)
        if unit is not None and labels.dtype.kind in "biuf":  # a MaskedColumn with a unit
            labels = u.Quantity(labels, unit)
    elif hasattr(labels, "unmasked") and isinstance(getattr(labels, "mask", None), np.ndarray):
        mask = np.asarray(labels.mask)
        labels = labels.unmasked
    if mask is None or not mask.any():
        return labels
    if labels.dtype.kind in "biuf":
        filled = labels.astype(np.float64, copy=True)
        values = filled.value if isinstance(filled, u.Quantity) else filled
        values[mask] = np.nan
        return filled
    return [None if hidden else entry for entry, hidden in zip(labels.tolist(), mask.ravel().tolist(), strict=True)]


def _as_float_labels(labels: Any, what: str) -> np.ndarray:
    try:
        values = np.asarray(labels, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"labels for {what} must be numbers (NaN = missing): {err}") from None
    if values.ndim == 0:
        values = values[None]
    return values


def _one_per_object(values: np.ndarray, what: str) -> np.ndarray:
    if values.ndim != 1:
        raise ValueError(
            f"labels for {what} must be one number per object (a 1-D array), got shape {values.shape}"
            + (" (use labels.ravel())" if values.ndim == 2 and 1 in values.shape else "")
        )
    return values


def _redshift_labels(labels: Any) -> np.ndarray:
    if isinstance(labels, u.Quantity):
        labels = labels.to_value(u.dimensionless_unscaled)  # UnitsError names the unit
    values = _one_per_object(_as_float_labels(labels, "redshift"), "redshift")
    bad = np.flatnonzero(values < 0)
    if bad.size:
        raise ValueError(f"redshift labels must be >= 0 (NaN = missing); objects {bad[:10].tolist()} are negative")
    if np.isinf(values).any():
        raise ValueError("redshift labels contain inf; use NaN for a missing redshift")
    return values


def _log_mass_labels(labels: Any) -> np.ndarray:
    if isinstance(labels, u.Quantity):
        unit = labels.unit
        if isinstance(unit, u.FunctionUnitBase) or unit.physical_type == "mass":
            quantity = labels if isinstance(unit, u.FunctionUnitBase) else labels.to(u.Msun)
            with np.errstate(divide="ignore", invalid="ignore"):
                labels = u.Dex(quantity, u.dex(u.Msun)).value  # UnitsError if not a mass
        else:
            labels = labels.to_value(u.dimensionless_unscaled)
    values = _one_per_object(_as_float_labels(labels, "stellar_mass"), "stellar_mass")
    values[~np.isfinite(values)] = np.nan  # log10(0 Msun) = -inf: a missing mass
    finite = values[np.isfinite(values)]
    if finite.size and finite.max() > 20:
        raise ValueError(
            f"stellar_mass labels reach {finite.max():.3g}: give log10(M/Msun) (e.g. 9.5), or a Quantity in "
            "u.Msun or u.dex(u.Msun)"
        )
    return values


def _morphology_labels(labels: Any, n_classes: int) -> np.ndarray:
    if np.ndim(labels) > 1:
        raise ValueError(f"labels for morphology must be one class per object (1-D), got shape {np.shape(labels)}")
    entries = list(labels) if not isinstance(labels, str) else [labels]
    names = {name.lower(): index for index, name in enumerate(MORPHOLOGY_CLASSES)}
    values = np.full(len(entries), np.nan)
    for i, entry in enumerate(entries):
        if entry is None or (isinstance(entry, float | np.floating) and np.isnan(entry)):
            continue
        if isinstance(entry, str | np.str_):
            if entry.lower() not in names:
                raise ValueError(
                    f"morphology label {entry!r} of object {i} is not one of {', '.join(MORPHOLOGY_CLASSES)}"
                )
            values[i] = names[entry.lower()]
        else:
            if float(entry) != int(entry) or not 0 <= int(entry) < n_classes:
                raise ValueError(
                    f"morphology label {entry!r} of object {i} is not a class index in 0-{n_classes - 1}"
                )
            values[i] = int(entry)
    return values


def _custom_labels(labels: Any) -> np.ndarray:
    if isinstance(labels, u.Quantity):
        labels = labels.value  # a custom head learns the numbers in the unit given
    values = _as_float_labels(labels, "a custom head")
    if np.isinf(values).any():
        raise ValueError("labels contain inf; use NaN for a missing label")
    return values


def labels_for_head(head: nn.Module, labels: Any) -> np.ndarray:
    """The labels a head trains on, as floats (NaN = missing), checked against the head.

    Parameters
    ----------
    head : `~torch.nn.Module`
        A head of `jwst_embed.models.heads` (or a custom one).
    labels : array-like or `~astropy.units.Quantity`
        One label per object, as for `~jwst_embed.tuning.fine_tune`.

    Returns
    -------
    targets : `numpy.ndarray`
        (N,) or (N, out_dim) float64.

    Raises
    ------
    ValueError
        If labels are missing, out of the head's range, of the wrong shape or unknown names.
    astropy.units.UnitsError
        If a Quantity has the wrong unit.
    """
    if labels is None:
        raise ValueError("fine_tune needs labels: one per object (NaN = missing)")
    labels = _unmasked(labels)
    kind = next((kind for cls, kind in _HEAD_LABELS.items() if isinstance(head, cls)), None)
    if kind == "redshift":
        values = _redshift_labels(labels)
        z_max = float(torch.expm1(head.log1pz_edges[-1]))
        high = np.flatnonzero(values > z_max)
        if high.size:
            raise ValueError(
                f"redshift labels of objects {high[:10].tolist()} exceed the head's range (z <= {z_max:.3g}); "
                "a label beyond it teaches nothing (NaN = missing)"
            )
        return values
    if kind == "log_mass":
        return _log_mass_labels(labels)
    if kind == "morphology":
        return _morphology_labels(labels, head.net[-1].out_features)
    values = _custom_labels(labels)
    width = head.net[-1].out_features if isinstance(head, MLPHead) else None
    if width is not None and values.size and values.reshape(values.shape[0], -1).shape[1] != width:
        raise ValueError(
            f"labels of shape {values.shape} do not fit a head with {width} output(s): give one row of {width} "
            "per object" + (" (a 1-D array for one output)" if width == 1 else "")
        )
    return values
