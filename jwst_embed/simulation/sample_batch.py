"""A simulated sample (`MockSurvey.sample`) as the model's input: a `~jwst_embed.preprocessing.Batch`."""

from __future__ import annotations

import torch

from ..bands import NIRCAM_BANDS
from ..preprocessing.batch import Batch, ModalityTensors

__all__ = ["LABEL_KEYS", "modality_order_of_bands", "sample_to_batch"]

#: Per-object labels written to ``/labels`` and carried as Batch targets.
LABEL_KEYS = (
    "redshift",
    "log_mass",
    "log_sfr",
    "morphology",
    "star_forming",
    "bulge_fraction",
    "bulge_n",
    "disk_n",
    "bulge_re_arcsec",
    "disk_re_arcsec",
    "exposure_s",
    "slit_throughput",
)


def modality_order_of_bands(bands) -> list[str]:
    """``bands`` in the order of `~jwst_embed.bands.NIRCAM_BANDS` (blue to red)."""
    order = {name: i for i, name in enumerate(NIRCAM_BANDS)}
    return sorted(bands, key=order.__getitem__)


def sample_to_batch(sample: dict, config, noiseless_spectrum_target: bool = True):
    """Turn a `MockSurvey.sample` dictionary into a `~jwst_embed.preprocessing.Batch`.

    Parameters
    ----------
    sample : dict of `torch.Tensor`
        Output of `MockSurvey.sample` (or of `MockCatalogue.read_sample`).
    config : `SurveyConfig`
        The configuration that produced it (gives the band order).
    noiseless_spectrum_target : bool
        Also carry the noiseless spectrum as the target ``"spectrum_noiseless"``.

    Returns
    -------
    batch : `~jwst_embed.preprocessing.Batch`
        Images keyed by band, the spectrum as ``"PRISM"``, labels in ``targets``.
    """
    images = {}
    bands = list(config.bands)
    for band in modality_order_of_bands(bands):
        k = bands.index(band)
        images[band] = ModalityTensors(
            values=sample["images"][:, k].float(),
            ivar=sample["images_ivar"][:, k].float(),
            mask=sample["images_mask"][:, k].bool(),
        )
    spectra = {}
    n = sample["redshift"].shape[0]
    device = sample["redshift"].device
    present_columns = [torch.ones(n, dtype=torch.bool, device=device) for _ in images]
    if config.include_spectra and "spectrum" in sample:
        has_spectrum = sample["has_spectrum"].bool()
        mask = sample["spectrum_mask"].bool() | ~has_spectrum[:, None]
        spectra["PRISM"] = ModalityTensors(
            values=torch.where(has_spectrum[:, None], sample["spectrum"].float(), 0.0),
            ivar=torch.where(mask, 0.0, sample["spectrum_ivar"].float()),
            mask=mask,
        )
        present_columns.append(has_spectrum)
    targets = {key: sample[key] for key in LABEL_KEYS if key in sample}
    if noiseless_spectrum_target and "spectrum_noiseless" in sample:
        targets["spectrum_noiseless"] = sample["spectrum_noiseless"].float()
    return Batch(
        images=images,
        spectra=spectra,
        present=torch.stack(present_columns, dim=1),
        modalities=tuple(images) + tuple(spectra),
        targets=targets,
    )
