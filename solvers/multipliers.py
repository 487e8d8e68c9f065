r"""Classic augmented Lagrangian (method of multipliers) — the comparison baseline for ``alsketch``.

Hestenes (1969), Powell (1969); inequalities by Rockafellar's PHR form (Nocedal & Wright, *Numerical
Optimization*, 2nd ed., §17.3–17.4). For ``min f(x) s.t. c(x) = 0, g(x) <= 0, lb <= x <= ub``:

    L_A(x; λ, μ, ρ) = f + λᵀc + (ρ/2)‖c‖² + (1/(2ρ)) Σ_j (max(0, μ_j + ρ g_j)² − μ_j²)
    x_{k+1} ≈ argmin_{lb ≤ x ≤ ub} L_A(x; λ_k, μ_k, ρ_k)            (L-BFGS-B, gradients by torch autograd)
    λ_{k+1} = λ_k + ρ_k c(x_{k+1}),   μ_{k+1} = max(0, μ_k + ρ_k g(x_{k+1}))
    ρ_{k+1} = 10 ρ_k  if the violation did not drop below 1/4 of the previous one.

The inner solves run in scipy (CPU float64; tensors on other devices are copied per evaluation), so this is a
reference implementation, not a fast path.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Optional

import numpy as np
import scipy.optimize as so
import torch

from optdsl.solvers.common import Budget, SolverOutput, Status, resolve_device

__all__ = ["minimize"]


def minimize(f: Callable, x0: torch.Tensor, *, eq: Optional[Callable] = None, ineq: Optional[Callable] = None,
             lb=None, ub=None, rho: float = 10.0, rho_max: float = 1e12, max_iter: int = 100,
             inner_max_iter: int = 1000, tol: float = 1e-8, time_limit: Optional[float] = None,
             callback: Optional[Callable] = None, device=None, dtype=None) -> SolverOutput:
    """Method of multipliers for ``min f`` s.t. ``eq(x) = 0``, ``ineq(x) <= 0``, ``lb <= x <= ub``.

    Same calling convention and dual signs as :func:`optdsl.solvers.alsketch.minimize`. ``iterations`` counts
    outer (multiplier) updates; ``counts["linear_iterations"]`` is unused, ``counts["f"]``/``["grad"]`` count the
    inner L-BFGS-B evaluations. Status LOCALLY_OPTIMAL when stationarity, feasibility and complementarity are
    ≤ tol; INFEASIBLE (with ``extras["worst_constraint"]``) when ρ exceeds ``rho_max`` while still infeasible.
    """
    t0 = time.perf_counter()
    if not isinstance(x0, torch.Tensor) or x0.dim() != 1:
        raise ValueError(f"multipliers: x0 must be a 1-D torch tensor, got "
                         f"{tuple(x0.shape) if isinstance(x0, torch.Tensor) else type(x0).__name__}")
    if not rho > 0:
        raise ValueError(f"multipliers: rho must be > 0, got {rho}")
    dev, dt = resolve_device(device, dtype, like=x0)
    n = x0.numel()
    T = lambda a: torch.as_tensor(a, dtype=dt).to(dev)  # noqa: E731

    def bound(b, default, name):
        if b is None:
            return np.full(n, default)
        a = np.asarray(b.detach().cpu() if isinstance(b, torch.Tensor) else b, dtype=float)
        a = np.full(n, float(a)) if a.ndim == 0 else a
        if a.shape != (n,):
            raise ValueError(f"multipliers: {name} must be a scalar or have shape ({n},), got {a.shape}")
        return a.copy()
    lo, hi = bound(lb, -np.inf, "lb"), bound(ub, np.inf, "ub")
    x = np.clip(x0.detach().cpu().double().numpy().copy(), lo, hi)
    ce = (lambda v: eq(v).reshape(-1)) if eq is not None else (lambda v: v.new_zeros(0))
    ci = (lambda v: ineq(v).reshape(-1)) if ineq is not None else (lambda v: v.new_zeros(0))
    me, mi = ce(T(x)).numel(), ci(T(x)).numel()
    lam, mu = np.zeros(me), np.zeros(mi)
    counts = {"f": 0, "grad": 0, "hvp": 0, "jac": 0, "linear_iterations": 0}

    def parts(xn):
        xt = T(xn).requires_grad_(True)
        with torch.enable_grad():
            return xt, f(xt), ce(xt), ci(xt)

    def LA(xn, lam, mu, rho):
        xt, fx, c, g = parts(xn)
        with torch.enable_grad():
            val = fx + (T(lam) * c).sum() + 0.5 * rho * (c * c).sum()
            if mi:
                val = val + (torch.clamp(T(mu) + rho * g, min=0) ** 2 - T(mu) ** 2).sum() / (2 * rho)
            gr, = torch.autograd.grad(val, xt)
        counts["f"] += 1
        counts["grad"] += 1
        return float(val.detach()), gr.detach().cpu().double().numpy()

    def kkt(xn):
        xt, fx, c, g = parts(xn)
        with torch.enable_grad():
            val = fx + (T(lam) * c).sum() + (T(mu) * g).sum()
            r, = torch.autograd.grad(val, xt)
        r = r.detach().cpu().double().numpy()
        atl, atu = np.isclose(xn, lo, atol=1e-10), np.isclose(xn, hi, atol=1e-10)
        zl, zu = np.where(atl, np.maximum(r, 0), 0.0), np.where(atu, np.maximum(-r, 0), 0.0)
        c, g = c.detach().cpu().double().numpy(), g.detach().cpu().double().numpy()
        stat = float(np.abs(r - zl + zu).max(initial=0))
        viol = max(float(np.abs(c).max(initial=0)), float(np.maximum(g, 0).max(initial=0)))
        comp = float(np.abs(mu * g).max(initial=0))
        return float(fx.detach()), stat, viol, comp, zl, zu, c, g

    budget = Budget(max_iter, time_limit, callback)
    prev_viol = math.inf
    status, msg, k = None, "", 0
    fx, stat, viol, comp, zl, zu, c, g = kkt(x)
    for k in budget:
        if not all(map(math.isfinite, (fx, stat, viol))):
            status, msg = Status.NUMERICAL_ERROR, f"non-finite values at outer iteration {k}"
            break
        if budget.report(k, x=T(x), objective=fx, kkt=max(stat, viol, comp), rho=rho):
            break
        if max(stat, viol, comp) <= tol:
            status = Status.LOCALLY_OPTIMAL
            break
        if rho > rho_max:
            status = Status.INFEASIBLE if viol > tol else Status.SLOW_PROGRESS
            break
        res = so.minimize(LA, x, args=(lam, mu, rho), jac=True, method="L-BFGS-B", bounds=list(zip(lo, hi)),
                          options={"maxiter": inner_max_iter, "gtol": max(0.1 * tol, 1e-14), "ftol": 1e-16})
        x = res.x
        fx, stat, viol, comp, zl, zu, c, g = kkt(x)
        lam = lam + rho * c
        mu = np.maximum(0.0, mu + rho * g)
        if viol > 0.25 * prev_viol:
            rho *= 10
        prev_viol = viol
        fx, stat, viol, comp, zl, zu, c, g = kkt(x)
    if status is None:
        status = budget.status or Status.ITERATION_LIMIT
    worst = ("", -1)
    if me or mi:
        ve = np.abs(c) if me else np.zeros(0)
        vi = np.maximum(g, 0) if mi else np.zeros(0)
        worst = ("eq", int(ve.argmax())) if me and (not mi or ve.max() >= vi.max()) else ("ineq", int(vi.argmax()))
    if status == Status.INFEASIBLE:
        msg = f"rho > rho_max with violation {viol:.3e}; largest violation at {worst[0]}[{worst[1]}]"
    return SolverOutput(x=T(x), status=status, objective=fx, iterations=k, message=msg,
                        duals={"eq": T(lam), "ineq": T(mu), "lb": T(zl), "ub": T(zu)},
                        certificates={"stationarity": stat, "feasibility": viol, "complementarity": comp,
                                      "kkt": max(stat, viol, comp)},
                        counts=counts, history=budget.history, solve_time=time.perf_counter() - t0,
                        extras={"rho": rho, "worst_constraint": worst})
