"""Inner solver shared by the DAG methods: L-BFGS-B on W = W⁺ − W⁻ with W⁺, W⁻ ≥ 0.

    min_{W⁺,W⁻ ≥ 0, diag = 0}  F(W⁺ − W⁻, p) + λ Σ (W⁺ + W⁻)

Splitting makes the ℓ1 term linear, so L-BFGS-B solves the nonsmooth problem exactly (NOTEARS,
Zheng et al. 2018, §4). The gradient is [∇_W F + λ, −∇_W F + λ, ∇_p F]. Optional extra unbounded
parameters p (e.g. the hidden layers of an MLP structural model) ride along in the same vector.
F is evaluated in torch on any device; only the flat vector crosses to numpy for scipy.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
import scipy.optimize as sopt
import torch


class InnerResult:
    __slots__ = ("w", "f", "nfev", "nit", "ok", "message")

    def __init__(self, w, f, nfev, nit, ok, message):
        self.w, self.f, self.nfev, self.nit, self.ok, self.message = w, f, nfev, nit, ok, message


def split_bounds(d: int, n_extra: int = 0, mask: Optional[np.ndarray] = None) -> list:
    """Bounds: (0, 0) on the diagonal and on masked-out (excluded) entries, (0, None) elsewhere."""
    allowed = ~np.eye(d, dtype=bool) if mask is None else (np.asarray(mask, bool) & ~np.eye(d, dtype=bool))
    b = [(0.0, None) if a else (0.0, 0.0) for a in allowed.ravel()]
    return b + b + [(None, None)] * n_extra


def to_W(w: np.ndarray, d: int) -> np.ndarray:
    """W = W⁺ − W⁻ from the flat split vector."""
    dd = d * d
    return (w[:dd] - w[dd:2 * dd]).reshape(d, d)


def minimize_split(smooth: Callable, w0: np.ndarray, d: int, lambda1: float, bounds: list, *,
                   device, dtype, n_extra: int = 0, stop: Optional[Callable[[], bool]] = None,
                   maxiter: int = 15000, gtol: float = 1e-5, ftol: float = 2.2e-9) -> InnerResult:
    """Minimise smooth(W, p) + λ‖W‖₁ over the split vector with L-BFGS-B, warm-started at w0.

    ``smooth(W, p) -> (f, gW, gp)`` returns torch tensors; it may return f = inf to reject a point
    (e.g. outside the log-det domain): the objective then reports a huge value so the line search backs off.
    ``stop()`` is polled once per L-BFGS-B iteration (time limit); returning True ends the solve early.
    """
    dd = d * d
    counter = {"f": 0}

    def fun(w):
        counter["f"] += 1
        wt = torch.as_tensor(np.array(w, dtype=np.float64), device=device).to(dtype)  # scipy may pass a read-only view
        W = (wt[:dd] - wt[dd:2 * dd]).reshape(d, d)
        p = wt[2 * dd:] if n_extra else None
        f, gW, gp = smooth(W, p)
        f = float(f)
        if not math.isfinite(f):
            # reject: a large value with a gradient pointing back toward the origin (shrinking W
            # always re-enters the log-det domain), so the line search backtracks.
            return 1e100, np.concatenate([np.ones(2 * dd), np.zeros(n_extra)]) * 1e10
        gW = gW.detach().reshape(-1).to(torch.float64).cpu().numpy()
        g = np.concatenate([gW + lambda1, -gW + lambda1])
        if n_extra:
            g = np.concatenate([g, gp.detach().reshape(-1).to(torch.float64).cpu().numpy()])
        return f + lambda1 * float(w[:2 * dd].sum()), g

    cb = None
    if stop is not None:
        def cb(_xk):
            if stop():
                raise StopIteration
    res = sopt.minimize(fun, w0, method="L-BFGS-B", jac=True, bounds=bounds, callback=cb,
                        options={"maxiter": maxiter, "gtol": gtol, "ftol": ftol})
    ok = bool(np.isfinite(res.fun)) and res.fun < 1e99
    # (scipy leaves out nit when every variable is fixed by its bounds)
    return InnerResult(res.x, float(res.fun), counter["f"], int(getattr(res, "nit", 0)), ok, str(res.message))
