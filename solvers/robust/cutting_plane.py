"""Adversarial cutting planes for robust constraints that are not affine in the uncertainty.

Robust problem: min f(x) s.t. x ∈ X, g(x, u) ≤ 0 for all u ∈ U. The loop (Mutapcic & Boyd, "Cutting-set methods
for robust convex optimization with pessimizing oracles", Optim. Methods Softw. 24, 2009) keeps a finite
scenario list S_k and repeats

1. master: x_k = argmin {f(x) : x ∈ X, g(x, u) ≤ 0 ∀u ∈ S_k} (a relaxation: its value is a lower bound);
2. pessimising oracle: u_k ≈ argmax_{u∈U} g(x_k, u), violation v_k = g(x_k, u_k);
3. stop when v_k ≤ tol (x_k is robust feasible up to tol, hence optimal up to the oracle's accuracy),
   else S_{k+1} = S_k ∪ {u_k}.

Oracles: ``"pga"`` — projected gradient ascent with backtracking and restarts on the normalised coordinates z of
u = c + P z (projection onto the ∞-ball, the 2-ball or the budget set; for a Polyhedron, a cvxpy QP projection);
``"vertices"`` — enumeration, exact when g(x, ·) is convex and U is a small polytope; ``"exact"`` — a cvxpy
maximisation, exact when g(x, ·) is concave; or any callable ``oracle(x) -> u``. The final status is OPTIMAL only
with an exact oracle; with "pga" it is LOCALLY_OPTIMAL (the worst case is found by a local method).
"""
from __future__ import annotations

import math
import time
from typing import Callable, Optional, Union

import numpy as np
import torch

from ..common import Budget, Callback, SolverOutput, Status
from ..lazy import lazy_module
from .sets import Polyhedron, UncertaintySet, _Affine

cp = lazy_module("cvxpy")   # imported on first use: ~0.7 s that models without a convex step skip

__all__ = ["cutting_plane", "maximize_over_set"]


def _g_value(g, x, u) -> float:
    val = g(x, torch.as_tensor(u, dtype=torch.float64))
    return float(val.item() if isinstance(val, torch.Tensor) else val)


def _poly_projector(uset: Polyhedron):
    p = cp.Parameter(uset.dim)
    u = cp.Variable(uset.dim)
    prob = cp.Problem(cp.Minimize(cp.sum_squares(u - p)), uset.constraints(u))

    def project(v):
        p.value = v
        prob.solve(solver="CLARABEL")
        return np.array(u.value) if u.value is not None else uset.point()
    return project


def maximize_over_set(fun: Callable, uset: UncertaintySet, *, restarts: int = 8, steps: int = 100,
                      seed: int = 0, step0: float = 1.0) -> tuple[np.ndarray, float, int]:
    """Projected gradient ascent of a torch-differentiable ``fun(u) -> scalar`` over U, with restarts.

    Starts: the centre, the linearised worst case ``uset.worst_case(∇fun(centre))`` and random samples of U.
    Each step is accepted only if it increases ``fun`` (backtracking halves the step), so every run is monotone.
    Returns (best u, best value, function evaluations).
    """
    affine = isinstance(uset, _Affine)
    project_poly = None if affine else _poly_projector(uset)
    evals = 0

    def value_grad(z):
        nonlocal evals
        evals += 1
        zt = torch.as_tensor(z, dtype=torch.float64).requires_grad_(True)
        ut = (torch.as_tensor(uset.center) + torch.as_tensor(uset.P) @ zt) if affine else zt
        val = fun(ut)
        if not isinstance(val, torch.Tensor) or val.numel() != 1:
            raise TypeError("the constraint function must return a scalar torch tensor")
        (grad,) = torch.autograd.grad(val, zt, allow_unused=True)
        grad = np.zeros_like(z) if grad is None else grad.detach().numpy()
        return float(val.detach()), grad

    def project(z):
        return uset.project_z(z[None, :])[0] if affine else project_poly(z)

    def to_coords(u):  # u-space point -> the ascent coordinates
        return uset._z_from_u(u) if affine else u

    c = uset.point()
    _, g0 = value_grad(to_coords(c))
    if affine:
        g0 = np.linalg.lstsq(uset.P.T, g0, rcond=None)[0]  # any v with Pᵀv = ∇_z gives the same maximiser
    starts = [c, uset.worst_case(g0 if np.any(g0) else np.ones(uset.dim))]
    starts += list(uset.sample(max(0, restarts - 2), seed=seed))
    best_u, best_v = c, -math.inf
    for u_start in starts:
        z = project(np.asarray(to_coords(u_start), dtype=float))
        val, grad = value_grad(z)
        step = step0
        for _ in range(steps):
            gn = np.linalg.norm(grad)
            if gn < 1e-12 or step < 1e-10:
                break
            z_new = project(z + step * grad / gn)  # normalised direction: step is a length in z-space
            v_new, g_new = value_grad(z_new)
            if v_new > val + 1e-15:
                z, val, grad = z_new, v_new, g_new
                step *= 1.5
            else:
                step *= 0.5
        u = uset.from_z(z) if affine else z
        if val > best_v:
            best_u, best_v = u, val
    return np.asarray(best_u, dtype=float), best_v, evals


def cutting_plane(master: Callable[[list], tuple], g: Callable, uset: UncertaintySet, *,
                  oracle: Union[str, Callable] = "pga", g_cvx: Optional[Callable] = None, tol: float = 1e-6,
                  max_iter: int = 50, time_limit: Optional[float] = None, callback: Optional[Callback] = None,
                  initial_scenarios=None, restarts: int = 8, steps: int = 100, seed: int = 0,
                  solver: Optional[str] = None) -> SolverOutput:
    """Solve min f(x) s.t. g(x, u) ≤ 0 ∀u ∈ U by adding worst-case scenarios.

    Args:
        master: ``master(scenarios) -> (cvxpy Problem, x Variable)`` building the problem with the constraint
            imposed for each scenario in the list (numpy vectors); it is re-solved every iteration.
        g: ``g(x, u) -> scalar``; x is the master's ``x.value`` (numpy), u a float64 torch tensor of shape
            (uset.dim,); it must be differentiable in u for the "pga" oracle.
        oracle: "pga" | "vertices" | "exact" | callable ``oracle(x) -> u``.
        g_cvx: for oracle="exact": ``g_cvx(x, u_var) -> cvxpy expression`` concave in u.
        tol: stop when the worst violation found is ≤ tol.
    Returns:
        SolverOutput with x (numpy), objective (master value), history rows with ``objective`` and
        ``violation`` per iteration, certificates {"feasibility": max(0, final violation)},
        extras {"scenarios", "worst_case_u"}.
    """
    if not isinstance(uset, UncertaintySet):
        raise TypeError(f"uset must be an UncertaintySet, got {type(uset).__name__}")
    if not callable(master) or not callable(g):
        raise TypeError("master and g must be callables")
    if isinstance(oracle, str) and oracle not in ("pga", "vertices", "exact"):
        raise ValueError(f"oracle must be 'pga', 'vertices', 'exact' or a callable, got {oracle!r}")
    if oracle == "exact" and g_cvx is None:
        raise ValueError("oracle='exact' needs g_cvx(x, u_var) returning a cvxpy expression concave in u")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    verts = uset.vertices() if oracle == "vertices" else None
    scen = [] if initial_scenarios is None else [np.array(u, dtype=float) for u in initial_scenarios]
    if not scen:
        scen = [uset.point()]
    t0 = time.perf_counter()
    budget = Budget(max_iter, time_limit, callback)
    status, msg, x_val, obj, viol, u_new = None, "", None, None, math.inf, None
    counts = {"master": 0, "f": 0}
    for k in budget:
        prob, x = master(list(scen))
        try:
            prob.solve(solver=solver)
        except cp.SolverError as exc:
            status, msg = Status.NUMERICAL_ERROR, f"master solve failed: {exc}"
            break
        counts["master"] += 1
        if prob.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            status, msg = Status.INFEASIBLE, "master problem infeasible: the robust problem is infeasible"
            break
        if prob.status in (cp.UNBOUNDED, cp.UNBOUNDED_INACCURATE) or x.value is None:
            status, msg = Status.UNBOUNDED if x.value is None else Status.NUMERICAL_ERROR, \
                f"master problem {prob.status}"
            break
        x_val, obj = np.array(x.value, dtype=float), float(prob.value)
        if callable(oracle):
            u_new = np.asarray(oracle(x_val), dtype=float)
            viol = _g_value(g, x_val, u_new)
        elif oracle == "vertices":
            vals = [_g_value(g, x_val, v) for v in verts]
            counts["f"] += len(vals)
            u_new, viol = verts[int(np.argmax(vals))], float(np.max(vals))
        elif oracle == "exact":
            u = cp.Variable(uset.dim)
            inner = cp.Problem(cp.Maximize(g_cvx(x_val, u)), uset.constraints(u))
            inner.solve()
            if u.value is None:
                status, msg = Status.NUMERICAL_ERROR, f"inner maximisation {inner.status}"
                break
            u_new = np.array(u.value)
            viol = _g_value(g, x_val, u_new)
        else:
            u_new, viol, ne = maximize_over_set(lambda ut: g(x_val, ut), uset, restarts=restarts, steps=steps,
                                                seed=seed + k)
            counts["f"] += ne
        if not math.isfinite(viol):
            status, msg = Status.NUMERICAL_ERROR, f"g(x, u) is not finite at iteration {k}"
            break
        if budget.report(k, x=x_val, objective=obj, violation=viol, scenarios=len(scen)):
            break
        if viol <= tol:
            exact = oracle in ("vertices", "exact")
            status = Status.OPTIMAL if exact else Status.LOCALLY_OPTIMAL
            msg = (f"worst violation {viol:.3g} <= tol={tol:g} after {k + 1} iterations"
                   + ("" if exact else " (worst case found by a local oracle: not certified)"))
            break
        scen.append(u_new)
    status = status or budget.status or Status.ITERATION_LIMIT
    return SolverOutput(x=x_val, status=status, objective=obj, iterations=len(budget.history),
                        message=msg or f"{status.value}: last violation {viol:.3g}",
                        certificates={"feasibility": max(0.0, float(viol))} if math.isfinite(viol) else {},
                        counts=counts, history=budget.history, solve_time=time.perf_counter() - t0,
                        extras={"scenarios": np.array(scen), "worst_case_u": u_new})
