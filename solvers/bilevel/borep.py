"""BO-REP: bilevel optimization under unbounded smoothness (normalized momentum + lower-variable refresh).

Hao, Gong, Liu, "Bilevel Optimization under Unbounded Smoothness: A New Algorithm and Convergence Analysis",
ICLR 2024. Upper level (L0, L1)-smooth (e.g. RNN losses), lower level strongly convex in y, stochastic oracles.

    hypergradient estimate  d_k = grad_x f(x_k, y_k) - grad2_xy g(x_k, y_k) u_k
    u (adjoint) step        u_{k+1} = Proj_{||u|| <= R}(u_k - gamma (grad2_yy g(x_k, y_k) u_k - grad_y f(x_k, y_k)))
    normalized momentum     m_k = beta m_{k-1} + (1 - beta) d_k,   x_{k+1} = x_k - eta m_k / ||m_k||
    lower variable          initialization refinement: ``init_steps`` gradient steps on g(x_0, .) before the
                            loop; periodic updates: every ``period`` (I) iterations, ``inner_steps`` (N) steps
                            on g(x_k, .) warm-started from y; frozen in between.

The normalized step has fixed length eta, so with a constant ``lr_x`` the iterates settle within ~eta of a
stationary point: pass a decaying schedule ``lr_x = lambda k: ...`` for high accuracy. Defaults (recalled,
tunable): beta = 0.9, period I = 2, N = inner_steps, R = 1e3, gamma = lr_y.
"""
from __future__ import annotations

import torch

from ..common import Status
from ._core import (Curvature, NonFinite, Setup, as_schedule, axpy, check_finite, detach, leaf, norm, positive_int,
                    relative_scale, steps)


def borep(f, g, x0, y0, *, lr_x=None, lr_y=None, inner_steps: int = 2, period: int = 2, init_steps=None,
          momentum: float = 0.9, radius: float = 1e3, lr_u=None, proj_x=None, proj_y=None, batches=None,
          eval_batch=None, max_iter: int = 1000, tol: float = 1e-6, time_limit=None, callback=None, device=None,
          dtype=None, certify_gap: bool = True):
    """BO-REP (see module docstring). ``x = (x, y)``; certificates ``stationarity`` (||d_k|| of the last
    hypergradient estimate), ``momentum_norm``, ``lower_level_gap``."""
    S = Setup(f, g, x0, y0, proj_x=proj_x, proj_y=proj_y, batches=batches, eval_batch=eval_batch,
              max_iter=max_iter, tol=tol, time_limit=time_limit, callback=callback, device=device, dtype=dtype)
    curv = Curvature(S.counts)
    ay = steps(lr_y, "lr_y")
    if ay is None:
        ay = lambda k: curv.step(lambda yy: S.orc("g", x, yy, S.batches.next()), y)  # noqa: E731
    au = as_schedule(lr_u, "lr_u") if lr_u is not None else ay
    x0n = norm(S.x0)
    ax = steps(lr_x, "lr_x") or (lambda k, _e=0.1 * max(1.0, x0n): _e / (k + 1) ** 0.5)
    N, I = positive_int(inner_steps, "inner_steps"), positive_int(period, "period")
    N0 = positive_int(init_steps if init_steps is not None else 10 * N, "init_steps")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
    if not radius > 0:
        raise ValueError(f"radius must be > 0, got {radius!r}")
    x, y = S.x0, S.y0
    u = tuple(torch.zeros_like(p) for p in y)
    m = None
    o, status, msg, k, stat, ry = S.orc, None, "", 0, float("nan"), float("nan")
    fscale = gscale = None

    def refine(x, y, steps, beta):
        for _ in range(steps):
            _, _, gy = o.grad("g", x, y, "y", S.batches.next())
            y = S.py(axpy(-beta, gy, y))
        return y, norm(gy)
    try:
        y, ry = refine(x, y, N0, ay(0))          # initialization refinement
        for k in S.budget:
            if k > 0 and k % I == 0:              # periodic lower-level updates
                y, ry = refine(x, y, N, ay(k))
            b = S.batches.next()
            xl, yl = leaf(x), leaf(y)
            with torch.enable_grad():
                fv = o("f", xl, yl, b)
                gfx = torch.autograd.grad(fv, xl + yl, allow_unused=True) if fv.requires_grad \
                    else (None,) * (len(xl) + len(yl))
                gfx = tuple(torch.zeros_like(p) if q is None else q for q, p in zip(gfx, xl + yl))
                fx, fy = gfx[:len(xl)], gfx[len(xl):]
                gy = torch.autograd.grad(o("g", xl, yl, S.batches.next()), yl, create_graph=True)
                mixed = torch.autograd.grad(gy, xl + yl, grad_outputs=u, allow_unused=True)
            mixed = tuple(torch.zeros_like(p) if q is None else q.detach() for q, p in zip(mixed, xl + yl))
            o.counts["hvp"] = o.counts.get("hvp", 0) + 1
            jxu, hu = mixed[:len(xl)], mixed[len(xl):]
            d = axpy(-1.0, jxu, fx)
            check_finite(d, "hypergradient estimate")
            ru = norm(axpy(-1.0, fy, hu))                 # adjoint residual ||H u - grad_y f||
            u = axpy(-au(k), axpy(-1.0, fy, hu), u)   # SGD step on (1/2)u^T H u - u^T grad_y f
            un = norm(u)
            if un > radius:
                u = tuple(p * (radius / un) for p in u)
            m = d if m is None else tuple(momentum * a + (1 - momentum) * c for a, c in zip(m, d))
            mn = norm(m)
            stat = norm(d)
            if mn > 0:
                x = S.px(axpy(-ax(k) / mn, m, x))
            check_finite(x, "x")
            if S.budget.report(k, x=S.xs.pack(x), y=S.ys.pack(y), objective=fv.detach(), stationarity=stat,
                               momentum_norm=mn, residual_y=ry, residual_u=ru):
                break
            fscale = fscale or relative_scale(float(fv.detach()), stat)
            gscale = gscale or relative_scale(ry)
            if stat <= S.tol * fscale and ry <= S.tol * gscale and ru <= S.tol * relative_scale(norm(fy)):
                status, msg = Status.LOCALLY_OPTIMAL, f"stationary to tol={S.tol} at iteration {k}"
                break
    except NonFinite as e:
        status, msg = Status.NUMERICAL_ERROR, f"{e} at outer iteration {k}"
    except KeyboardInterrupt:
        S.budget.interrupt()
    return S.conclude(o, x, y, status, msg, k, {"stationarity": stat, "residual_y": ry},
                      {"u": S.ys.pack(detach(u)), "method": "borep"},
                      certify_gap=certify_gap)
