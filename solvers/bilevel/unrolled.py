"""Unrolled (iterative) differentiation through K inner gradient steps — the reverse-mode baseline.

Maclaurin, Duvenaud, Adams 2015; Franceschi et al., "Forward and Reverse Gradient-Based Hyperparameter
Optimization", ICML 2017. The response is approximated by K steps from a warm start y_0 (detached):

    y_{t+1} = Proj_Y(y_t - beta grad_y g(x, y_t)),   F_K(x) = f(x, y_K(x)),

and grad F_K(x) is obtained by backpropagating through all K steps (second derivatives via autograd with
``create_graph``). Memory grows linearly in K (every y_t and its graph is kept) — the cost the penalty
methods avoid; the bias decays like (1 - beta mu_g)^K.
"""
from __future__ import annotations

import torch

from ..common import Status
from ._core import (AdaptiveStep, Curvature, NonFinite, Setup, axpy, check_finite, leaf, norm, positive_int,
                    relative_scale, steps)


def unrolled(f, g, x0, y0, *, lr_x=None, lr_y=None, inner_steps: int = 20, proj_x=None, proj_y=None,
             batches=None, eval_batch=None, max_iter: int = 1000, tol: float = 1e-6, time_limit=None,
             callback=None, device=None, dtype=None, certify_gap: bool = True):
    """Hypergradient descent through ``inner_steps`` unrolled lower-level steps (warm-started).

    ``x = (x, y)`` in the user's structures; certificates ``stationarity`` (gradient mapping of F_K) and
    ``lower_level_gap``. Note ``proj_y`` must be differentiable (autograd runs through it) when given.
    Default steps are scale-free (``lr_y`` = 1/L_g by power iteration, ``lr_x`` adaptive); the test is
    ``relative_stationarity`` (divided by |f| at the first iterate) <= tol.
    """
    S = Setup(f, g, x0, y0, proj_x=proj_x, proj_y=None, batches=batches, eval_batch=eval_batch,
              max_iter=max_iter, tol=tol, time_limit=time_limit, callback=callback, device=device, dtype=dtype)
    ax, ay = steps(lr_x, "lr_x"), steps(lr_y, "lr_y")
    curv, astep = Curvature(S.counts), AdaptiveStep()
    fscale = gscale = rel = None
    K = positive_int(inner_steps, "inner_steps")
    diff_proj = (lambda p: S.ys.unpack(proj_y(S.ys.pack(p)), "proj_y")) if proj_y is not None else (lambda p: p)
    x, y = S.x0, tuple(p.detach() for p in diff_proj(S.y0))
    o, status, msg, k, stat, ry = S.orc, None, "", 0, float("nan"), float("nan")
    try:
        for k in S.budget:
            if ay is not None:
                beta = ay(k)
            else:
                bk = S.batches.next()
                beta = curv.step(lambda yy: o("g", x, yy, bk), y)
            xl = leaf(x)
            with torch.enable_grad():
                yt = tuple(p.detach().requires_grad_(True) for p in y)
                for _ in range(K):
                    gy = torch.autograd.grad(o("g", xl, yt, S.batches.next()), yt, create_graph=True,
                                             allow_unused=True)
                    gy = tuple(torch.zeros_like(p) if q is None else q for q, p in zip(gy, yt))
                    o.counts["grad_g"] = o.counts.get("grad_g", 0) + 1
                    gscale = gscale or relative_scale(norm(tuple(q.detach() for q in gy)))
                    yt = diff_proj(tuple(p - beta * q for p, q in zip(yt, gy)))
                fv = o("f", xl, yt, S.batches.next())
                hg = torch.autograd.grad(fv, xl, allow_unused=True)
                o.counts["grad_f"] = o.counts.get("grad_f", 0) + 1
            hg = tuple(torch.zeros_like(p) if q is None else q.detach() for q, p in zip(hg, xl))
            check_finite(hg, "unrolled hypergradient")
            ry = norm(tuple(q.detach() for q in gy))
            y = tuple(p.detach() for p in yt)   # warm start; frees the graph
            check_finite(y, "lower iterate y")
            alpha = ax(k) if ax is not None else astep(x, hg)
            xn = S.px(axpy(-alpha, hg, x))
            stat = norm(axpy(-1.0, xn, x)) / alpha
            fscale = fscale or relative_scale(float(fv.detach()), stat)
            rel = stat / fscale
            x = xn
            if S.budget.report(k, x=S.xs.pack(x), y=S.ys.pack(y), objective=fv.detach(), stationarity=stat,
                               relative_stationarity=rel, residual_y=ry):
                break
            if rel <= S.tol and ry <= S.tol * gscale:
                status, msg = Status.LOCALLY_OPTIMAL, f"stationary to tol={S.tol} at iteration {k}"
                break
    except NonFinite as e:
        status, msg = Status.NUMERICAL_ERROR, f"{e} at outer iteration {k}"
    except KeyboardInterrupt:
        S.budget.interrupt()
    return S.conclude(o, x, y, status, msg, k, {"stationarity": stat, "relative_stationarity": rel, "residual_y": ry},
                      {"method": "unrolled"},
                      certify_gap=certify_gap, proj_y=proj_y)
