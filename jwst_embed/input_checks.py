"""Does an input carry information the model can use? Checks on the preprocessed inputs.

The model answers whatever it is given: a sign-flipped spectrum, a blank cutout, pure noise or
fluxes a billion times off (a unit label mixed up) all get a p(z). These checks look at each
input as the model sees it (on the model grids, in nJy with inverse variances) and name what is
wrong, so that the prediction tables can flag the object and widen its p(z) instead of answering
confidently. Every threshold sits far outside what the mock survey and the real PRISM spectra
beside the repository show (see the notes on each constant).

Reasons, per input:

``negative``
    strongly negative: optimally weighted flux below -20 sigma with three times more pixels
    below -3 sigma than above +3 sigma (a sign flip; a faint spectrum with over-subtracted
    background stays well above this);
``flux_scale``
    the noise per pixel (or a spectrum's median flux) lies outside the range the model was
    trained on by orders of magnitude: a wrong unit or an absurd value;
``no_signal``
    no detection anywhere: no input of the object reaches 3 sigma (a spectrum's optimally
    weighted flux; an image's flux within 0.32" of the centre), and none has an excess of
    significant pixels (at least 10 above +3 sigma, five Poisson sigma more than noise gives,
    and twice as many as below -3 sigma: emission lines on a faint or over-subtracted continuum). A single blank band beside others is
    information (a dropout) and is not flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .preprocessing.batch import Batch, ModalityTensors

__all__ = ["InputCheck", "check_inputs", "without_failed_inputs", "widen_to_prior", "INPUT_REASONS"]

#: The reasons `check_inputs` gives, in the order they are reported.
INPUT_REASONS = ("negative", "flux_scale", "no_signal")

#: Detection threshold (sigma) of an input; below it on every input the object has no signal.
_DETECTION_SIGMA = 3.0
#: A sign flip: optimally weighted flux below this many sigma ...
_NEGATIVE_SIGMA = -20.0
#: ... with this many times more pixels below -3 sigma than above +3 sigma.
_NEGATIVE_PIXEL_RATIO = 3.0
#: Noise per model pixel (nJy) the model can have been trained near: mock PRISM spectra have
#: 4.8-45 nJy (real ones 3.4-57), mock cutouts 0.07-0.84 nJy (real JADES ones 0.03-0.09); these
#: bounds sit about two to three orders of magnitude outside.
_SPECTRUM_NOISE_NJY = (0.01, 1.0e4)
_IMAGE_NOISE_NJY = (1.0e-4, 1.0e2)
#: Median absolute flux of a spectrum (nJy) above which it is no galaxy the model knows (mocks
#: reach 1.2e5 nJy).
_SPECTRUM_FLUX_MAX_NJY = 1.0e7
#: A detection by significant pixels: at least this many above +3 sigma ...
_EXCESS_PIXELS = 10
#: ... and this many times more than below -3 sigma (noise gives as many of either sign).
_EXCESS_RATIO = 2.0
#: Radius (model pixels of 0.04") of the central aperture whose flux decides an image's detection.
_APERTURE_PIXELS = 8.0


@dataclass
class InputCheck:
    """Verdicts of `check_inputs` for a batch of objects.

    Attributes
    ----------
    reasons : list of str
        Per object, ``"reason:modality"`` entries joined by ``"; "`` (``""`` when every input
        is fine), e.g. ``"negative:PRISM"`` or ``"no_signal"``.
    usable : dict of str to `numpy.ndarray`
        Per modality, (N,) bool: the object has this input and it passed (``negative`` and
        ``flux_scale``; a faint input is still usable).
    uninformative : `numpy.ndarray`
        (N,) bool: no input of the object can inform a prediction (every input failed, or none
        shows a signal).
    """

    reasons: list[str]
    usable: dict[str, np.ndarray]
    uninformative: np.ndarray


def _spectrum_statistics(flux: np.ndarray, ivar: np.ndarray, good: np.ndarray):
    weight = np.where(good, ivar, 0.0)
    signal = np.where(good, flux, 0.0)
    total = weight.sum(axis=1)
    snr = (signal * weight).sum(axis=1) / np.sqrt(np.maximum(total, 1e-300))
    pull = signal * np.sqrt(weight)
    above, below = (pull > 3).sum(axis=1), (pull < -3).sum(axis=1)
    noise = np.full(len(flux), np.nan)
    level = np.full(len(flux), np.nan)
    for k in np.flatnonzero(good.any(axis=1)):
        noise[k] = np.median(1.0 / np.sqrt(weight[k, good[k]]))
        level[k] = np.median(np.abs(signal[k, good[k]]))
    return snr, above, below, noise, level


def _image_statistics(values: np.ndarray, ivar: np.ndarray, good: np.ndarray):
    size = values.shape[-1]
    yy, xx = np.mgrid[:size, :size]
    centre = (size - 1) / 2.0
    aperture = np.hypot(yy - centre, xx - centre) <= _APERTURE_PIXELS
    inside = good & aperture[None]
    variance = np.where(inside, 1.0 / np.where(ivar > 0, ivar, 1.0), 0.0)
    flux = np.where(inside, values, 0.0).sum(axis=(1, 2))
    snr = flux / np.sqrt(np.maximum(variance.sum(axis=(1, 2)), 1e-300))
    pull = np.where(good, values * np.sqrt(np.where(good, ivar, 0.0)), 0.0)
    above, below = (pull > 3).sum(axis=(1, 2)), (pull < -3).sum(axis=(1, 2))
    noise = np.full(len(values), np.nan)
    for k in np.flatnonzero(good.any(axis=(1, 2))):
        noise[k] = np.median(1.0 / np.sqrt(ivar[k][good[k]]))
    return snr, above, below, noise


def check_inputs(batch: Batch) -> InputCheck:
    """Check every input of a preprocessed batch (fluxes in nJy on the model grids).

    Parameters
    ----------
    batch : `~jwst_embed.preprocessing.Batch`
        As `~jwst_embed.preprocessing.make_batch` returns it.

    Returns
    -------
    check : `InputCheck`

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> from specutils import Spectrum
    >>> from astropy.nddata import StdDevUncertainty
    >>> from jwst_embed.preprocessing import make_batch
    >>> wave = np.linspace(0.7, 5.2, 400) * u.um
    >>> flux = np.full(400, 200.0) * u.nJy
    >>> good = Spectrum(flux=flux, spectral_axis=wave, uncertainty=StdDevUncertainty(np.full(400, 10.0)))
    >>> flipped = Spectrum(flux=-flux, spectral_axis=wave, uncertainty=StdDevUncertainty(np.full(400, 10.0)))
    >>> check_inputs(make_batch(spectra={"PRISM": [good, flipped]})).reasons
    ['', 'negative:PRISM']
    """
    n = len(batch)
    present = batch.present.cpu().numpy()
    reasons: list[list[str]] = [[] for _ in range(n)]
    usable: dict[str, np.ndarray] = {}
    detected = np.zeros(n, dtype=bool)
    for column, name in enumerate(batch.modalities):
        has = present[:, column]
        tensors = batch.images[name] if name in batch.images else batch.spectra[name]
        values = tensors.values.detach().double().cpu().numpy()
        ivar = tensors.ivar.detach().double().cpu().numpy()
        good = ~tensors.mask.cpu().numpy() & (ivar > 0) & has.reshape((-1,) + (1,) * (values.ndim - 1))
        if name in batch.spectra:
            snr, above, below, noise, level = _spectrum_statistics(values, ivar, good)
            low, high = _SPECTRUM_NOISE_NJY
            scale_bad = (noise < low) | (noise > high) | (level > _SPECTRUM_FLUX_MAX_NJY)
        else:
            snr, above, below, noise = _image_statistics(values, ivar, good)
            low, high = _IMAGE_NOISE_NJY
            scale_bad = (noise < low) | (noise > high)
        negative = (snr < _NEGATIVE_SIGMA) & (below > _NEGATIVE_PIXEL_RATIO * np.maximum(above, 1))
        scale_bad &= has
        negative &= has & ~scale_bad
        for k in np.flatnonzero(negative):
            reasons[k].append(f"negative:{name}")
        for k in np.flatnonzero(scale_bad):
            reasons[k].append(f"flux_scale:{name}")
        usable[name] = has & ~negative & ~scale_bad
        # pure noise puts 0.135% of the pixels above +3 sigma: ask for 5 sigma more than that
        n_good = good.reshape(len(good), -1).sum(axis=1)
        expected = 0.00135 * n_good
        needed = np.maximum(_EXCESS_PIXELS, expected + 5.0 * np.sqrt(expected))
        excess = (above >= needed) & (above >= _EXCESS_RATIO * below)
        detected |= usable[name] & ((snr >= _DETECTION_SIGMA) | excess)
    any_usable = np.zeros(n, dtype=bool)
    for flags in usable.values():
        any_usable |= flags
    for k in np.flatnonzero(any_usable & ~detected):
        reasons[k].append("no_signal")
    return InputCheck(
        reasons=["; ".join(entry) for entry in reasons],
        usable=usable,
        uninformative=~detected,
    )


def without_failed_inputs(batch: Batch, check: InputCheck) -> Batch:
    """The batch with the inputs that failed (``negative``, ``flux_scale``) made absent.

    An object keeps a failed input only when it has no usable one (the model needs something
    to run on; its answer is widened downstream), so a sign-flipped spectrum beside a good
    image never reaches the model as numbers.
    """
    present = batch.present.clone()
    any_usable = np.zeros(len(batch), dtype=bool)
    for flags in check.usable.values():
        any_usable |= flags
    changed = False
    tensors = {}
    for column, name in enumerate(batch.modalities):
        drop = torch.as_tensor(present[:, column].cpu().numpy() & ~check.usable[name] & any_usable)
        original = batch.images[name] if name in batch.images else batch.spectra[name]
        if not bool(drop.any()):
            tensors[name] = original
            continue
        changed = True
        present[drop.to(present.device), column] = False
        rows = drop.to(original.values.device).reshape((-1,) + (1,) * (original.values.ndim - 1))
        tensors[name] = ModalityTensors(
            torch.where(rows, torch.zeros_like(original.values), original.values),
            torch.where(rows, torch.zeros_like(original.ivar), original.ivar),
            original.mask | rows,
        )
    if not changed:
        return batch
    return Batch(
        images={name: tensors[name] for name in batch.images},
        spectra={name: tensors[name] for name in batch.spectra},
        present=present,
        modalities=batch.modalities,
        targets=batch.targets,
    )


def widen_to_prior(pdf: torch.Tensor | np.ndarray) -> np.ndarray:
    """A flat p(z) over the redshift head's bins (uniform in ln(1 + z)) of the same shape."""
    pdf = np.asarray(pdf, dtype=np.float64)
    return np.full_like(pdf, 1.0 / pdf.shape[-1])
