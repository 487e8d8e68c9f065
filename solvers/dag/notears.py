"""NOTEARS: DAG learning as a smooth equality-constrained program, solved by an augmented Lagrangian.

Zheng, Aragam, Ravikumar, Xing, "DAGs with NO TEARS: Continuous Optimization for Structure Learning",
NeurIPS 2018 (reference code: xunzheng/notears, notears/linear.py)::

    min_W Q(W) + λ‖W‖₁   s.t.  h(W) = tr(exp(W∘W)) − d = 0

For fixed (ρ, α) the inner problem  Q(W) + (ρ/2) h(W)² + α h(W) + λ‖W‖₁  is solved by L-BFGS-B on
W = W⁺ − W⁻ (see ``_split``). Outer loop (reference defaults): ρ ← 10ρ while h did not fall below ¼ of its
previous value, then α ← α + ρh; stop at h ≤ h_tol = 1e-8 or ρ ≥ ρ_max = 1e16.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from optdsl.solvers.common import Budget, SolverOutput, Status
from optdsl.solvers.dag._split import minimize_split, split_bounds, to_W
from optdsl.solvers.dag.acyclicity import h_expm
from optdsl.solvers.dag.losses import with_params
from optdsl.solvers.dag.side import SideConstraints, box_bounds


def notears(loss, d: int, *, lambda1: float = 0.05, max_iter: int = 100, tol: float = 1e-8,
            rho_max: float = 1e16, W0: Optional[torch.Tensor] = None, n_extra: int = 0,
            p0: Optional[np.ndarray] = None, mask: Optional[np.ndarray] = None,
            time_limit: Optional[float] = None, callback=None, device=None,
            dtype=torch.float64, side: Optional[SideConstraints] = None,
            inner_tol: tuple = (1e-5, 2.2e-9)) -> SolverOutput:
    """Augmented-Lagrangian NOTEARS on a loss ``loss(W) -> (f, ∇f)`` (or ``(W, p)`` form with n_extra).

    Returns a ``SolverOutput`` whose x is the raw (unthresholded) W; ``tol`` is h_tol;
    ``max_iter`` counts dual (α) updates. extras["p"] holds the fitted extra parameters, if any.
    ``side``: signs and magnitude bounds (bounds on the split) and smooth rows on W (their augmented Lagrangian joins
    the inner objective, multipliers updated with α; done when also their violation <= side.ctol).
    ``inner_tol``: L-BFGS-B's (gtol, ftol) for each inner solve.
    """
    lossWP = with_params(loss)
    budget = Budget(max_iter, time_limit, callback)
    bounds = box_bounds(split_bounds(d, n_extra, mask), side, d)
    smooth_side = side is not None and side.smooth
    viol = 0.0
    w = np.zeros(2 * d * d + n_extra)
    if W0 is not None:
        W0n = W0.detach().to(torch.float64).cpu().numpy()
        w[:d * d], w[d * d:2 * d * d] = np.maximum(W0n, 0).ravel(), np.maximum(-W0n, 0).ravel()
    if n_extra:
        w[2 * d * d:] = p0
    rho, alpha, h = 1.0, 0.0, math.inf
    counts = {"f": 0, "grad": 0, "inner_iterations": 0}
    state = {"rho": rho, "alpha": alpha}

    def smooth(W, p):
        f, gW, gp = lossWP(W, p)
        hv, gh = h_expm(W)
        r, a = state["rho"], state["alpha"]
        if smooth_side:
            pv, pg = side.penalty(W)
            f, gW = f + pv, gW + pg
        return f + 0.5 * r * hv * hv + a * hv, gW + (r * hv + a) * gh, gp

    stop = (lambda: budget.elapsed > time_limit) if time_limit else None
    status, message = None, ""
    for k in budget:
        while state["rho"] < rho_max:
            res = minimize_split(smooth, w, d, lambda1, bounds, device=device, dtype=dtype,
                                 n_extra=n_extra, stop=stop, gtol=inner_tol[0], ftol=inner_tol[1])
            counts["f"] += res.nfev
            counts["grad"] += res.nfev
            counts["inner_iterations"] += res.nit
            if not res.ok or not np.isfinite(res.w).all():
                status, message = Status.NUMERICAL_ERROR, f"inner L-BFGS-B failed: {res.message}"
                break
            h_new = float(h_expm(torch.as_tensor(to_W(res.w, d), device=device, dtype=dtype))[0])
            if not math.isfinite(h_new):
                status, message = Status.NUMERICAL_ERROR, "h(W) overflowed (exp of a large matrix)"
                break
            # (with side rows, h may already be at round-off while their multipliers converge: no ρ growth there)
            if h_new > 0.25 * h and not (stop and stop()) and not (smooth_side and h_new <= tol):
                state["rho"] *= 10.0
            else:
                break
        if status is not None:
            break
        w, h = res.w, h_new
        state["alpha"] += state["rho"] * h
        Wt = torch.as_tensor(to_W(w, d), device=device, dtype=dtype)
        obj = float(lossWP(Wt, torch.as_tensor(w[2 * d * d:], device=device, dtype=dtype)
                           if n_extra else None)[0])
        if smooth_side:
            viol = side.update(Wt)
        if budget.report(k, x=Wt, objective=obj, h=h, rho=state["rho"], alpha=state["alpha"]):
            break
        if h <= tol and viol <= (side.ctol if smooth_side else 0.0):
            status, message = Status.LOCALLY_OPTIMAL, f"h(W) = {h:.3g} <= tol = {tol:g}"
            if smooth_side:
                message += f", side-constraint violation {viol:.3g} <= {side.ctol:g}"
            break
        if state["rho"] >= rho_max:
            status, message = Status.SLOW_PROGRESS, f"rho reached rho_max = {rho_max:g} with h(W) = {h:.3g}"
            break
    status = status or budget.status or Status.LOCALLY_OPTIMAL
    if status == Status.ITERATION_LIMIT:
        message = f"max_iter = {max_iter} dual updates reached with h(W) = {h:.3g}"
        if smooth_side:
            message += f" and side-constraint violation {viol:.3g}"
    elif status in (Status.TIME_LIMIT, Status.INTERRUPTED) and not message:
        message = f"stopped ({status.value.lower()}) with h(W) = {h:.3g}"
    W = torch.as_tensor(to_W(w, d), device=device, dtype=dtype)
    p = torch.as_tensor(w[2 * d * d:], device=device, dtype=dtype) if n_extra else None
    obj = float(lossWP(W, p)[0])
    return SolverOutput(x=W, status=status, objective=obj + lambda1 * float(W.abs().sum()),
                        iterations=len(budget.history), message=message,
                        certificates={"h(W)": float(h_expm(W)[0])}, counts=counts,
                        history=budget.history, solve_time=budget.elapsed,
                        extras={"p": p, "rho": state["rho"], "alpha": state["alpha"], "loss": obj,
                                "side_violation": viol})
