"""Batched non-negative least squares on the normal equations, for many small template fits at once.

The template fitter (`~jwst_embed.redshift.TemplateFitter`) solves one such problem per object and
trial redshift; they are small (tens of templates) and numerous (thousands), so they are solved
together as a batch in float64 torch rather than one by one. A batched iteration costs a fixed
fraction of a millisecond whatever the batch holds, so small batches (the joint redshift's
refinements around a few objects' peaks) are solved one by one with SciPy's active-set NNLS on
the Cholesky factor instead, which is then several times cheaper.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["factor_normal_equations", "nnls_normal_equations"]

#: Batches of at most this many unknowns in all (problems x variables) are solved one by one.
ONE_BY_ONE_MAX = 16384


def nnls_normal_equations(
    gram: torch.Tensor,
    rhs: torch.Tensor,
    allowed: torch.Tensor | None = None,
    max_iter: int | None = None,
    one_by_one: bool | None = None,
) -> torch.Tensor:
    """Batched non-negative least squares on the normal equations (Lawson-Hanson active set).

    Minimises ``0.5 c^T G c - b^T c`` subject to ``c >= 0`` for a batch of small problems,
    which is ``||W^(1/2) (f - A c)||^2`` with ``G = A^T W A`` and ``b = A^T W f``.

    Parameters
    ----------
    gram : `torch.Tensor`
        (B, K, K) symmetric positive semi-definite matrices ``G``.
    rhs : `torch.Tensor`
        (B, K) vectors ``b``.
    allowed : `torch.Tensor`, optional
        (B, K) bool; variables that are False are held at 0.
    max_iter : int, optional
        Cap on the outer (add-a-variable) iterations; default ``3 K``.
    one_by_one : bool, optional
        Solve each problem with `scipy.optimize.nnls` on the Cholesky factor of ``G`` instead of
        all together; default: for CPU batches of at most ``ONE_BY_ONE_MAX`` (16,384) unknowns in all (and
        no ``max_iter``). Both give the same minimiser.

    Returns
    -------
    coefficients : `torch.Tensor`
        (B, K), non-negative, dtype of ``gram``.

    Examples
    --------
    >>> import torch
    >>> from scipy.optimize import nnls
    >>> a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    >>> f = torch.tensor([2.0, -1.0, 1.0], dtype=torch.float64)
    >>> c = nnls_normal_equations((a.T @ a)[None], (a.T @ f)[None])
    >>> c.numpy().round(6), nnls(a.numpy(), f.numpy())[0].round(6)
    (array([[1.5, 0. ]]), array([1.5, 0. ]))
    """
    if gram.ndim != 3 or gram.shape[1] != gram.shape[2] or rhs.shape != gram.shape[:2]:
        raise ValueError(
            f"gram must be (B, K, K) and rhs (B, K); got {tuple(gram.shape)} and {tuple(rhs.shape)}"
        )
    n_batch, n_var = rhs.shape
    if allowed is None:
        allowed = torch.ones(n_batch, n_var, dtype=torch.bool, device=rhs.device)
    if one_by_one is None:
        one_by_one = max_iter is None and gram.device.type == "cpu" and n_batch * n_var <= ONE_BY_ONE_MAX
    if one_by_one and n_batch:
        return _one_by_one(gram, rhs, allowed)
    max_iter = 3 * n_var if max_iter is None else int(max_iter)
    eye = torch.eye(n_var, dtype=gram.dtype, device=gram.device)
    scale = gram.diagonal(dim1=1, dim2=2).amax(dim=1).clamp(min=torch.finfo(gram.dtype).tiny)
    # a relative ridge keeps near-collinear templates solvable; its effect on chi2 is ~1e-10
    ridge = torch.diag_embed(1e-10 * gram.diagonal(dim1=1, dim2=2).clamp(min=0) + 1e-300)
    tol = 1e-12 * scale
    x = torch.zeros_like(rhs)
    passive = torch.zeros_like(allowed)
    ridge = ridge if ridge.shape[0] == n_batch else ridge.expand(n_batch, -1, -1)

    def restricted_solve(g, b, p):
        # The passive sets are small (a few of tens of templates), so each problem's passive
        # variables are moved to the front and only the leading k x k block is factorised, k the
        # largest passive set of the batch: a batched Cholesky costs ~k^3, so this is several
        # times cheaper than factorising the full, identity-padded matrix.
        k = max(int(p.sum(dim=1).max()), 1)
        order = torch.argsort((~p).to(torch.int8), dim=1, stable=True)[:, :k]  # passive first
        valid = p.gather(1, order)
        g_c = g.gather(1, order[:, :, None].expand(-1, -1, n_var)).gather(2, order[:, None, :].expand(-1, k, -1))
        g_c = torch.where(valid[:, :, None] & valid[:, None, :], g_c, eye[:k, :k][None])
        b_c = torch.where(valid, b.gather(1, order), torch.zeros_like(valid, dtype=b.dtype))
        # Cholesky of the (positive definite, ridged) restricted Gram matrix; a (rare) failed
        # factorisation falls back to LU, and a singular one gives a flagged zero row.
        factor, info = torch.linalg.cholesky_ex(g_c)
        solution = torch.cholesky_solve(b_c[:, :, None], factor)[:, :, 0]
        failed = info != 0
        if bool(failed.any()):
            solution[failed] = torch.linalg.solve_ex(g_c[failed], b_c[failed])[0]
        solution = torch.where(valid, torch.nan_to_num(solution), torch.zeros_like(solution))
        return torch.zeros_like(b).scatter_(1, order, solution)

    # Problems that satisfy the optimality conditions leave the working set for good, so late
    # iterations (a few objects with many active templates) cost little.
    live = torch.arange(n_batch, device=rhs.device)
    g_live, b_live, allowed_live = gram + ridge, rhs, allowed
    x_live, passive_live, tol_live = x, passive, tol
    for _ in range(max_iter):
        gradient = b_live - (g_live @ x_live[:, :, None])[:, :, 0]  # minus the objective's gradient
        candidates = ~passive_live & allowed_live & (gradient > tol_live[:, None])
        has = candidates.any(dim=1)
        if not bool(has.all()):
            x[live[~has]] = x_live[~has]
            live, g_live, b_live, allowed_live = live[has], g_live[has], b_live[has], allowed_live[has]
            x_live, passive_live, tol_live = x_live[has], passive_live[has], tol_live[has]
            candidates, gradient = candidates[has], gradient[has]
        if live.numel() == 0:
            break
        p, xi = passive_live.clone(), x_live.clone()
        best = torch.where(candidates, gradient, -torch.inf).argmax(dim=1)
        p[torch.arange(live.numel(), device=p.device), best] = True
        # inner loop: only the problems whose solution left the feasible set are solved again
        active = torch.arange(live.numel(), device=p.device)
        s = restricted_solve(g_live, b_live, p)
        for _ in range(n_var + 1):
            infeasible = p[active] & (s <= 0)
            need = infeasible.any(dim=1)
            xi[active[~need]] = s[~need]
            if not bool(need.any()):
                active = active[:0]
                break
            active, s, infeasible = active[need], s[need], infeasible[need]
            x_a, p_a = xi[active], p[active]
            # step from x_a towards s until the first passive variable hits zero
            step = x_a - s
            ratio = torch.where(infeasible & (step > 0), x_a / step.clamp(min=1e-300), torch.inf)
            alpha = ratio.amin(dim=1).clamp(0.0, 1.0)
            alpha = torch.where(torch.isfinite(alpha), alpha, torch.zeros_like(alpha))
            x_a = x_a + alpha[:, None] * (s - x_a)
            p_a = p_a & ~(x_a <= 1e-12 * x_a.abs().amax(dim=1, keepdim=True))
            xi[active] = torch.where(p_a, x_a, torch.zeros_like(x_a))
            p[active] = p_a
            s = restricted_solve(g_live[active], b_live[active], p_a)
        if active.numel():
            xi[active] = torch.where(p[active], s.clamp(min=0), torch.zeros_like(s))
        x_live = xi.clamp(min=0)
        passive_live = p & (x_live > 0)
    x[live] = x_live
    return x


def _one_by_one(gram: torch.Tensor, rhs: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """`nnls_normal_equations` problem by problem: ``min ||L^T c - d||`` with ``G = L L^T``, ``L d = b``.

    ``||L^T c - d||^2 = c^T G c - 2 b^T c + d^T d``: the same objective up to a constant, in the
    form `scipy.optimize.nnls` takes. Variables that are not allowed get an identity row and no
    right-hand side, so their optimum is 0; the same relative ridge as the batched solver keeps
    near-collinear templates factorisable. A problem whose factorisation or SciPy solve fails
    is handed to the batched solver.
    """
    from scipy.optimize import nnls

    n_batch, n_var = rhs.shape
    factor, d, failed = factor_normal_equations(gram, rhs, allowed)
    upper, d = factor.transpose(1, 2).cpu().numpy(), d.cpu().numpy()
    failed = failed.cpu().numpy()
    out = np.zeros((n_batch, n_var))
    for i in np.flatnonzero(~failed):
        try:
            out[i] = nnls(upper[i], d[i])[0]
        except RuntimeError:  # too many iterations
            failed[i] = True
    result = torch.as_tensor(out, dtype=rhs.dtype, device=rhs.device)
    if failed.any():
        rows = torch.as_tensor(np.flatnonzero(failed), device=rhs.device)
        result[rows] = nnls_normal_equations(gram[rows], rhs[rows], allowed[rows], one_by_one=False)
    return torch.where(allowed, result.clamp(min=0), torch.zeros_like(result))


def factor_normal_equations(
    gram: torch.Tensor, rhs: torch.Tensor, allowed: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cholesky factor ``L`` of ``G`` and ``d`` with ``L d = b``, for batches of template fits.

    Variables that are not allowed get an identity row and no right-hand side (their optimum
    is 0), and a relative ridge of 1e-10 on the diagonal keeps near-collinear templates
    factorisable. Then ``||L^T c - d||^2 = c^T G c - 2 b^T c + d^T d``, and the unconstrained
    minimum of ``||W^1/2 (f - A c)||^2`` is ``f^T W f - d^T d``.

    Parameters
    ----------
    gram : `torch.Tensor`
        (..., K, K) Gram matrices ``A^T W A``.
    rhs : `torch.Tensor`
        (..., K) right-hand sides ``A^T W f``.
    allowed : `torch.Tensor`
        (..., K) bool.

    Returns
    -------
    factor, d, failed : `torch.Tensor`
        (..., K, K) lower-triangular factors, (..., K) ``d``, and (...) bool: the factorisation
        failed or ``d`` is not finite.

    Examples
    --------
    >>> import torch
    >>> gram = torch.tensor([[[4.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    >>> factor, d, failed = factor_normal_equations(gram, torch.tensor([[2.0, 3.0]], dtype=torch.float64),
    ...                                             torch.tensor([[True, False]]))
    >>> d.numpy().round(6).tolist(), failed.tolist()
    ([[1.0, 0.0]], [False])
    """
    n_var = rhs.shape[-1]
    eye = torch.eye(n_var, dtype=gram.dtype, device=gram.device)
    g = torch.where(allowed[..., :, None] & allowed[..., None, :], gram, eye)
    g = g + torch.diag_embed(1e-10 * g.diagonal(dim1=-2, dim2=-1).clamp(min=0) + 1e-300)
    b = torch.where(allowed, rhs, torch.zeros_like(rhs))
    factor, info = torch.linalg.cholesky_ex(g)
    d = torch.linalg.solve_triangular(factor, b[..., None], upper=False)[..., 0]
    return factor, d, (info != 0) | ~torch.isfinite(d).all(dim=-1)

