"""Decoded spectra brought to the flux level of the observed spectrum.

The spectrum decoder reads only the fused embedding, and an embedding knows an object's flux
level to ~20% (`DECODER_AMPLITUDE_SIGMA`: the spread of the decoded spectrum's best-fitting
amplitude against the noiseless mock). Where the object's own PRISM
spectrum was given, its data measure that level too: the inverse-variance weighted least-squares
amplitude of the decoded shape (the matched filter), with a variance of
``1 / sum(decoded^2 * ivar)``. `match_amplitude` combines the two as a Gaussian prior (amplitude
1, width `DECODER_AMPLITUDE_SIGMA`) times that likelihood: a bright spectrum sets its own level,
a spectrum of noise leaves the decoder's.

The per-object R^2 of DESIGN.md section 8 divides by the spectrum's variance about its own mean,
which is small for the nearly flat f_nu of young galaxies: there a few per cent of amplitude
error dominates the score (``benchmarks/spectrum_r2_ceiling.py``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["DECODER_AMPLITUDE_SIGMA", "match_amplitude"]

#: Prior width of the decoded spectrum's amplitude (as a fraction): the standard deviation of the
#: amplitude that best fits the default model's decoded spectrum (F150W + PRISM) to the noiseless
#: spectrum, clipped to [0, 3], on 4,000 mocks of a training-side seed (424243): 0.204
#: (``benchmarks/spectrum_r2_ceiling.py``, ``decoder_amplitude_sigma`` in its results).
DECODER_AMPLITUDE_SIGMA = 0.2


def match_amplitude(
    decoded, flux, ivar, mask=None, prior_sigma: float = DECODER_AMPLITUDE_SIGMA
) -> np.ndarray:
    """Amplitude by which to scale each decoded spectrum to the flux level of its observed one.

    The posterior mean of the amplitude ``a`` in ``flux = a * decoded + noise`` under a Gaussian
    prior of mean 1 and width ``prior_sigma``::

        a = (1 / prior_sigma^2 + sum(decoded * flux * ivar)) / (1 / prior_sigma^2 + sum(decoded^2 * ivar))

    clipped at 0. Rows without usable pixels get 1 (the decoder's own level).

    Parameters
    ----------
    decoded : array-like
        ``(N, L)`` decoded spectra (nJy) on the model grid.
    flux, ivar : array-like
        ``(N, L)`` observed spectra (nJy) and inverse variances (1/nJy^2) on the same grid.
    mask : array-like, optional
        ``(N, L)`` bool, True = bad pixel (weight 0).
    prior_sigma : float, optional
        Fractional uncertainty of the decoder's own amplitude (> 0).

    Returns
    -------
    amplitude : `numpy.ndarray`
        ``(N,)`` scale factors, >= 0.

    Raises
    ------
    ValueError
        If the shapes differ or ``prior_sigma`` is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> from jwst_embed.reconstruction import match_amplitude
    >>> decoded = np.ones((2, 100))
    >>> flux = np.vstack([np.full(100, 1.5), np.full(100, 1.5)])
    >>> ivar = np.vstack([np.full(100, 100.0), np.full(100, 1e-4)])  # bright, then noise-dominated
    >>> np.round(match_amplitude(decoded, flux, ivar), 3)
    array([1.499, 1.   ])
    """
    if not prior_sigma > 0:
        raise ValueError(f"prior_sigma must be positive, got {prior_sigma}")
    decoded = np.asarray(decoded, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    ivar = np.asarray(ivar, dtype=np.float64)
    if not (decoded.shape == flux.shape == ivar.shape) or decoded.ndim != 2:
        raise ValueError(
            f"decoded, flux and ivar must be (N, L) of one shape, got {decoded.shape}, {flux.shape}, {ivar.shape}"
        )
    good = np.isfinite(flux) & np.isfinite(ivar) & (ivar > 0)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != decoded.shape:
            raise ValueError(
                f"mask must have the spectra's shape {decoded.shape}, got {mask.shape}"
            )
        good &= ~mask
    weight = np.where(good, ivar, 0.0)
    flux = np.where(good, flux, 0.0)
    prior = 1.0 / prior_sigma**2
    amplitude = (prior + (decoded * flux * weight).sum(axis=1)) / (
        prior + (decoded * decoded * weight).sum(axis=1)
    )
    return np.clip(amplitude, 0.0, None)
