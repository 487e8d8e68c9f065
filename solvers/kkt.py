"""KKT certificates and least-squares multiplier estimates for

    min f(x)  s.t.  c_eq(x) = 0,  c_in(x) ≤ 0,  lb ≤ x ≤ ub,

with the Lagrangian L = f + λᵀc_eq + μᵀc_in − z_lbᵀ(x − lb) + z_ubᵀ(x − ub), μ, z ≥ 0.

Given a point, `estimate_multipliers` solves the bounded least-squares problem
min ‖∇f + J_eqᵀλ + J_actᵀμ − z_lb + z_ub‖₂ over the *active* inequalities and bounds (μ, z ≥ 0),
which is how a backend without native multipliers (SLSQP, L-BFGS-B, ZO) still reports duals and a
stationarity residual; `kkt_residuals` evaluates the certificates for any multipliers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear


@dataclass
class KKT:
    lam: np.ndarray          # equality multipliers
    mu: np.ndarray           # inequality multipliers (>= 0)
    z_lb: np.ndarray         # lower-bound multipliers (>= 0)
    z_ub: np.ndarray         # upper-bound multipliers (>= 0)
    stationarity: float      # ‖∇ₓL‖∞
    feasibility: float       # max violation of equalities, inequalities and bounds
    complementarity: float   # max |μ_i c_i|, |z (x - bound)|


def _np(a, n_cols: int | None = None) -> np.ndarray:
    if a is None:
        return np.zeros((0,) if n_cols is None else (0, n_cols))
    try:
        import torch
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().double().numpy()
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(a, dtype=float)


def estimate_multipliers(x, grad, *, c_eq=None, J_eq=None, c_in=None, J_in=None, lb=None, ub=None,
                         active_tol: float = 1e-6) -> KKT:
    x, g = _np(x).ravel(), _np(grad).ravel()
    n = x.size
    c_eq, J_eq = _np(c_eq).ravel(), _np(J_eq, n).reshape(-1, n)
    c_in, J_in = _np(c_in).ravel(), _np(J_in, n).reshape(-1, n)
    lb = np.full(n, -np.inf) if lb is None else np.broadcast_to(_np(lb).ravel(), (n,))
    ub = np.full(n, np.inf) if ub is None else np.broadcast_to(_np(ub).ravel(), (n,))
    scale = 1.0 + np.abs(x)
    act_in = c_in >= -active_tol * (1 + np.abs(c_in))
    act_lb = np.isfinite(lb) & (x - lb <= active_tol * scale)
    act_ub = np.isfinite(ub) & (ub - x <= active_tol * scale)
    cols = [J_eq.T, J_in[act_in].T, -np.eye(n)[:, act_lb], np.eye(n)[:, act_ub]]
    A = np.hstack(cols) if any(c.shape[1] for c in cols) else np.zeros((n, 0))
    k_eq, k_in, k_lb = J_eq.shape[0], int(act_in.sum()), int(act_lb.sum())
    if A.shape[1]:
        lo = np.concatenate([np.full(k_eq, -np.inf), np.zeros(A.shape[1] - k_eq)])
        sol = lsq_linear(A, -g, bounds=(lo, np.full(A.shape[1], np.inf)), method="bvls" if A.shape[1] <= 2000 else "trf",
                         lsmr_tol="auto").x
    else:
        sol = np.zeros(0)
    lam = sol[:k_eq]
    mu = np.zeros(c_in.size)
    mu[act_in] = sol[k_eq:k_eq + k_in]
    z_lb, z_ub = np.zeros(n), np.zeros(n)
    z_lb[act_lb] = sol[k_eq + k_in:k_eq + k_in + k_lb]
    z_ub[act_ub] = sol[k_eq + k_in + k_lb:]
    return kkt_residuals(x, g, lam=lam, mu=mu, z_lb=z_lb, z_ub=z_ub, c_eq=c_eq, J_eq=J_eq, c_in=c_in,
                         J_in=J_in, lb=lb, ub=ub)


def kkt_residuals(x, grad, *, lam=None, mu=None, z_lb=None, z_ub=None, c_eq=None, J_eq=None, c_in=None,
                  J_in=None, lb=None, ub=None) -> KKT:
    x, g = _np(x).ravel(), _np(grad).ravel()
    n = x.size
    c_eq, J_eq = _np(c_eq).ravel(), _np(J_eq, n).reshape(-1, n)
    c_in, J_in = _np(c_in).ravel(), _np(J_in, n).reshape(-1, n)
    lam = np.zeros(c_eq.size) if lam is None else _np(lam).ravel()
    mu = np.zeros(c_in.size) if mu is None else _np(mu).ravel()
    z_lb = np.zeros(n) if z_lb is None else _np(z_lb).ravel()
    z_ub = np.zeros(n) if z_ub is None else _np(z_ub).ravel()
    lb = np.full(n, -np.inf) if lb is None else np.broadcast_to(_np(lb).ravel(), (n,))
    ub = np.full(n, np.inf) if ub is None else np.broadcast_to(_np(ub).ravel(), (n,))
    r = g + J_eq.T @ lam + J_in.T @ mu - z_lb + z_ub
    viol = [np.abs(c_eq), np.maximum(c_in, 0), np.maximum(lb - x, 0), np.maximum(x - ub, 0)]
    feas = max((float(v.max()) for v in viol if v.size), default=0.0)
    with np.errstate(invalid="ignore"):
        comp_terms = [np.abs(mu * c_in), np.where(np.isfinite(lb), np.abs(z_lb * (x - lb)), 0.0),
                      np.where(np.isfinite(ub), np.abs(z_ub * (ub - x)), 0.0)]
    comp = max((float(v.max()) for v in comp_terms if v.size), default=0.0)
    stat = float(np.abs(r).max()) if r.size else 0.0
    return KKT(lam, mu, z_lb, z_ub, stat, feas, comp)
