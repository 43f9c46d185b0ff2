"""Damped Lyman-alpha absorption by the neutral gas in and around a galaxy.

PRISM spectra of many galaxies at z > 8 turn over redward of Lyman-alpha more softly than the
intergalactic medium alone makes them: a column of neutral hydrogen ``N_HI ~ 10^21-10^23 cm^-2``
at the galaxy's own redshift absorbs in the Lorentzian damping wing of the line (optical depth 1
at 3, 20 and 64 A, rest, redward of 1216 A for N_HI = 10^20.3, 10^22 and 10^23 cm^-2) (Heintz et al. 2024, Science 384, 890; Umeda et al.
2024). Such a wing moves the apparent Lyman break of a PRISM spectrum by up to ~0.05 in
ln(1 + z) when it is mistaken for the IGM's, so the mock survey draws it.

The optical depth at rest-frame frequency ``nu`` is ``tau = N_HI sigma(nu)`` with the damping
cross-section of Lyman-alpha: the Lorentzian

    sigma_L(nu) = (pi e^2 / m_e c) f_lu (Gamma / 4 pi^2) / ((nu - nu_0)^2 + (Gamma / 4 pi)^2),

``f_lu = 0.4164``, ``Gamma = 6.265e8 s^-1``, times the factor by which a classical
radiation-damped oscillator's cross-section falls below it far from the line,
``(nu / nu_0)^4 (2 nu_0 / (nu + nu_0))^2`` (1 near the line; 0.11 at twice its wavelength,
where the pure Lorentzian would overstate a 10^23 cm^-2 column's absorption tenfold). The
Doppler core (far narrower than a PRISM resolution element, and black anyway) and the
quantum-mechanical corrections of the far wing (tens of percent in tau) are left out.
"""

from __future__ import annotations

import math

import torch

__all__ = ["LYMAN_ALPHA_ANGSTROM", "dla_optical_depth", "dla_transmission", "sample_dla_columns"]

#: Rest wavelength of Lyman-alpha, Angstrom.
LYMAN_ALPHA_ANGSTROM = 1215.67

_C_ANGSTROM_PER_S = 2.99792458e18
_CLASSICAL_CROSS_SECTION = 0.026540  # pi e^2 / (m_e c), cm^2 Hz
_OSCILLATOR_STRENGTH = 0.4164
_DAMPING_RATE = 6.265e8  # s^-1
# Redshifts over which the share of galaxies with a damped absorber rises from 0 to its maximum:
# at z < 5 Lyman-alpha falls blueward of the PRISM coverage (0.6 um) or nearly so.
_RISE_Z = (5.0, 8.0)


def dla_optical_depth(rest_wavelength_angstrom: torch.Tensor, log_column: torch.Tensor) -> torch.Tensor:
    """Optical depth of the damping wing of Lyman-alpha.

    Parameters
    ----------
    rest_wavelength_angstrom : `torch.Tensor`
        Rest-frame wavelengths, Angstrom (any shape that broadcasts with ``log_column``).
    log_column : `torch.Tensor`
        log10 of the neutral-hydrogen column density in cm^-2.

    Returns
    -------
    tau : `torch.Tensor`
        ``N_HI sigma(nu)``, in float64.

    Examples
    --------
    >>> import torch
    >>> tau = dla_optical_depth(torch.tensor([1215.67 + 20.0, 1215.67 + 100.0]), torch.tensor(22.0))
    >>> [round(float(t), 2) for t in tau]
    [1.05, 0.04]
    """
    wavelength = torch.as_tensor(rest_wavelength_angstrom, dtype=torch.float64)
    column = torch.pow(10.0, torch.as_tensor(log_column, dtype=torch.float64, device=wavelength.device))
    nu = _C_ANGSTROM_PER_S / wavelength
    nu_0 = _C_ANGSTROM_PER_S / LYMAN_ALPHA_ANGSTROM
    half_width = _DAMPING_RATE / (4.0 * math.pi)
    profile = (_DAMPING_RATE / (4.0 * math.pi**2)) / ((nu - nu_0) ** 2 + half_width**2)
    profile = profile * (nu / nu_0) ** 4 * (2.0 * nu_0 / (nu + nu_0)) ** 2  # classical far wing
    return column * (_CLASSICAL_CROSS_SECTION * _OSCILLATOR_STRENGTH) * profile


def dla_transmission(
    observed_wavelength_um: torch.Tensor, redshift: torch.Tensor, log_column: torch.Tensor
) -> torch.Tensor:
    """Transmission ``exp(-tau)`` of a damped absorber at each galaxy's redshift.

    Parameters
    ----------
    observed_wavelength_um : `torch.Tensor`
        (L,) observed wavelengths, um.
    redshift : `torch.Tensor`
        (B,) redshifts of the galaxies (and their absorbers).
    log_column : `torch.Tensor`
        (B,) log10 N_HI in cm^-2; below 17 (0 or NaN: optically thin in the wing) means no absorber.

    Returns
    -------
    transmission : `torch.Tensor`
        (B, L) in 0-1, the dtype of ``observed_wavelength_um``.

    Examples
    --------
    >>> import torch
    >>> wave = torch.tensor([1.0, 1.1, 1.2])
    >>> t = dla_transmission(wave, torch.tensor([7.0, 7.0]), torch.tensor([22.5, float("nan")]))
    >>> t.round(decimals=3)
    tensor([[0.3290, 0.9540, 0.9870],
            [1.0000, 1.0000, 1.0000]])
    """
    rest = observed_wavelength_um.double()[None, :] * 1e4 / (1.0 + redshift.double()[:, None])
    absorbed = torch.isfinite(log_column) & (log_column >= 17.0)
    safe = torch.where(absorbed, log_column, torch.zeros_like(log_column))
    tau = dla_optical_depth(rest, safe.double()[:, None])
    tau = torch.where(absorbed[:, None], tau, torch.zeros_like(tau))
    return torch.exp(-tau).to(observed_wavelength_um.dtype)


def sample_dla_columns(
    redshift: torch.Tensor,
    generator: torch.Generator,
    fraction: float = 0.5,
    log_column_range: tuple[float, float] = (20.3, 23.0),
) -> torch.Tensor:
    """Draw which galaxies have a damped absorber, and its column density.

    The share of galaxies with one rises linearly from 0 at z = 5 to ``fraction`` at z = 8 and
    stays there; the column is log-uniform in ``log_column_range`` (20.3, the classical DLA
    threshold, to 23).

    Parameters
    ----------
    redshift : `torch.Tensor`
        (B,) redshifts.
    generator : `torch.Generator`
        On the device of ``redshift``.
    fraction : float, optional
        Share of galaxies with an absorber at z >= 8 (0-1).
    log_column_range : tuple of float, optional
        Range of log10 N_HI / cm^-2.

    Returns
    -------
    log_column : `torch.Tensor`
        (B,) log10 N_HI, 0 where there is no absorber.

    Raises
    ------
    ValueError
        If ``fraction`` is not in [0, 1] or the range is not increasing.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> columns = sample_dla_columns(torch.tensor([2.0, 9.0, 9.0, 9.0]), g, fraction=1.0)
    >>> float(columns[0]), bool((columns[1:] >= 20.3).all())
    (0.0, True)
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    low, high = log_column_range
    if not low < high:
        raise ValueError(f"log_column_range must be increasing, got {log_column_range}")
    device = redshift.device
    share = fraction * ((redshift - _RISE_Z[0]) / (_RISE_Z[1] - _RISE_Z[0])).clamp(0.0, 1.0)
    has = torch.rand(redshift.shape, generator=generator, device=device) < share
    column = low + (high - low) * torch.rand(redshift.shape, generator=generator, device=device)
    return torch.where(has, column, torch.zeros_like(column))
