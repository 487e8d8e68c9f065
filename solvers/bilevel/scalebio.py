"""ScaleBiO-style first-order bilevel data reweighting: penalty method, simplex leader, block-sampled follower.

Pan et al., "ScaleBiO: Scalable Bilevel Optimization for LLM Data Reweighting", 2024 (abstract + recall; the
paper's LISA layer sampling and multi-GPU engineering are described only at the level implemented here).
Leader: weights p on the simplex (one per data source / example); follower: model parameters as a tuple of
blocks (layers). With multiplier lambda_k increasing (lambda = 1/sigma of `penalty`), single loop:

    theta <- theta - lr_y (grad f(p, theta) / lambda + grad_theta g(p, theta))   (tracks argmin f + lambda g)
    u     <- u     - lr_y grad_u g(p, u)                                          (tracks argmin g)
    p     <- p * exp(-lr_x d) / Z,   d = grad_p f(p, theta) + lambda (grad_p g(p, theta) - grad_p g(p, u))

(exponentiated-gradient / mirror step keeps p on the simplex; ``simplex=False`` uses ``proj_x`` and plain
gradient steps). Scalability: every ``period`` iterations only ``active_blocks`` randomly chosen follower
blocks are unfrozen (LISA-style), so gradients (and, in a full optimizer, its state) exist only for those
blocks. lambda_k = min(lam_max, lam0 (k+1)^lam_power).
"""
from __future__ import annotations

import torch

from ..common import Status
from ._core import NonFinite, Setup, as_schedule, check_finite, norm, positive_int


def scalebio(f, g, x0, y0, *, lr_x=0.1, lr_y=0.1, lam0: float = 1.0, lam_power: float = 0.5,
             lam_max: float = 1e3, simplex: bool = True, active_blocks=None, period: int = 10, seed: int = 0,
             proj_x=None, proj_y=None, batches=None, eval_batch=None, max_iter: int = 1000, tol: float = 1e-6,
             time_limit=None, callback=None, device=None, dtype=None, certify_gap: bool = True):
    """ScaleBiO-style penalty method (see module docstring). With ``simplex=True`` ``x0`` must be a tensor
    with positive entries (it is normalized to sum 1). ``y0`` a tensor or tuple of blocks. Returns
    ``x = (p, theta)``; ``extras["u"]`` the lower-level copy; certificates ``stationarity``,
    ``lambda``, ``lower_level_gap``."""
    if simplex:
        if not isinstance(x0, torch.Tensor):
            raise TypeError("scalebio with simplex=True needs x0 as one tensor of positive weights")
        if not bool((x0 > 0).all()):
            raise ValueError(f"scalebio with simplex=True needs x0 > 0 (shape {tuple(x0.shape)}); got min "
                             f"{float(x0.min()):.3g}")
        x0 = x0 / x0.sum()
    S = Setup(f, g, x0, y0, proj_x=proj_x, proj_y=proj_y, batches=batches, eval_batch=eval_batch,
              max_iter=max_iter, tol=tol, time_limit=time_limit, callback=callback, device=device, dtype=dtype)
    ax, ay = as_schedule(lr_x, "lr_x"), as_schedule(lr_y, "lr_y")
    period = positive_int(period, "period")
    nb = len(S.ys.shapes)
    A = nb if active_blocks is None else positive_int(active_blocks, "active_blocks")
    if A > nb:
        raise ValueError(f"active_blocks={A} exceeds the number of follower blocks ({nb})")
    gen = torch.Generator().manual_seed(seed)
    lam_of = lambda k: min(lam_max, lam0 * (k + 1) ** lam_power)
    o, x, y = S.orc, S.x0, S.y0
    u = y
    status, msg, k, stat, active = None, "", 0, float("nan"), list(range(nb))

    def block_grad(which, x, yy, act, b, scale=None):
        """Gradient of f/g (or scale-mix) w.r.t. the active blocks only; frozen blocks get no grad."""
        yl = tuple(p.detach().requires_grad_(i in act) for i, p in enumerate(yy))
        xl = tuple(p.detach() for p in x)
        with torch.enable_grad():
            val = (scale[0] * o("f", xl, yl, b) + scale[1] * o("g", xl, yl, b)) if which == "fg" \
                else o(which, xl, yl, b)
            gr = torch.autograd.grad(val, [yl[i] for i in act], allow_unused=True)
        gr = [torch.zeros_like(yl[i]) if q is None else q for q, i in zip(gr, act)]
        check_finite(tuple(gr), f"gradient of {which}")
        return dict(zip(act, gr))
    try:
        for k in S.budget:
            lam, beta = lam_of(k), ay(k)
            if A < nb and k % period == 0:
                active = sorted(torch.randperm(nb, generator=gen)[:A].tolist())
            gy = block_grad("fg", x, y, active, S.batches.next(), scale=(1.0 / lam, 1.0))
            y = S.py(tuple(p - beta * gy[i] if i in gy else p for i, p in enumerate(y)))
            gu = block_grad("g", x, u, active, S.batches.next())
            u = S.py(tuple(p - beta * gu[i] if i in gu else p for i, p in enumerate(u)))
            b = S.batches.next()
            fv, fx, _ = o.grad("f", x, y, "x", b)
            _, gxy, _ = o.grad("g", x, y, "x", b)
            _, gxu, _ = o.grad("g", x, u, "x", b)
            d = tuple(a + lam * (c - e) for a, c, e in zip(fx, gxy, gxu))
            alpha = ax(k)
            if simplex:
                z = torch.log(x[0]) - alpha * d[0]
                xn = (torch.softmax(z.reshape(-1), 0).reshape(z.shape),)
            else:
                xn = S.px(tuple(a - alpha * c for a, c in zip(x, d)))
            check_finite(xn, "leader weights p")
            stat = norm(tuple(a - c for a, c in zip(xn, x))) / alpha
            x = xn
            if S.budget.report(k, x=S.xs.pack(x), y=S.ys.pack(y), objective=fv, stationarity=stat, **{"lambda": lam}):
                break
            if stat <= S.tol and lam == lam_of(k + 1):
                status, msg = Status.LOCALLY_OPTIMAL, f"stationary to tol={S.tol} at iteration {k}"
                break
    except NonFinite as e:
        status, msg = Status.NUMERICAL_ERROR, f"{e} at iteration {k}"
    except KeyboardInterrupt:
        S.budget.interrupt()
    return S.conclude(o, x, y, status, msg, k, {"stationarity": stat, "lambda": lam_of(max(k, 0))},
                      {"u": S.ys.pack(u), "method": "scalebio"},
                      certify_gap=certify_gap)
