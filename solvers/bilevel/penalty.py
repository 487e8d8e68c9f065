"""First-order value-function penalty method for nonconvex bilevel problems.

Kwon, Kwon, Wright, Nowak, "On Penalty Methods for Nonconvex Bilevel Optimization and First-Order Stochastic
Approximation", ICLR 2024.

Bilevel problem: min_x f(x, y*(x)), y*(x) in argmin_y g(x, y). With v(x) = min_z g(x, z) and sigma > 0 small,

    h_sigma(x, y) = f(x, y) + (g(x, y) - v(x)) / sigma,       psi_sigma(x) = min_y h_sigma(x, y),

psi_sigma and its gradient are O(sigma)-close to the bilevel ones, and by Danskin

    grad psi_sigma(x) = grad_x f(x, y_s) + (grad_x g(x, y_s) - grad_x g(x, z*)) / sigma,
    y_s in argmin_y sigma f + g,   z* in argmin_z g.

No second derivatives. Algorithm (double loop; ``inner_steps = 1`` is the single-loop variant), warm starts:

    y <- T steps  y - beta (sigma grad_y f + grad_y g)(x, y)      (projected onto Y)
    z <- T steps  z - beta grad_y g(x, z)
    x <- Proj_X(x - alpha [grad_x f(x, y) + (grad_x g(x, y) - grad_x g(x, z)) / sigma])

Stochastic oracles: every gradient is taken on a fresh mini-batch. ``sigma`` may be a schedule ``k -> sigma_k``
(`sigma_schedule`: sigma_k = max(sigma_min, sigma_0 / (k+1)^p), the F2SA-style increasing multiplier).
Convention: sigma multiplies f (small sigma = strong penalty); REFERENCES.md's "sigma" is our 1/sigma.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..common import Status
from ._core import (AdaptiveStep, Curvature, NonFinite, Setup, as_schedule, axpy, check_finite, leaf, norm,
                    positive_int, relative_scale, steps)


def sigma_schedule(sigma0: float = 1.0, sigma_min: float = 1e-3, power: float = 0.5) -> Callable[[int], float]:
    """sigma_k = max(sigma_min, sigma0 / (k + 1)**power): start weakly penalized, tighten over time."""
    if not (sigma0 > 0 and sigma_min > 0 and power >= 0):
        raise ValueError(f"sigma_schedule needs sigma0 > 0, sigma_min > 0, power >= 0; got "
                         f"{sigma0}, {sigma_min}, {power}")
    return lambda k: max(sigma_min, sigma0 / (k + 1) ** power)


def penalty(f, g, x0, y0, *, sigma=None, lr_x=None, lr_y=None, inner_steps: int = 5, z_steps=None,
            proj_x=None, proj_y=None, batches=None, eval_batch=None, max_iter: int = 1000, tol: float = 1e-6,
            time_limit=None, callback=None, device=None, dtype=None, certify_gap: bool = True,
            z0=None):
    """Value-function penalty method (Kwon et al. 2024); see the module docstring.

    Returns a SolverOutput with ``x = (x, y)`` in the user's structures, ``extras["z"]`` the lower-level
    minimizer copy, certificates ``stationarity`` (gradient mapping of psi_sigma), ``lower_level_gap``,
    ``sigma``. Status LOCALLY_OPTIMAL when the gradient mapping (relative to |f| at the first iterate) and
    both inner residuals (relative to the first follower gradient) are <= tol.

    Scale-free defaults: ``lr_y`` = 1/L of sigma f + g in y (`Curvature`, each outer step), ``lr_x``
    adaptive (`AdaptiveStep`), and sigma driven to zero by the tolerance: sigma_k = sigma_0 max(tol, 0.9^k)
    with sigma_0 = |grad_y g| / |grad_y f| at the start (f scaled by c gives sigma / c: the same penalty
    problem), so the O(sigma) bias ends at O(tol). Numbers or schedules k -> value override them.
    """
    S = Setup(f, g, x0, y0, proj_x=proj_x, proj_y=proj_y, batches=batches, eval_batch=eval_batch,
              max_iter=max_iter, tol=tol, time_limit=time_limit, callback=callback, device=device, dtype=dtype)
    ax, ay = steps(lr_x, "lr_x"), steps(lr_y, "lr_y")
    if sigma is None:
        with torch.no_grad():
            b0 = S.batches.next()
        _, _, fy0 = S.orc.grad("f", S.x0, S.y0, "y", b0)
        _, _, gy0 = S.orc.grad("g", S.x0, S.y0, "y", b0)
        sigma0 = relative_scale(norm(gy0)) / relative_scale(norm(fy0))
        sig = lambda k, _s=sigma0, _t=max(float(tol), 1e-12): _s * max(_t, 0.9 ** k)  # noqa: E731
    else:
        sig = as_schedule(sigma, "sigma")
    curv, astep = Curvature(S.counts), AdaptiveStep()
    T = positive_int(inner_steps, "inner_steps")
    Tz = positive_int(z_steps if z_steps is not None else inner_steps, "z_steps")
    x, y = S.x0, S.y0
    z = S.py(S.ys.unpack(z0) if z0 is not None else y)
    o, status, msg, k, stat, ry, rz, s = S.orc, None, "", 0, float("nan"), float("nan"), float("nan"), sig(0)
    fscale = gscale = rel = None
    try:
        for k in S.budget:
            s = sig(k)
            if ay is not None:
                beta = ay(k)
            else:
                bk = S.batches.next()
                beta = curv.step(lambda yy, _s=s: _s * o("f", x, yy, bk) + o("g", x, yy, bk), y)
            # y tracks argmin_y sigma f + g (= argmin h_sigma), z tracks argmin_z g. Both copies see the
            # same mini-batch per step (common random numbers): their noise then largely cancels in
            # grad_x g(x, y) - grad_x g(x, z), which the x-step divides by sigma.
            for t in range(max(T, Tz)):
                b = S.batches.next()
                if t < min(T, Tz):   # both copies in one backward pass: same cost, half the overhead
                    gy, gz = _fused_inner(o, x, y, z, s, b)
                    gscale = gscale or relative_scale(norm(gz))
                    y, z = S.py(axpy(-beta, gy, y)), S.py(axpy(-beta, gz, z))
                    continue
                if t < T:
                    _, _, gy = o.grad("fg", x, y, "y", b, scale=(s, 1.0))
                    y = S.py(axpy(-beta, gy, y))
                if t < Tz:
                    _, _, gz = o.grad("g", x, z, "y", b)
                    z = S.py(axpy(-beta, gz, z))
            ry, rz = norm(gy), norm(gz)
            b = S.batches.next()
            xl = leaf(x)
            with torch.enable_grad():   # d = grad_x [f(x, y) + (g(x, y) - g(x, z)) / sigma], one backward
                fv = o("f", xl, y, b)
                val = fv + (o("g", xl, y, b) - o("g", xl, z, b)) / s
                d = torch.autograd.grad(val, xl, allow_unused=True) if val.requires_grad else (None,) * len(xl)
            d = tuple(torch.zeros_like(q) if a is None else a for a, q in zip(d, xl))
            fv = fv.detach()
            o.counts["grad_f"] = o.counts.get("grad_f", 0) + 1
            o.counts["grad_g"] = o.counts.get("grad_g", 0) + 2
            check_finite(d, "penalty hypergradient d_x")
            alpha = ax(k) if ax is not None else astep(x, d)
            xn = S.px(axpy(-alpha, d, x))
            stat = norm(axpy(-1.0, xn, x)) / alpha   # projected-gradient mapping of psi_sigma
            fscale = fscale or relative_scale(float(fv), stat)
            gscale = gscale or relative_scale(ry)
            rel = stat / fscale
            x = xn
            if S.budget.report(k, x=S.xs.pack(x), y=S.ys.pack(y), z=S.ys.pack(z), objective=fv, stationarity=stat,
                               relative_stationarity=rel, sigma=s, residual_y=ry, residual_z=rz):
                break
            # y-error enters the x-step divided by sigma, hence the sigma-scaled test on residual_y
            if rel <= S.tol and ry <= S.tol * s * gscale and rz <= S.tol * gscale and sig(k + 1) == s:
                status, msg = Status.LOCALLY_OPTIMAL, f"stationary to tol={S.tol} at iteration {k}"
                break
    except NonFinite as e:
        status, msg = Status.NUMERICAL_ERROR, f"{e} at outer iteration {k}"
    except KeyboardInterrupt:
        S.budget.interrupt()
    return S.conclude(o, x, y, status, msg, k, {"stationarity": stat, "relative_stationarity": rel, "sigma": s,
                                                "residual_y": ry, "residual_z": rz},
                      {"z": S.ys.pack(z), "method": "penalty"},
                      certify_gap=certify_gap)


def _fused_inner(o, x, y, z, s, b):
    """grad_y (s f + g)(x, y) and grad_z g(x, z) from one autograd call."""
    yl, zl = leaf(y), leaf(z)
    xd = tuple(p.detach() for p in x)
    with torch.enable_grad():
        val = s * o("f", xd, yl, b) + o("g", xd, yl, b) + o("g", xd, zl, b)
        gr = torch.autograd.grad(val, yl + zl, allow_unused=True)
    gr = tuple(torch.zeros_like(q) if a is None else a for a, q in zip(gr, yl + zl))
    o.counts["grad_f"] = o.counts.get("grad_f", 0) + 1
    o.counts["grad_g"] = o.counts.get("grad_g", 0) + 2
    check_finite(gr, "gradient of s*f + g in the inner steps")
    return gr[:len(yl)], gr[len(yl):]
