"""chi2 of template sums on the normal equations, at chosen redshifts of many spectra.

A template fit at trial redshift index ``z`` of a spectrum ``f`` with weights ``W`` (inverse
variance) needs the Gram matrix ``G = A^T W A`` and ``b = A^T W f`` of that redshift's
templates ``A`` (a slice of the fitter's cube, (n_z, T, L)). These functions build them the
cheap way for the two access patterns of `~jwst_embed.redshift.TemplateFitter`:

- *columns*: the same redshifts for all spectra (the full fit's coarse grid, the joint
  redshift's scan): pairwise template products of a few redshifts at a time make one matrix
  product with all the inverse variances, about half the work of building them one by one;
- *pairs*: (spectrum, redshift) pairs of their own (refinements around each spectrum's
  minima): the templates are gathered ~4 MB at a time (they stay in the CPU's cache), scaled
  in place by ``W^1/2`` and used for ``G`` and ``b`` alike.

and solve them for the best non-negative template sum (`~jwst_embed.redshift.nnls`), or,
for a lower bound of that chi2, with coefficients of either sign.
"""

from __future__ import annotations

import torch

from .nnls import factor_normal_equations, nnls_normal_equations

__all__ = ["column_chi2", "column_grams", "pair_chi2", "unconstrained_column_chi2"]


def column_grams(cube: torch.Tensor, zi: torch.Tensor, ivar: torch.Tensor) -> torch.Tensor:
    """(n, len(zi), T, T) Gram matrices ``A^T W A`` of n spectra at redshift indices ``zi``.

    Parameters
    ----------
    cube : `torch.Tensor`
        (n_z, T, L) templates on the model grid at every trial redshift.
    zi : `torch.Tensor`
        Redshift indices.
    ivar : `torch.Tensor`
        (n, L) weights (0 for unusable pixels).

    Returns
    -------
    gram : `torch.Tensor`
    """
    n_t = cube.shape[1]
    i, j = torch.triu_indices(n_t, n_t)
    uppers = []
    for start in range(0, zi.numel(), 16):
        templates = cube[zi[start : start + 16]]
        products = templates[:, i, :] * templates[:, j, :]  # (z, pairs, L): not kept
        uppers.append(products.reshape(-1, products.shape[-1]) @ ivar.T)  # (z * pairs, n)
    upper = torch.cat(uppers).reshape(zi.numel(), i.numel(), -1).permute(2, 0, 1)
    gram = upper.new_empty(*upper.shape[:-1], n_t, n_t)
    gram[..., i, j] = upper
    gram[..., j, i] = upper
    return gram


def _non_negative_chi2(gram, rhs, total, allowed) -> torch.Tensor:
    """chi2 of the best non-negative template sum for each (G, b, f^T W f, allowed)."""
    coeff = nnls_normal_equations(gram, rhs, allowed)
    model_term = ((gram @ coeff[:, :, None])[:, :, 0] * coeff).sum(-1)  # c^T G c
    return (total - 2.0 * (coeff * rhs).sum(-1) + model_term).clamp(min=0.0)


def pair_chi2(cube, allowed, flux, ivar, obj, zi) -> torch.Tensor:
    """chi2 of the best non-negative template sum at (spectrum, redshift index) pairs.

    Parameters
    ----------
    cube, allowed : `torch.Tensor`
        (n_z, T, L) templates and (n_z, T) which may be used at each redshift.
    flux, ivar : `torch.Tensor`
        (N, L) float64 spectra and weights (0 for unusable pixels).
    obj, zi : `torch.Tensor`
        (P,) spectrum and redshift index of each pair.

    Returns
    -------
    chi2 : `torch.Tensor`
        (P,) float64.
    """
    n_t = cube.shape[1]
    # only the spectra asked about (the joint redshift asks about a few of many)
    rows, pair_row = torch.unique(obj, return_inverse=True)
    root_ivar = ivar[rows].clamp(min=0.0).sqrt()
    root_weighted = root_ivar * flux[rows]
    total = (root_weighted * root_weighted).sum(dim=1)
    out = torch.empty(obj.numel(), dtype=torch.float64)
    # built ~4 MB of templates at a time (gathering hundreds at once was memory bound, ~3x
    # slower), solved in batches of up to 8192: the batched NNLS costs mostly per-iteration
    # overhead until its slowest problem converges, so big batches are cheaper per pair
    build = max(1, (4 << 20) // (n_t * cube.shape[2] * cube.element_size()))
    for solve_start in range(0, obj.numel(), 8192):
        o_all, z_all = pair_row[solve_start : solve_start + 8192], zi[solve_start : solve_start + 8192]
        gram = torch.empty(o_all.numel(), n_t, n_t, dtype=torch.float64)
        rhs = torch.empty(o_all.numel(), n_t, dtype=torch.float64)
        for start in range(0, o_all.numel(), build):
            o, z = o_all[start : start + build], z_all[start : start + build]
            scaled = cube[z].mul_(root_ivar[o][:, None, :])  # (P, T, L) A W^1/2, a copy
            torch.bmm(scaled, scaled.transpose(1, 2), out=gram[start : start + build])
            rhs[start : start + build] = torch.bmm(scaled, root_weighted[o][:, :, None])[:, :, 0]
        out[solve_start : solve_start + o_all.numel()] = _non_negative_chi2(gram, rhs, total[o_all], allowed[z_all])
    return out


def _column_systems(cube, flux, ivar, zi, n_rows: int):
    """(rows, G, b, f^T W f) for the spectra in chunks of ~64 MB of Gram matrices."""
    weighted = ivar * flux
    total = (weighted * flux).sum(dim=1)
    for start in range(0, flux.shape[0], n_rows):
        rows = slice(start, min(start + n_rows, flux.shape[0]))
        gram = column_grams(cube, zi, ivar[rows])  # (n, z, T, T)
        rhs = torch.einsum("ztl,nl->nzt", cube[zi], weighted[rows])
        yield rows, gram, rhs, total[rows]


def column_chi2(cube, allowed, flux, ivar, zi) -> torch.Tensor:
    """(N, len(zi)) chi2 of the best non-negative template sum of every spectrum at ``zi``.

    Parameters
    ----------
    cube, allowed, flux, ivar
        As for `pair_chi2`.
    zi : `torch.Tensor`
        Redshift indices shared by all spectra.

    Returns
    -------
    chi2 : `torch.Tensor`
    """
    n_t = cube.shape[1]
    out = torch.empty(flux.shape[0], zi.numel(), dtype=torch.float64)
    n_rows = max(1, (64 << 20) // (zi.numel() * n_t * n_t * 8))
    for rows, gram, rhs, total in _column_systems(cube, flux, ivar, zi, n_rows):
        n = gram.shape[0]
        chi2 = _non_negative_chi2(gram.reshape(-1, n_t, n_t), rhs.reshape(-1, n_t),
                                  total.repeat_interleave(zi.numel()), allowed[zi].repeat(n, 1))  # fmt: skip
        out[rows] = chi2.reshape(n, zi.numel())
    return out


def unconstrained_column_chi2(cube, allowed, flux, ivar, zi) -> torch.Tensor:
    """(N, len(zi)) chi2 of the best template sum with coefficients of either sign at ``zi``.

    A lower bound of `column_chi2`, to 1e-8 of ``f^T W f`` (the margin taken off for the
    factorisation's relative ridge); 0 (no bound) where a factorisation failed.

    Parameters
    ----------
    cube, allowed, flux, ivar, zi
        As for `column_chi2`.

    Returns
    -------
    chi2 : `torch.Tensor`
    """
    n_t = cube.shape[1]
    out = torch.empty(flux.shape[0], zi.numel(), dtype=torch.float64)
    n_rows = max(1, (64 << 20) // (zi.numel() * n_t * n_t * 8))
    for rows, gram, rhs, total in _column_systems(cube, flux, ivar, zi, n_rows):
        _, d, failed = factor_normal_equations(gram, rhs, allowed[zi][None].expand(gram.shape[0], -1, -1))
        # min over c of ||W^1/2 (f - A c)||^2 = f^T W f - d^T d
        bound = (total[:, None] * (1.0 - 1e-8) - (d * d).sum(dim=-1)).clamp(min=0.0)
        out[rows] = torch.where(failed, torch.zeros_like(bound), bound)
    return out
