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
import scipy.linalg
import scipy.optimize as so
import torch

from .autodiff import Compiled, Constraints, NonFinite, Objective, jacobian, rows_of
from .common import Budget, SolverOutput, Status, resolve_device
from .kkt import estimate_multipliers

METHODS = ("slsqp", "trust-constr", "l-bfgs-b")


class _Stop(Exception):
    pass


class _Stalled(Exception):
    """The iterate stopped moving. SLSQP's f-change test may never fire at a point it cannot improve: on HS7 x
    moves by ~1e-18 an iteration from iteration 11 to its cap of 500 (1.2 s), at the optimum all along."""


STALL_STEP = 1e-14   # relative step (∞-norm) below which an iteration counts as not moving ...
STALL_ITERATIONS = 3  # ... and this many such iterations in a row stop the method (the KKT check then decides)


def minimize(f: Callable[[torch.Tensor], torch.Tensor], x0, *, eq: Optional[Callable] = None,
             ineq: Optional[Callable] = None, lb=None, ub=None, method: str = "slsqp", max_iter: int = 500,
             tol: float = 1e-8, feas_tol: float = 1e-6, time_limit: Optional[float] = None,
             callback=None, device=None, dtype=None, convex: bool = False, derivatives=None) -> SolverOutput:
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
    derivatives : compiled derivatives of the same f, eq and ineq (``eval(x) -> (f, ∇f, c, J)`` with
        c = (c_eq, c_ineq), ``hess(x, λ)``, ``m_eq`` equality rows; float64), used instead of autograd.
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

    compiled = Compiled(derivatives, derivatives.m_eq) if derivatives is not None else None
    obj = Objective(f, device, dtype) if compiled is None else compiled.objective()
    try:  # one evaluation up front: a wrong output shape is a usage error, reported before iterating
        obj.value(x0_np)
    except TypeError as e:
        raise ValueError(str(e)) from None
    except NonFinite:
        pass  # reported as a status below
    if compiled is None:
        ceq = Constraints(eq, device, dtype, "equality constraints") if eq is not None else None
        cin = Constraints(ineq, device, dtype, "inequality constraints") if ineq is not None else None
    else:
        ceq = compiled.constraints(eq=True) if eq is not None else None
        cin = compiled.constraints(eq=False) if ineq is not None else None
    budget = Budget(max_iter, time_limit, callback)
    state = {"x": x0_np.copy(), "k": 0}

    bounds = so.Bounds(lb_np, ub_np) if np.isfinite(lb_np).any() or np.isfinite(ub_np).any() else None
    best = _Best(feas_tol)

    def violation(xk):
        v = max(float(np.max(np.maximum(lb_np - xk, 0), initial=0)), float(np.max(np.maximum(xk - ub_np, 0), initial=0)))
        if ceq:
            v = max(v, float(np.max(np.abs(ceq.value(xk)), initial=0)))
        if cin:
            v = max(v, float(np.max(np.maximum(cin.value(xk), 0), initial=0)))
        return v

    def on_iter(xk, *_):  # SLSQP/L-BFGS-B pass x; trust-constr passes (x, state)
        xk = np.asarray(getattr(xk, "x", xk), dtype=float)
        state["x"] = xk.copy()
        k = state["k"]
        state["k"] += 1
        fk = obj.value(xk)
        vk = violation(xk)
        best.offer(xk, fk, vk)
        state.setdefault("viol", []).append(vk)
        if budget.report(k, x=torch.as_tensor(xk), objective=fk):
            raise _Stop
        prev = state.get("prev")
        scale = max(1.0, float(np.max(np.abs(xk), initial=0.0)))
        still = prev is not None and float(np.max(np.abs(xk - prev), initial=0.0)) <= STALL_STEP * scale
        state["still"] = state.get("still", 0) + 1 if still else 0
        state["prev"] = xk.copy()
        if state["still"] >= STALL_ITERATIONS and method == "slsqp":   # (a trust region's rejected steps keep x)
            raise _Stalled

    start = time.perf_counter()
    status, message, res = None, "", None
    x_start, restarts, escapes = x0_np, 0, 0
    least = None  # (x, max violation, proven) of the least-violation check, once run
    while True:
        state["prev"], state["still"] = None, 0
        try:
            res = _run(method, obj, ceq, cin, x_start, bounds, max(max_iter - state["k"], 1), tol, on_iter,
                       polish=restarts > 0)
            state["x"] = np.asarray(res.x, dtype=float)
            message = str(res.message)
        except _Stalled:
            message = f"the iterate stopped moving ({STALL_ITERATIONS} steps below {STALL_STEP:g} relative)"
            res = so.OptimizeResult(x=state["x"], success=True, status=0, nit=state["k"], message=message)
        except _Stop:
            status = budget.status or Status.INTERRUPTED
            message = "stopped by callback" if status == Status.INTERRUPTED else "time limit reached"
        except KeyboardInterrupt:
            status, message = Status.INTERRUPTED, "interrupted (Ctrl-C)"
        except NonFinite as e:
            status, message = Status.NUMERICAL_ERROR, str(e)
        if status is not None or res is None or state["k"] >= max_iter:
            break
        try:
            x = state["x"]
            kkt = _kkt(obj, ceq, cin, x, lb_np, ub_np, feas_tol)
        except NonFinite:
            break
        if not _kkt_ok(kkt, obj.grad(x), tol, feas_tol):
            # the SciPy method stopped on a small change in f short of the KKT tolerance: continue once
            # from its point with the f-change test off (a least-squares model then reaches 1e-12, not 1e-5)
            if restarts < 2 and method != "trust-constr" and res.success and kkt.feasibility <= feas_tol:
                restarts += 1
                x_start = x
                continue
            if least is None and kkt.feasibility > max(1e3 * feas_tol, 1e-4) and (ceq or cin):
                # far from feasible: before any verdict, minimize the violation itself. A feasible point
                # found there restarts the method (SLSQP on HS61 fails at a rank-deficient x0 = 0);
                # otherwise a stationary point of the violation with a positive value is the proof of
                # (local) infeasibility that INFEASIBLE claims
                least = _least_violation(ceq, cin, x, lb_np, ub_np)
                if least[1] <= feas_tol and restarts < 3:
                    restarts += 1
                    x_start = least[0]
                    continue
            break
        if convex or escapes >= 2:
            break
        # a KKT point of a nonconvex model: a direction of negative curvature of the Lagrangian along the
        # active constraints means a saddle or a maximum, not a local minimum; step along it and go on
        d = _negative_curvature(f, eq, ineq, x, kkt, lb_np, ub_np, device, dtype, derivatives=derivatives)
        nxt = None if d is None else _escape(obj, x, d, lb_np, ub_np)
        if nxt is None:
            break
        escapes += 1
        x_start = nxt

    if status in (Status.INTERRUPTED, Status.TIME_LIMIT) and best.x is not None:
        state["x"] = best.x  # the best point seen, as the contract promises (not the last iterate)
    x = state["x"]
    counts = {"f": obj.n_f, "grad": obj.n_grad}
    if ceq or cin:
        counts["jac"] = (ceq.n_jac if ceq else 0) + (cin.n_jac if cin else 0)
    try:
        kkt = _kkt(obj, ceq, cin, x, lb_np, ub_np, feas_tol)
        fx = obj.value(x)
    except NonFinite as e:
        return SolverOutput(torch.as_tensor(x, dtype=dtype, device=device), Status.NUMERICAL_ERROR,
                            message=message or str(e), iterations=state["k"], counts=counts,
                            history=budget.history, solve_time=time.perf_counter() - start)

    kkt_ok = _kkt_ok(kkt, obj.grad(x), tol, feas_tol)
    certificates = {"stationarity": kkt.stationarity, "feasibility": kkt.feasibility,
                    "complementarity": kkt.complementarity}
    _hit_limit = (res is not None and _hit_iteration_limit(method, res, max_iter)) or state["k"] >= max_iter
    if status is None:
        if fx < -1e20 or (not np.isfinite(x).all()):
            status = Status.UNBOUNDED
            message = f"{message}; the objective decreases without bound (f = {fx:.3g})"
            certificates = {}  # a stationarity residual at a run-away point certifies nothing
        elif kkt_ok:
            status = Status.OPTIMAL if convex else Status.LOCALLY_OPTIMAL
            if not convex and escapes and _negative_curvature(f, eq, ineq, x, kkt, lb_np, ub_np, device, dtype,
                                                              derivatives=derivatives) is not None:
                status = Status.SLOW_PROGRESS
                message = f"{message}; a stationary point with negative curvature (a saddle), not a local minimum"
        elif (kkt.feasibility > max(1e3 * feas_tol, 1e-4)  # clearly infeasible, not merely inexact,
              and (not _hit_limit or _stalled(state.get("viol", [])))):  # and no longer improving
            if least is None and (ceq or cin):  # the run ended at its cap before the check above
                least = _least_violation(ceq, cin, x, lb_np, ub_np)
            if least is not None and least[2]:
                status = Status.INFEASIBLE
                message = (f"{message}; no feasible point: the constraint violation has a local minimum "
                           f"{least[1]:.3g} > 0")
            else:  # not proven: a stall is not a certificate (the model may be feasible elsewhere)
                status = Status.SLOW_PROGRESS
                message = (f"{message}; no feasible point found (max violation {kkt.feasibility:.3g}), "
                           f"infeasibility not proven")
        elif _hit_limit:
            status = Status.ITERATION_LIMIT  # the iterate is kept: it is where the run stopped, not a verdict
        else:
            status = Status.SLOW_PROGRESS
            message = f"{message}; KKT stationarity {kkt.stationarity:.3g} above tolerance"
    duals = {"eq": torch.as_tensor(kkt.lam), "ineq": torch.as_tensor(kkt.mu),
             "lb": torch.as_tensor(kkt.z_lb), "ub": torch.as_tensor(kkt.z_ub)}
    return SolverOutput(
        x=torch.as_tensor(x, dtype=dtype, device=device), status=status, objective=fx,
        iterations=state["k"] if restarts or escapes else int(getattr(res, "nit", state["k"]) or state["k"]),
        message=message, duals=duals, certificates=certificates,
        counts=counts, history=budget.history, solve_time=time.perf_counter() - start,
        extras={"scipy_status": getattr(res, "status", None), "restarts": restarts, "curvature_escapes": escapes})


class _Best:
    """The best point seen: least objective among points within the feasibility tolerance, else least
    violation (what an interrupted or timed-out run hands back)."""

    def __init__(self, feas_tol: float):
        self.feas_tol, self.x, self.key = feas_tol, None, None

    def offer(self, x, f, viol) -> None:
        key = (0, f) if viol <= self.feas_tol else (1, viol)
        if np.isfinite(f) and (self.key is None or key < self.key):
            self.x, self.key = np.array(x, dtype=float), key


def _least_violation(ceq, cin, x, lb, ub, rtol: float = 1e-6):
    """(x_r, ‖v(x_r)‖∞, proven): a local minimizer x_r of φ = ½‖c_E‖² + ½‖max(c_I, 0)‖² within the bounds.

    L-BFGS-B starts from x nudged by a small fixed perturbation, so a symmetric saddle of φ (HS61 at x = 0,
    where ∂φ/∂x₂ = ∂φ/∂x₃ = 0 on a whole plane) is left rather than mistaken for a minimum. ``proven``: φ is
    stationary there with a positive value (projected ‖Jᵀv‖ ≤ rtol·max(‖J‖_F, 1)·‖v‖), which certifies local
    infeasibility; a run stopped by its cap proves nothing.
    """
    def parts(z):
        vs, Js = [], []
        if ceq:
            vs.append(ceq.value(z))
            Js.append(ceq.jac(z))
        if cin:
            c = cin.value(z)
            vs.append(np.maximum(c, 0.0))
            Js.append(cin.jac(z) * (c > 0)[:, None])
        return np.concatenate(vs), np.vstack(Js)

    def phi(z):
        v, J = parts(z)
        return 0.5 * float(v @ v), J.T @ v

    rng = np.random.default_rng(0)
    z0 = np.clip(x + 1e-3 * (1.0 + np.abs(x)) * rng.standard_normal(x.size), lb, ub)
    bounds = so.Bounds(lb, ub) if np.isfinite(lb).any() or np.isfinite(ub).any() else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = so.minimize(phi, z0, jac=True, method="L-BFGS-B", bounds=bounds,
                            options={"maxiter": 500, "ftol": 0.0, "gtol": 1e-14})
        xr = np.asarray(r.x, dtype=float)
        v, J = parts(xr)
    except NonFinite:
        return x, float("inf"), False
    g = J.T @ v
    g = np.where(((xr <= lb) & (g > 0)) | ((xr >= ub) & (g < 0)), 0.0, g)  # a bound holding it back is fine
    vnorm = float(np.linalg.norm(v))
    proven = vnorm > 0 and float(np.linalg.norm(g)) <= rtol * max(float(np.linalg.norm(J)), 1.0) * vnorm
    return xr, float(np.abs(v).max(initial=0.0)), proven


def _stalled(viol: list, window: int = 10) -> bool:
    """The constraint violation made no progress over the last `window` iterations (of at least 2·window)."""
    return len(viol) >= 2 * window and min(viol[-window:]) >= 0.99 * min(viol[:-window])


def _kkt(obj, ceq, cin, x, lb, ub, feas_tol):
    return _multipliers(x, obj.grad(x), ceq.value(x) if ceq else None, ceq.jac(x) if ceq else None,
                        cin.value(x) if cin else None, cin.jac(x) if cin else None, lb, ub, feas_tol)


def _kkt_ok(kkt, g, tol, feas_tol) -> bool:
    gscale = 1.0 + float(np.abs(g).max()) if g.size else 1.0
    return kkt.stationarity <= max(1e3 * tol, 1e-6) * gscale and kkt.feasibility <= feas_tol


def _negative_curvature(f, eq, ineq, x, kkt, lb, ub, device, dtype, max_n: int = 200, derivatives=None):
    """A unit direction d with dᵀ∇²L d < 0 in the null space of the active constraints' gradients (fixed
    active bounds, equalities, active inequalities), or None. Dense Hessian by autograd (or by `derivatives`,
    compiled ``eval``/``hess`` of the same functions, as `alsketch.minimize` takes them): small models only."""
    n = x.size
    if n == 0 or n > max_n:
        return None
    lam = torch.as_tensor(kkt.lam, dtype=dtype, device=device)
    mu = torch.as_tensor(kkt.mu, dtype=dtype, device=device)

    def lagrangian(z):
        val = f(z).reshape(())
        if eq is not None and lam.numel():
            val = val + (lam * eq(z).reshape(-1)).sum()
        if ineq is not None and mu.numel():
            val = val + (mu * ineq(z).reshape(-1)).sum()
        return val
    xt = torch.as_tensor(x, dtype=dtype, device=device)
    if derivatives is not None and lam.numel() + mu.numel() == derivatives.m:
        return _negative_curvature_of(derivatives, xt, x, lam, mu, lb, ub)
    try:  # the rows of the Jacobian of ∇L, in one batched reverse pass
        xg = xt.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(lagrangian(xg), xg, create_graph=True, allow_unused=True)
        H = (np.zeros((n, n)) if g is None else
             rows_of(g.reshape(-1), xg).detach().cpu().double().numpy().reshape(n, n))
    except Exception:  # noqa: BLE001 - functions autograd cannot differentiate twice: no verdict
        return None
    if not np.isfinite(H).all():
        return None
    scale = 1.0 + np.abs(x)
    free = ~((np.isfinite(lb) & (x - lb <= 1e-6 * scale)) | (np.isfinite(ub) & (ub - x <= 1e-6 * scale)))
    rows = []
    if eq is not None:
        rows.append(jacobian(eq, xt).detach().cpu().double().numpy().reshape(-1, n))
    if ineq is not None:
        c = ineq(xt).detach().cpu().double().numpy().reshape(-1)
        active = c >= -1e-6 * (1 + np.abs(c))
        if active.any():
            rows.append(jacobian(ineq, xt).detach().cpu().double().numpy().reshape(-1, n)[active])
    return _curvature_direction(H, rows, x, free)


def _negative_curvature_of(derivatives, xt, x, lam, mu, lb, ub):
    """`_negative_curvature` with the Hessian, Jacobian and rows from compiled derivatives."""
    try:
        H = derivatives.hess(xt, torch.cat([lam.reshape(-1), mu.reshape(-1)]).to(xt)).cpu().double().numpy()
        _, _, c, J = derivatives.eval(xt)
    except NonFinite:
        return None
    if not np.isfinite(H).all():
        return None
    me = lam.numel()
    c, J = c.cpu().double().numpy(), J.cpu().double().numpy()
    scale = 1.0 + np.abs(x)
    free = ~((np.isfinite(lb) & (x - lb <= 1e-6 * scale)) | (np.isfinite(ub) & (ub - x <= 1e-6 * scale)))
    rows = [J[:me]] if me else []
    active = c[me:] >= -1e-6 * (1 + np.abs(c[me:]))
    if active.any():
        rows.append(J[me:][active])
    return _curvature_direction(H, rows, x, free)


def _curvature_direction(H, rows, x, free):
    """The unit eigenvector of the reduced Hessian ZᵀHZ (Z: null space of the active rows over the free
    coordinates) with the most negative eigenvalue, mapped back; None when ZᵀHZ ⪰ -1e-6·max|λ|."""
    n = x.size
    E = np.eye(n)[:, free]
    A = np.vstack(rows)[:, free] if rows else np.zeros((0, int(free.sum())))
    Z = E @ (scipy.linalg.null_space(A) if A.shape[0] else np.eye(int(free.sum())))
    if Z.shape[1] == 0:
        return None
    w, V = np.linalg.eigh(Z.T @ H @ Z)
    if w[0] >= -1e-6 * max(1.0, float(np.abs(w).max())):
        return None
    d = Z @ V[:, 0]
    return d / np.linalg.norm(d)


def _escape(obj, x, d, lb, ub):
    """A point along ±d (clipped to the bounds) with a lower objective, or None."""
    fx = obj.value(x)
    for alpha in (1.0, 0.1, 0.01, 1e-3):
        step = alpha * (1.0 + float(np.abs(x).max()))
        for s in (1.0, -1.0):
            z = np.clip(x + s * step * d, lb, ub)
            try:
                if obj.value(z) < fx - 1e-12 * (1 + abs(fx)):
                    return z
            except NonFinite:
                continue
    return None


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


def _run(method, obj, ceq, cin, x0, bounds, max_iter, tol, on_iter, polish: bool = False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SciPy's warnings become statuses/messages here
        if method == "l-bfgs-b":
            return so.minimize(obj.value, x0, jac=obj.grad, method="L-BFGS-B", bounds=bounds, callback=on_iter,
                               options={"maxiter": max_iter, "gtol": tol, "ftol": 0.0 if polish else tol * 1e-3,
                                        "maxcor": 20})
        if method == "slsqp":
            cons = []
            if ceq:
                cons.append({"type": "eq", "fun": ceq.value, "jac": ceq.jac})
            if cin:  # SciPy's SLSQP wants c(x) >= 0
                cons.append({"type": "ineq", "fun": lambda x: -cin.value(x), "jac": lambda x: -cin.jac(x)})
            # SLSQP's ftol bounds the change in f, not the gradient: ftol = tol reaches stationarity of only
            # ~sqrt(tol) on a convex QP, while tol**1.5 reaches tol in a couple more iterations
            return so.minimize(obj.value, x0, jac=obj.grad, method="SLSQP", bounds=bounds, constraints=cons,
                               callback=on_iter, options={"maxiter": max_iter,
                                                         "ftol": min(tol, tol ** 1.5) * (1e-4 if polish else 1.0)})
        cons = []
        if ceq:
            cons.append(so.NonlinearConstraint(ceq.value, 0.0, 0.0, jac=ceq.jac, hess=so.BFGS()))
        if cin:
            cons.append(so.NonlinearConstraint(cin.value, -np.inf, 0.0, jac=cin.jac, hess=so.BFGS()))
        return so.minimize(obj.value, x0, jac=obj.grad, hess=so.BFGS(), method="trust-constr", bounds=bounds,
                           constraints=cons, callback=on_iter,
                           options={"maxiter": max_iter, "gtol": tol, "xtol": tol * 1e-2})
