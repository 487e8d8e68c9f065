"""Smooth nonlinear programming on torch callables through SciPy (the baseline NLP backend).

    min f(x)  s.t.  c_eq(x) = 0,  c_in(x) ≤ 0,  lb ≤ x ≤ ub

Gradients and Jacobians come from torch autograd (`optdsl.solvers.autodiff`); SciPy's SLSQP,
trust-constr or L-BFGS-B (bounds only) does the iterations. Multipliers are re-estimated at the final
point by bounded least squares on the KKT stationarity condition (`optdsl.solvers.kkt`), so every
method reports duals and the same certificates; the status is decided from those certificates, not
from SciPy's message alone (SLSQP may stop "successfully" at a non-KKT point).
"""
from __future__ import annotations

import time
import warnings
from typing import Callable, Optional

import numpy as np
import scipy.optimize as so
import torch

from .autodiff import Constraints, NonFinite, Objective
from .common import Budget, SolverOutput, Status, resolve_device
from .kkt import estimate_multipliers

METHODS = ("slsqp", "trust-constr", "l-bfgs-b")


class _Stop(Exception):
    pass


def minimize(f: Callable[[torch.Tensor], torch.Tensor], x0, *, eq: Optional[Callable] = None,
             ineq: Optional[Callable] = None, lb=None, ub=None, method: str = "slsqp", max_iter: int = 500,
             tol: float = 1e-8, feas_tol: float = 1e-6, time_limit: Optional[float] = None,
             callback=None, device=None, dtype=None, convex: bool = False) -> SolverOutput:
    """Minimize a smooth torch function subject to smooth equality/inequality constraints and bounds.

    Parameters
    ----------
    f : callable, flat tensor -> scalar tensor (differentiable by autograd).
    x0 : initial point (tensor/array, flattened).
    eq, ineq : callables, flat tensor -> 1-D tensor; ``eq(x) = 0`` and ``ineq(x) <= 0``.
    lb, ub : bounds (arrays broadcastable to x; ±inf for none).
    method : "slsqp" (default), "trust-constr", or "l-bfgs-b" (bounds only).
    tol : optimality tolerance passed to SciPy and used on the KKT stationarity certificate (scaled).
    convex : the caller knows the problem is convex, so a KKT point is reported OPTIMAL.
    """
    method = method.lower()
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "l-bfgs-b" and (eq is not None or ineq is not None):
        raise ValueError("method 'l-bfgs-b' handles bounds only; use 'slsqp' or 'trust-constr' with constraints")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    x0_t = torch.as_tensor(x0)
    # SciPy iterates in float64; evaluating in float32 would cap the attainable accuracy at ~1e-6.
    device, dtype = resolve_device(device, dtype or torch.float64, like=x0_t)
    x0_np = x0_t.detach().cpu().double().numpy().ravel().copy()
    n = x0_np.size
    lb_np = np.full(n, -np.inf) if lb is None else np.broadcast_to(np.asarray(lb, float).ravel(), (n,)).copy()
    ub_np = np.full(n, np.inf) if ub is None else np.broadcast_to(np.asarray(ub, float).ravel(), (n,)).copy()
    x0_np = np.clip(x0_np, lb_np, ub_np)

    obj = Objective(f, device, dtype)
    try:  # one evaluation up front: a wrong output shape is a usage error, reported before iterating
        obj.value(x0_np)
    except TypeError as e:
        raise ValueError(str(e)) from None
    except NonFinite:
        pass  # reported as a status below
    ceq = Constraints(eq, device, dtype, "equality constraints") if eq is not None else None
    cin = Constraints(ineq, device, dtype, "inequality constraints") if ineq is not None else None
    budget = Budget(max_iter, time_limit, callback)
    state = {"x": x0_np.copy(), "k": 0}

    def on_iter(xk, *_):  # SLSQP/L-BFGS-B pass x; trust-constr passes (x, state)
        xk = np.asarray(getattr(xk, "x", xk), dtype=float)
        state["x"] = xk.copy()
        k = state["k"]
        state["k"] += 1
        if budget.report(k, x=torch.as_tensor(xk), objective=obj.value(xk)):
            raise _Stop

    bounds = so.Bounds(lb_np, ub_np) if np.isfinite(lb_np).any() or np.isfinite(ub_np).any() else None
    start = time.perf_counter()
    status, message, res = None, "", None
    try:
        res = _run(method, obj, ceq, cin, x0_np, bounds, max_iter, tol, on_iter)
        state["x"] = np.asarray(res.x, dtype=float)
        message = str(res.message)
    except _Stop:
        status = budget.status or Status.INTERRUPTED
        message = "stopped by callback" if status == Status.INTERRUPTED else "time limit reached"
    except KeyboardInterrupt:
        status, message = Status.INTERRUPTED, "interrupted (Ctrl-C)"
    except NonFinite as e:
        status, message = Status.NUMERICAL_ERROR, str(e)
        state["x"] = state["x"] if e.x is None else state["x"]

    x = state["x"]
    counts = {"f": obj.n_f, "grad": obj.n_grad}
    if ceq or cin:
        counts["jac"] = (ceq.n_jac if ceq else 0) + (cin.n_jac if cin else 0)
    try:
        c_eq_v = ceq.value(x) if ceq else None
        c_in_v = cin.value(x) if cin else None
        kkt = _multipliers(x, obj.grad(x), c_eq_v, ceq.jac(x) if ceq else None, c_in_v,
                           cin.jac(x) if cin else None, lb_np, ub_np, feas_tol)
        fx = obj.value(x)
    except NonFinite as e:
        return SolverOutput(torch.as_tensor(x, dtype=dtype, device=device), Status.NUMERICAL_ERROR,
                            message=message or str(e), iterations=state["k"], counts=counts,
                            history=budget.history, solve_time=time.perf_counter() - start)

    gscale = 1.0 + float(np.abs(obj.grad(x)).max()) if x.size else 1.0
    kkt_ok = kkt.stationarity <= max(1e3 * tol, 1e-6) * gscale and kkt.feasibility <= feas_tol
    if status is None:
        if fx < -1e20:
            status = Status.UNBOUNDED
        elif kkt_ok:
            status = Status.OPTIMAL if convex else Status.LOCALLY_OPTIMAL
        elif kkt.feasibility > max(1e3 * feas_tol, 1e-4):  # clearly infeasible, not merely inexact
            status = Status.INFEASIBLE
            message = f"{message}; the local solver found no feasible point (max violation {kkt.feasibility:.3g})"
        elif res is not None and _hit_iteration_limit(method, res, max_iter):
            status = Status.ITERATION_LIMIT
        else:
            status = Status.SLOW_PROGRESS
            message = f"{message}; KKT stationarity {kkt.stationarity:.3g} above tolerance"
    duals = {"eq": torch.as_tensor(kkt.lam), "ineq": torch.as_tensor(kkt.mu),
             "lb": torch.as_tensor(kkt.z_lb), "ub": torch.as_tensor(kkt.z_ub)}
    return SolverOutput(
        x=torch.as_tensor(x, dtype=dtype, device=device), status=status, objective=fx,
        iterations=int(getattr(res, "nit", state["k"]) or state["k"]), message=message, duals=duals,
        certificates={"stationarity": kkt.stationarity, "feasibility": kkt.feasibility,
                      "complementarity": kkt.complementarity},
        counts=counts, history=budget.history, solve_time=time.perf_counter() - start,
        extras={"scipy_status": getattr(res, "status", None)})


def _multipliers(x, g, c_eq, J_eq, c_in, J_in, lb, ub, feas_tol):
    # Solvers stop a little inside the feasible region, so "active" needs a tolerance; widen it only when
    # the tight one leaves the stationarity residual large (a constraint that matters was missed).
    best = None
    for tol in (max(feas_tol, 1e-6), 1e-4, 1e-3):
        kkt = estimate_multipliers(x, g, c_eq=c_eq, J_eq=J_eq, c_in=c_in, J_in=J_in, lb=lb, ub=ub, active_tol=tol)
        if best is None or kkt.stationarity < 0.5 * best.stationarity:
            best = kkt
        if best.stationarity <= 1e-8 * (1 + np.abs(g).max()):
            break
    return best


def _hit_iteration_limit(method, res, max_iter) -> bool:
    if method == "slsqp":
        return res.status == 9
    if method == "l-bfgs-b":
        return res.status == 1
    return getattr(res, "nit", 0) >= max_iter


def _run(method, obj, ceq, cin, x0, bounds, max_iter, tol, on_iter):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SciPy's warnings become statuses/messages here
        if method == "l-bfgs-b":
            return so.minimize(obj.value, x0, jac=obj.grad, method="L-BFGS-B", bounds=bounds, callback=on_iter,
                               options={"maxiter": max_iter, "gtol": tol, "ftol": tol * 1e-3, "maxcor": 20})
        if method == "slsqp":
            cons = []
            if ceq:
                cons.append({"type": "eq", "fun": ceq.value, "jac": ceq.jac})
            if cin:  # SciPy's SLSQP wants c(x) >= 0
                cons.append({"type": "ineq", "fun": lambda x: -cin.value(x), "jac": lambda x: -cin.jac(x)})
            # SLSQP's ftol bounds the change in f, not the gradient: ftol = tol reaches stationarity of only
            # ~sqrt(tol) on a convex QP, while tol**1.5 reaches tol in a couple more iterations
            return so.minimize(obj.value, x0, jac=obj.grad, method="SLSQP", bounds=bounds, constraints=cons,
                               callback=on_iter, options={"maxiter": max_iter, "ftol": min(tol, tol ** 1.5)})
        cons = []
        if ceq:
            cons.append(so.NonlinearConstraint(ceq.value, 0.0, 0.0, jac=ceq.jac, hess=so.BFGS()))
        if cin:
            cons.append(so.NonlinearConstraint(cin.value, -np.inf, 0.0, jac=cin.jac, hess=so.BFGS()))
        return so.minimize(obj.value, x0, jac=obj.grad, hess=so.BFGS(), method="trust-constr", bounds=bounds,
                           constraints=cons, callback=on_iter,
                           options={"maxiter": max_iter, "gtol": tol, "xtol": tol * 1e-2})
