"""The metrics every number of the package is measured with: one definition of each.

- redshift: ``sigma_NMAD = 1.4826 median(|dz - median(dz)|)`` with
  ``dz = (z_pred - z_true) / (1 + z_true)``, outlier fraction ``|dz| > 0.15``,
  probability integral transform (PIT, the predicted CDF at the true redshift)
  and the coverage of the 16-84% interval;
- stellar mass: standard deviation and NMAD of ``log M_pred - log M_true``;
- morphology: macro-averaged F1 (the mean over the classes present in the truth or the
  predictions) and per-class F1;
- spectrum reconstruction: per object
  ``R^2 = 1 - sum((f_rec - f_true)^2) / sum((f_true - mean f_true)^2)`` on the
  model grid against the noiseless spectrum, in flux (nJy) or in the model's
  stretched space ``asinh(f / SPECTRUM_SOFTENING_NJY)``; mean and median over objects.

These are the reference's definitions; the seed table (``benchmarks/seed_table.py``), the
real-spectrum benchmark, ``jwst_embed.evaluation.evaluate`` and the validation during training
all use these functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .classes import MORPHOLOGY_CLASSES

__all__ = [
    "NMAD_SCALE",
    "sigma_nmad",
    "outlier_fraction",
    "redshift_metrics",
    "mass_scatter",
    "morphology_f1",
    "spectrum_r2",
    "summarise_r2",
    "pit_values",
    "interval_coverage",
    "binned_metrics",
]

#: Scale of a normal distribution's median absolute deviation: sigma = 1.4826 MAD.
NMAD_SCALE = 1.4826


def sigma_nmad(z_pred, z_true) -> float:
    """Normalised median absolute deviation of dz = (z_pred - z_true) / (1 + z_true).

    Parameters
    ----------
    z_pred, z_true : array-like
        Predicted and true redshifts (same length, at least one).

    Returns
    -------
    sigma : float
        ``1.4826 * median(|dz - median(dz)|)``.

    Raises
    ------
    ValueError
        If the arrays are empty or differ in length.

    Examples
    --------
    >>> from jwst_embed.metrics import sigma_nmad
    >>> round(sigma_nmad([1.1, 2.0, 3.4], [1.0, 2.0, 3.0]), 5)  # dz = 0.05, 0, 0.1
    0.07413
    """
    dz = _dz(z_pred, z_true)
    return float(NMAD_SCALE * np.median(np.abs(dz - np.median(dz))))


def outlier_fraction(z_pred, z_true, threshold: float = 0.15) -> float:
    """Fraction of objects with ``|dz| > threshold``.

    Parameters
    ----------
    z_pred, z_true : array-like
        Predicted and true redshifts, same non-zero length;
        ``dz = (z_pred - z_true) / (1 + z_true)``.
    threshold : float
        Outlier limit on ``|dz|``.

    Returns
    -------
    float
        Fraction in [0, 1].

    Raises
    ------
    ValueError
        If the inputs are empty or of different lengths.

    Examples
    --------
    >>> from jwst_embed.metrics import outlier_fraction
    >>> outlier_fraction([1.0, 3.0], [1.0, 1.0])
    0.5
    """
    return float(np.mean(np.abs(_dz(z_pred, z_true)) > threshold))


def _dz(z_pred, z_true) -> np.ndarray:
    z_pred = np.asarray(z_pred, dtype=np.float64).ravel()
    z_true = np.asarray(z_true, dtype=np.float64).ravel()
    if z_pred.size == 0 or z_pred.shape != z_true.shape:
        raise ValueError(f"z_pred and z_true must be non-empty and of equal length, got {z_pred.size} and {z_true.size}")
    return (z_pred - z_true) / (1.0 + z_true)




def _finite_pairs(pred, true, what: str) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64).ravel()
    true = np.asarray(true, dtype=np.float64).ravel()
    if pred.shape != true.shape:
        raise ValueError(f"{what}: predictions ({pred.size}) and truths ({true.size}) differ in length")
    keep = np.isfinite(pred) & np.isfinite(true)
    if not keep.any():
        raise ValueError(f"{what}: no object has a finite prediction and truth")
    return pred[keep], true[keep]


def redshift_metrics(z_pred, z_true, z_lo=None, z_hi=None, pit=None) -> dict[str, float]:
    """Point and interval metrics of photometric/spectroscopic redshifts.

    Parameters
    ----------
    z_pred, z_true : array-like
        ``(N,)`` predicted (e.g. PDF median) and true redshifts; non-finite pairs are dropped.
    z_lo, z_hi : array-like, optional
        ``(N,)`` 16th and 84th percentiles; add ``coverage_68``.
    pit : array-like, optional
        ``(N,)`` PIT values (`pit_values`); add their mean and the fraction outside [0.01, 0.99].

    Returns
    -------
    metrics : dict of str to float
        ``n``, ``sigma_nmad``, ``outlier_frac`` (``|dz| > 0.15``), ``bias`` (median dz)
        and, with the optional inputs, ``coverage_68``, ``pit_mean``, ``pit_extreme_frac``.

    Raises
    ------
    ValueError
        If the lengths differ or no pair is finite.

    Examples
    --------
    >>> from jwst_embed.metrics import redshift_metrics
    >>> m = redshift_metrics([1.1, 2.0, 3.4], [1.0, 2.0, 3.0], z_lo=[1.0, 1.9, 3.2], z_hi=[1.2, 2.1, 3.3])
    >>> round(m["sigma_nmad"], 5), m["outlier_frac"], round(m["coverage_68"], 3)
    (0.07413, 0.0, 0.667)
    """
    pred, true = np.asarray(z_pred, dtype=np.float64).ravel(), np.asarray(z_true, dtype=np.float64).ravel()
    keep = np.isfinite(pred) & np.isfinite(true)
    p, t = _finite_pairs(pred, true, "redshift")
    dz = (p - t) / (1.0 + t)
    metrics = {
        "n": int(p.size),
        "sigma_nmad": sigma_nmad(p, t),
        "outlier_frac": outlier_fraction(p, t),
        "bias": float(np.median(dz)),
    }
    if z_lo is not None and z_hi is not None:
        metrics["coverage_68"] = interval_coverage(np.asarray(z_lo)[keep], np.asarray(z_hi)[keep], t)
    if pit is not None:
        pit = np.asarray(pit, dtype=np.float64).ravel()[keep]
        metrics["pit_mean"] = float(pit.mean())
        metrics["pit_extreme_frac"] = float(np.mean((pit < 0.01) | (pit > 0.99)))
    return metrics


def mass_scatter(log_mass_pred, log_mass_true) -> dict[str, float]:
    """Scatter of the stellar-mass residual ``log M_pred - log M_true`` (dex).

    Parameters
    ----------
    log_mass_pred, log_mass_true : array-like
        ``(N,)`` log10 stellar masses; non-finite pairs are dropped.

    Returns
    -------
    metrics : dict of str to float
        ``n``, ``std``, ``nmad`` (1.4826 x median absolute deviation from the median),
        ``bias`` (median residual) and ``outlier_frac`` (``|residual| > 0.5`` dex).

    Raises
    ------
    ValueError
        If the lengths differ or no pair is finite.

    Examples
    --------
    >>> from jwst_embed.metrics import mass_scatter
    >>> m = mass_scatter([9.1, 10.0, 10.8], [9.0, 10.0, 11.0])
    >>> round(m["bias"], 3), round(m["nmad"], 4)
    (0.0, 0.1483)
    """
    pred, true = _finite_pairs(log_mass_pred, log_mass_true, "log_mass")
    residual = pred - true
    median = np.median(residual)
    return {
        "n": int(residual.size),
        "std": float(residual.std()),
        "nmad": float(NMAD_SCALE * np.median(np.abs(residual - median))),
        "bias": float(median),
        "outlier_frac": float(np.mean(np.abs(residual) > 0.5)),
    }


def morphology_f1(true_labels, pred_labels, class_names: Sequence[str] | None = None) -> dict:
    """Macro-averaged and per-class F1 of a classification.

    Parameters
    ----------
    true_labels, pred_labels : array-like
        ``(N,)`` class indices (or names, when ``class_names`` is given).
    class_names : sequence of str, optional
        Names of the classes in label order; default
        ``MORPHOLOGY_CLASSES``.

    Returns
    -------
    metrics : dict
        ``n``, ``f1_macro`` (mean over the classes present in the truth or the
        predictions), ``accuracy``, ``f1_per_class`` (dict name -> F1, classes absent
        from both left out) and ``confusion`` (nested list, rows = true class).

    Raises
    ------
    ValueError
        If the lengths differ, the input is empty or a label is not a known class.

    Examples
    --------
    >>> from jwst_embed.metrics import morphology_f1
    >>> m = morphology_f1([0, 0, 1, 1], [0, 1, 1, 1], class_names=["a", "b"])
    >>> round(m["f1_macro"], 4), m["f1_per_class"]["b"]
    (0.7333, 0.8)
    """
    if class_names is None:
        class_names = MORPHOLOGY_CLASSES
    names = list(class_names)
    true_index, pred_index = class_indices(true_labels, names), class_indices(pred_labels, names)
    if true_index.shape != pred_index.shape or true_index.size == 0:
        raise ValueError(f"need equal, non-zero numbers of labels, got {true_index.size} and {pred_index.size}")
    confusion = np.zeros((len(names), len(names)), dtype=np.int64)
    np.add.at(confusion, (true_index, pred_index), 1)
    per_class = {}
    for k, name in enumerate(names):
        tp = confusion[k, k]
        n_true, n_pred = confusion[k].sum(), confusion[:, k].sum()
        if n_true + n_pred == 0:
            continue
        per_class[name] = float(2.0 * tp / (n_true + n_pred))
    return {
        "n": int(true_index.size),
        "f1_macro": float(np.mean(list(per_class.values()))),
        "accuracy": float(np.trace(confusion) / true_index.size),
        "f1_per_class": per_class,
        "confusion": confusion.tolist(),
        "classes": names,
    }


def class_indices(labels, names: list[str]) -> np.ndarray:
    """Class labels (names or indices) as indices into ``names``; ValueError for unknown ones."""
    values = np.asarray(labels).ravel()
    if values.dtype.kind in "USO":
        lookup = {name: k for k, name in enumerate(names)}
        try:
            return np.array([lookup[str(v)] for v in values], dtype=np.int64)
        except KeyError as error:
            raise ValueError(f"unknown class {error.args[0]!r}; classes are {names}") from None
    index = values.astype(np.int64)
    if index.size and (index.min() < 0 or index.max() >= len(names) or not np.array_equal(index, values)):
        raise ValueError(f"class indices must be integers in 0-{len(names) - 1}")
    return index


def spectrum_r2(prediction, truth, valid=None) -> np.ndarray:
    """Per-object R^2 of reconstructed spectra against true ones on the same grid.

    Parameters
    ----------
    prediction, truth : array-like
        ``(N, L)`` reconstructed and true spectra, in the same space (flux in nJy, or
        both stretched).
    valid : array-like, optional
        ``(N, L)`` bool, True for pixels to use (default all).

    Returns
    -------
    r2 : `~numpy.ndarray`
        ``(N,)`` ``1 - sum((pred - true)^2) / sum((true - mean true)^2)``; NaN where
        the truth is constant (see `summarise_r2`, which drops them).

    Examples
    --------
    >>> import numpy as np
    >>> from jwst_embed.metrics import spectrum_r2
    >>> truth = np.array([[0.0, 1.0, 2.0, 3.0]])
    >>> spectrum_r2(truth, truth).tolist(), spectrum_r2(np.full((1, 4), 1.5), truth).tolist()
    ([1.0], [0.0])
    """
    pred = np.asarray(prediction, dtype=np.float64)
    true = np.asarray(truth, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 2:
        raise ValueError(f"prediction and truth must be (N, L) of one shape, got {pred.shape} and {true.shape}")
    weight = np.ones_like(true) if valid is None else np.asarray(valid, dtype=bool).astype(np.float64)
    count = np.maximum(weight.sum(axis=1, keepdims=True), 1.0)
    mean = (true * weight).sum(axis=1, keepdims=True) / count
    residual = ((pred - true) ** 2 * weight).sum(axis=1)
    total = ((true - mean) ** 2 * weight).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = 1.0 - residual / total
    return np.where(total > 0, r2, np.nan)


def summarise_r2(r2) -> dict[str, float]:
    """Mean, median and count of finite per-object R^2 values.

    The mean is the reference's statistic; a few nearly flat (faint) spectra with tiny variance
    can drive it far below zero, so the median is reported beside it.

    Parameters
    ----------
    r2 : array-like
        Per-object R^2 (`spectrum_r2`); NaN values are dropped.

    Returns
    -------
    summary : dict of str to float
        ``mean``, ``median`` and ``n`` (number of finite values).

    Raises
    ------
    ValueError
        If no value is finite.

    Examples
    --------
    >>> from jwst_embed.metrics import summarise_r2
    >>> summarise_r2([0.9, 0.8, float("nan"), -3.0])["median"]
    0.8
    """
    values = np.asarray(r2, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("no finite R^2 value")
    return {"mean": float(values.mean()), "median": float(np.median(values)), "n": int(values.size)}


def pit_values(pdf, z_edges, z_true) -> np.ndarray:
    """Probability integral transform: the predicted CDF at the true redshift.

    Parameters
    ----------
    pdf : array-like
        ``(N, n_bins)`` probability per bin (rows sum to 1).
    z_edges : array-like
        ``(n_bins + 1,)`` bin edges in redshift (increasing); within a bin the CDF is
        linear in the bin coordinate.
    z_true : array-like
        ``(N,)`` true redshifts.

    Returns
    -------
    pit : `~numpy.ndarray`
        ``(N,)`` in [0, 1]; uniform for calibrated PDFs.

    Examples
    --------
    >>> import numpy as np
    >>> from jwst_embed.metrics import pit_values
    >>> pit_values(np.array([[0.5, 0.5]]), np.array([0.0, 1.0, 2.0]), np.array([1.5])).tolist()
    [0.75]
    """
    pdf = np.asarray(pdf, dtype=np.float64)
    edges = np.asarray(z_edges, dtype=np.float64).ravel()
    z_true = np.asarray(z_true, dtype=np.float64).ravel()
    if pdf.ndim != 2 or edges.size != pdf.shape[1] + 1 or z_true.size != pdf.shape[0]:
        raise ValueError(
            f"need pdf (N, n_bins), {pdf.shape[1] + 1 if pdf.ndim == 2 else '?'} edges and N redshifts, "
            f"got {pdf.shape}, {edges.size}, {z_true.size}"
        )
    cdf = np.concatenate([np.zeros((pdf.shape[0], 1)), np.cumsum(pdf, axis=1)], axis=1)
    index = np.clip(np.searchsorted(edges, z_true, side="right") - 1, 0, pdf.shape[1] - 1)
    fraction = np.clip((z_true - edges[index]) / (edges[index + 1] - edges[index]), 0.0, 1.0)
    rows = np.arange(pdf.shape[0])
    pit = cdf[rows, index] + fraction * pdf[rows, index]
    return np.clip(pit, 0.0, 1.0)


def interval_coverage(z_lo, z_hi, z_true) -> float:
    """Fraction of true values inside ``[z_lo, z_hi]`` (0.68 expected for 16-84% intervals).

    Parameters
    ----------
    z_lo, z_hi, z_true : array-like
        ``(N,)`` interval bounds and true values.

    Returns
    -------
    float
        Fraction in [0, 1].

    Raises
    ------
    ValueError
        If the lengths differ or are zero.

    Examples
    --------
    >>> from jwst_embed.metrics import interval_coverage
    >>> interval_coverage([0.0, 0.0], [1.0, 1.0], [0.5, 2.0])
    0.5
    """
    lo, hi, true = (np.asarray(v, dtype=np.float64).ravel() for v in (z_lo, z_hi, z_true))
    if not (lo.size == hi.size == true.size) or true.size == 0:
        raise ValueError(f"need equal non-zero lengths, got {lo.size}, {hi.size}, {true.size}")
    return float(np.mean((true >= lo) & (true <= hi)))


def binned_metrics(values, edges, z_pred=None, z_true=None, log_mass_pred=None, log_mass_true=None,
                   min_count: int = 5) -> list[dict]:  # fmt: skip
    """Redshift and mass metrics in bins of any per-object quantity (true z, S/N, ...).

    Parameters
    ----------
    values : array-like
        ``(N,)`` quantity to bin by.
    edges : array-like
        Bin edges (increasing); objects outside are left out.
    z_pred, z_true, log_mass_pred, log_mass_true : array-like, optional
        ``(N,)`` predictions and truths; each pair given adds its metrics.
    min_count : int
        Bins with fewer objects report only ``n``.

    Returns
    -------
    rows : list of dict
        Per bin ``lo``, ``hi``, ``n`` and ``z_sigma_nmad``, ``z_outlier_frac``,
        ``logm_std``, ``logm_nmad`` where available.

    Examples
    --------
    >>> import numpy as np
    >>> from jwst_embed.metrics import binned_metrics
    >>> z = np.linspace(0.5, 5, 100)
    >>> rows = binned_metrics(z, [0, 2, 6], z_pred=z * 1.01, z_true=z)
    >>> [row["n"] for row in rows]
    [33, 67]
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    edges = np.asarray(edges, dtype=np.float64).ravel()
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        keep = (values >= lo) & (values < hi)
        row: dict = {"lo": float(lo), "hi": float(hi), "n": int(keep.sum())}
        if row["n"] >= min_count:
            if z_pred is not None and z_true is not None:
                zp, zt = np.asarray(z_pred)[keep], np.asarray(z_true)[keep]
                row["z_sigma_nmad"] = sigma_nmad(zp, zt)
                row["z_outlier_frac"] = outlier_fraction(zp, zt)
            if log_mass_pred is not None and log_mass_true is not None:
                scatter = mass_scatter(np.asarray(log_mass_pred)[keep], np.asarray(log_mass_true)[keep])
                row["logm_std"], row["logm_nmad"] = scatter["std"], scatter["nmad"]
        rows.append(row)
    return rows
