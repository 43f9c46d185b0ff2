"""Benchmark a model's heads on your own labelled objects: `evaluate`.

The metric functions (`sigma_nmad`, `redshift_metrics`, `spectrum_r2`, ...) are defined in
`jwst_embed.metrics` and importable from here too, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .classes import MORPHOLOGY_CLASSES
from .metrics import (
    binned_metrics,
    class_indices,
    interval_coverage,
    mass_scatter,
    morphology_f1,
    outlier_fraction,
    pit_values,
    redshift_metrics,
    sigma_nmad,
    spectrum_r2,
    summarise_r2,
)
from .prediction_tables import head_tables

__all__ = [
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
    "evaluate",
]

def _label_column(labels, names: Sequence[str]):
    colnames = labels.colnames if hasattr(labels, "colnames") else list(labels)
    for name in names:
        if name in colnames:
            return labels[name]
    return None


def _plain(column) -> np.ndarray:
    """A label column as a float array, masked entries NaN (units dropped: z and log M are dimensionless)."""
    values = np.ma.asarray(getattr(column, "value", column))
    return np.ma.filled(values.astype(np.float64), np.nan)


def evaluate(embedder, images=None, spectra=None, labels=None, batch_size: int = 64,
             progress: bool = False) -> dict:  # fmt: skip
    """Benchmark an embedder's heads on your own labelled objects.

    Parameters
    ----------
    embedder : `~jwst_embed.embedder.MultimodalEmbedder`
        A model with prediction heads (e.g. ``MultimodalEmbedder.from_pretrained("default")``).
    images, spectra :
        The objects, as for `~jwst_embed.embedder.MultimodalEmbedder.embed`.
    labels : `~astropy.table.Table` or mapping of str to array-like
        One row per object with any of ``z`` (or ``redshift``), ``log_mass`` and
        ``morphology`` (class names of `~jwst_embed.models.heads.MORPHOLOGY_CLASSES`
        or indices); NaN or masked entries are skipped.
    batch_size : int
        Objects per model pass.
    progress : bool
        Show a progress bar.

    Returns
    -------
    metrics : dict
        ``n_objects`` and, per label present, ``redshift`` (`redshift_metrics` with
        PIT and 68% coverage), ``log_mass`` (`mass_scatter`) and ``morphology``
        (`morphology_f1`).

    Raises
    ------
    ValueError
        If ``labels`` is missing, has none of the label columns, or its length differs
        from the number of objects.

    Examples
    --------
    >>> from jwst_embed.embedder import MultimodalEmbedder  # doctest: +SKIP
    >>> from jwst_embed.evaluation import evaluate  # doctest: +SKIP
    >>> evaluate(MultimodalEmbedder.from_pretrained("default"), spectra=spectra, labels=table)  # doctest: +SKIP
    {'n_objects': 12, 'redshift': {'sigma_nmad': ..., ...}}
    """
    if labels is None:
        raise ValueError("labels is required: a table with z/redshift, log_mass or morphology columns")
    z_true = _label_column(labels, ("z", "redshift", "z_spec"))
    mass_true = _label_column(labels, ("log_mass", "logM", "log_mstar"))
    morph_true = _label_column(labels, ("morphology",))
    if z_true is None and mass_true is None and morph_true is None:
        raise ValueError("labels has none of the columns z, redshift, log_mass, morphology")
    # one model pass for every head (each predict_* method would run the model again)
    tables = head_tables(embedder, images, spectra, batch_size=batch_size, progress=progress)
    table = tables["redshift"]
    n_objects = len(table)
    for column in (z_true, mass_true, morph_true):
        if column is not None and len(column) != n_objects:
            raise ValueError(f"labels has {len(column)} rows but there are {n_objects} objects")
    result: dict = {"n_objects": n_objects}
    if z_true is not None:
        z = _plain(z_true)
        grid = np.asarray(table.meta["z_grid"], dtype=np.float64)
        log_grid = np.log1p(grid)
        step = np.diff(log_grid).mean() if grid.size > 1 else 1.0
        edges = np.expm1(np.concatenate([log_grid - step / 2, log_grid[-1:] + step / 2]))
        edges[0] = max(edges[0], 0.0)
        known = np.isfinite(z)
        if known.any():
            pit = np.full(n_objects, np.nan)
            pit[known] = pit_values(np.asarray(table["pz"])[known], edges, z[known])
            result["redshift"] = redshift_metrics(table["z"], z, table["z_lo"], table["z_hi"], pit=pit)
    if mass_true is not None:
        mass = _plain(mass_true)
        if np.isfinite(mass).any():
            predicted = tables["log_mass"]
            result["log_mass"] = mass_scatter(np.asarray(predicted["log_mass"]), mass)
    if morph_true is not None:
        values = np.ma.asarray(morph_true)
        known = ~np.ma.getmaskarray(values)
        if values.dtype.kind in "iuf":
            known &= np.isfinite(np.ma.filled(values.astype(np.float64), np.nan))
        if known.any():
            predicted = tables["morphology"]
            truth = np.asarray(np.ma.filled(values, values.flat[0]))[known]
            if truth.dtype.kind == "f":
                truth = truth.astype(np.int64)
            result["morphology"] = morphology_f1(
                truth, np.asarray(predicted["morphology"]).astype(str)[known]
                if truth.dtype.kind in "US" else class_indices(
                    np.asarray(predicted["morphology"]).astype(str)[known], list(MORPHOLOGY_CLASSES)
                ),
            )
    return result
