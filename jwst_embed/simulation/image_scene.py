"""What else is in a NIRCam cutout: neighbouring sources and detector artefacts.

A real cutout around a target is not one galaxy on clean sky. Deep NIRCam fields hold a
source every few arcseconds, so a 2.56" stamp often catches part of a neighbour (a galaxy,
or a star with its diffraction spikes); mosaics have edges and holes where no exposure
reached; and the pipeline leaves residuals: cosmic rays and "snowballs" that were flagged
(masked), and hot pixels or cosmic-ray residuals that were not.

`add_neighbours` places other objects of the same batch (each a complete mock galaxy with its
own redshift, colours and PSF-convolved profile, so stars come with spikes) at random offsets
in the stamp; `add_artefacts` masks mosaic edges and snowballs and adds unflagged hot pixels.
Everything is batched torch without host synchronisation (the same code on a GPU); draws come
from the caller's generator. The labels stay those of the central object.
"""

from __future__ import annotations

import math

import torch

__all__ = ["add_artefacts", "add_neighbours"]

# Candidate hot pixels per stamp and band (more when the mean asks for it).
_MAX_HOT = 4


def _uniform(shape, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator, device=generator.device)


def _shift(images: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) images moved by integer (dy, dx) pixels each, zeros where nothing moved in."""
    n, c, h, w = images.shape
    yy = torch.arange(h, device=images.device)[None, :, None] - dy[:, None, None]
    xx = torch.arange(w, device=images.device)[None, None, :] - dx[:, None, None]
    inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    index = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).reshape(n, 1, h * w).expand(n, c, h * w)
    moved = images.reshape(n, c, h * w).gather(2, index).reshape(n, c, h, w)
    return moved * inside[:, None].to(images.dtype)


def add_neighbours(
    noiseless: torch.Tensor,
    generator: torch.Generator,
    fraction: float = 0.3,
    max_neighbours: int = 2,
    separation_pixels: tuple[float, float] = (12.0, 40.0),
    flux_scale: tuple[float, float] = (0.05, 1.0),
) -> torch.Tensor:
    """The light of neighbouring sources in each stamp (to be added to the images).

    Parameters
    ----------
    noiseless : `torch.Tensor`
        (B, n_bands, H, W) noiseless images of a batch; each neighbour is another object of the
        batch, moved off centre.
    generator : `torch.Generator`
        Random source, on the device of ``noiseless``.
    fraction : float, optional
        Probability that a stamp has a first neighbour; each further one comes with
        probability ``fraction`` again, up to ``max_neighbours``.
    max_neighbours : int, optional
        Most neighbours per stamp.
    separation_pixels : tuple of float, optional
        Range of the neighbour's distance from the stamp centre, pixels (12-40: 0.5-1.6" on the
        0.04" grid, so that it is beside, not on top of, the target).
    flux_scale : tuple of float, optional
        Log-uniform range of the factor on the neighbour's own flux.

    Returns
    -------
    neighbours : `torch.Tensor`
        (B, n_bands, H, W), zero where a stamp has none.

    Raises
    ------
    ValueError
        If ``fraction`` is not in [0, 1] or a range is not increasing and positive.

    Examples
    --------
    >>> import torch
    >>> images = torch.zeros(3, 1, 32, 32)
    >>> images[:, :, 15:17, 15:17] = torch.tensor([1.0, 2.0, 3.0])[:, None, None, None]
    >>> extra = add_neighbours(images, torch.Generator().manual_seed(1), fraction=1.0, max_neighbours=1,
    ...                        separation_pixels=(8.0, 12.0), flux_scale=(1.0, 1.0))
    >>> bool((extra[:, :, 14:18, 14:18] == 0).all()), int((extra.sum(dim=(1, 2, 3)) > 0).sum())
    (True, 3)
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    if not 0.0 < separation_pixels[0] <= separation_pixels[1] or not 0.0 < flux_scale[0] <= flux_scale[1]:
        raise ValueError(f"separation_pixels {separation_pixels} and flux_scale {flux_scale} must be positive, increasing")
    n = noiseless.shape[0]
    out = torch.zeros_like(noiseless)
    if n < 2 or fraction == 0.0 or max_neighbours < 1:
        return out
    device = noiseless.device
    present = torch.ones(n, dtype=torch.bool, device=device)
    for _ in range(int(max_neighbours)):
        present = present & (torch.rand(n, generator=generator, device=device) < fraction)
        # another object of the batch (never the stamp's own)
        donor = (torch.arange(n, device=device) + torch.randint(1, n, (n,), generator=generator, device=device)) % n
        radius = _uniform(n, *separation_pixels, generator)
        angle = _uniform(n, 0.0, 2.0 * math.pi, generator)
        dy = torch.round(radius * torch.sin(angle)).long()
        dx = torch.round(radius * torch.cos(angle)).long()
        scale = torch.exp(_uniform(n, math.log(flux_scale[0]), math.log(flux_scale[1]), generator))
        moved = _shift(noiseless[donor], dy, dx)
        out = out + moved * (scale * present.to(scale.dtype))[:, None, None, None]
    return out


def add_artefacts(
    images: torch.Tensor,
    ivar: torch.Tensor,
    mask: torch.Tensor,
    generator: torch.Generator,
    edge_fraction: float = 0.05,
    snowball_fraction: float = 0.03,
    hot_pixels_per_stamp: float = 0.5,
) -> dict[str, torch.Tensor]:
    """Mosaic edges, masked snowballs and unflagged hot pixels, per band.

    Parameters
    ----------
    images, ivar : `torch.Tensor`
        (B, n_bands, H, W) noisy images (nJy per pixel) and their inverse variance.
    mask : `torch.Tensor`
        (B, n_bands, H, W) bool, True = bad.
    generator : `torch.Generator`
        Random source, on the device of ``images``.
    edge_fraction : float, optional
        Probability per stamp and band that the mosaic ends inside the stamp: the pixels beyond
        a straight edge 8-30 pixels from the centre, at a random angle, have no data (masked,
        value 0, ivar 0).
    snowball_fraction : float, optional
        Probability per stamp and band of a masked disc of radius 2-5 pixels (a flagged
        snowball or cosmic-ray shower) at a random place.
    hot_pixels_per_stamp : float, optional
        Mean number per stamp and band of pixels raised by 5-50 sigma that the mask does not
        flag (hot pixels, cosmic-ray residuals).

    Returns
    -------
    out : dict of `torch.Tensor`
        ``"images"``, ``"images_ivar"``, ``"images_mask"`` with the artefacts.

    Examples
    --------
    >>> import torch
    >>> images, ivar = torch.zeros(64, 1, 32, 32), torch.ones(64, 1, 32, 32)
    >>> out = add_artefacts(images, ivar, torch.zeros_like(images, dtype=torch.bool),
    ...                     torch.Generator().manual_seed(0), edge_fraction=0.5)
    >>> bool(out["images_mask"].any()), bool((out["images_ivar"][out["images_mask"]] == 0).all())
    (True, True)
    """
    for name, value in (("edge_fraction", edge_fraction), ("snowball_fraction", snowball_fraction)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value}")
    if hot_pixels_per_stamp < 0:
        raise ValueError(f"hot_pixels_per_stamp must not be negative, got {hot_pixels_per_stamp}")
    n, n_bands, h, w = images.shape
    device = images.device
    shape = (n, n_bands)
    yy = torch.arange(h, device=device, dtype=images.dtype)[:, None] - (h - 1) / 2
    xx = torch.arange(w, device=device, dtype=images.dtype)[None, :] - (w - 1) / 2

    # mosaic edge: a half-plane beyond distance d along a random direction
    angle = _uniform(shape, 0.0, 2.0 * math.pi, generator)[..., None, None]
    distance = _uniform(shape, 8.0, 30.0, generator)[..., None, None]
    has_edge = (torch.rand(shape, generator=generator, device=device) < edge_fraction)[..., None, None]
    beyond = (xx * torch.cos(angle) + yy * torch.sin(angle)) > distance
    lost = has_edge & beyond

    # snowball: a disc somewhere in the stamp
    cy = _uniform(shape, -(h - 1) / 2, (h - 1) / 2, generator)[..., None, None]
    cx = _uniform(shape, -(w - 1) / 2, (w - 1) / 2, generator)[..., None, None]
    radius = _uniform(shape, 2.0, 5.0, generator)[..., None, None]
    has_snowball = (torch.rand(shape, generator=generator, device=device) < snowball_fraction)[..., None, None]
    lost = lost | (has_snowball & ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2))

    # unflagged hot pixels: raised by 5-50 sigma (log-uniform), the mask and ivar unaware. Up to
    # _MAX_HOT candidate pixels per stamp, each present with probability mean / _MAX_HOT (a
    # binomial close to a Poisson draw), added where they fall: small tensors, no full-size draws.
    if hot_pixels_per_stamp > 0:
        n_candidates = max(_MAX_HOT, math.ceil(2 * hot_pixels_per_stamp))
        where = torch.randint(0, h * w, (*shape, n_candidates), generator=generator, device=device)
        present = torch.rand((*shape, n_candidates), generator=generator, device=device) < (
            hot_pixels_per_stamp / n_candidates
        )
        height = torch.exp(_uniform((*shape, n_candidates), math.log(5.0), math.log(50.0), generator))
        flat_ivar = ivar.reshape(*shape, h * w).gather(2, where)
        usable = present & ~mask.reshape(*shape, h * w).gather(2, where) & (flat_ivar > 0)
        spike = torch.where(usable, height * flat_ivar.clamp(min=1e-30).rsqrt(), torch.zeros_like(height))
        images = images.reshape(*shape, h * w).scatter_add(2, where, spike.to(images.dtype)).reshape(images.shape)

    mask = mask | lost
    return {
        "images": images.masked_fill(lost, 0.0),
        "images_ivar": ivar.masked_fill(lost, 0.0),
        "images_mask": mask,
    }
