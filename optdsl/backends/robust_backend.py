"""Robust models that no counterpart rewrite covers:

* ``robust_cp`` — constraints *not* affine in the uncertainty (but convex in x for each fixed u): an
  adversarial cutting-plane loop — solve the master over the scenarios found so far (cvxpy), find the
  worst u for the current x (projected gradient ascent with restarts, or vertex enumeration), add it,
  repeat until the worst violation is within `tol`.
* ``robust_ccg`` — two-stage models with recourse variables (``m.recourse``):
  min_x cᵀx + max_{u∈U} min_{y ≥ 0} {dᵀy : G y ≥ h − E x − M u}, solved by column-and-constraint
  generation (Zeng & Zhao 2013): master (lower bound) and adversarial MILP subproblem (upper bound)
  through cvxpy/HiGHS; the gap is reported per iteration. The matrices are read off the model exactly
  (the model must be affine; autograd gives the coefficients).
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ModelError
from ..expr.analysis import is_affine
from ..expr.node import Uncertain
from ..lower.torch import TorchLowering
from ..passes.bounds_to_constraints import bound_constraints
from ..problem import RawSolution
from ..robust import FixedULowering, affine_coefficients, uncertain_of
from ..solvers.lazy import lazy_module
from ..solvers.robust.ccg import TwoStageProblem, ccg
from ..solvers.robust.cutting_plane import cutting_plane
from .base import Backend, Option

cp = lazy_module("cvxpy")   # imported on first use: ~0.7 s that models without a convex step skip

_FEATURES = frozenset({"robust", "bounds", "equality", "inequality", "nonsmooth"})


class RobustCuttingPlane(Backend):
    name = "robust_cp"
    structure = frozenset({"robust"})
    description = "robust constraints not affine in the uncertainty: adversarial cutting planes over cvxpy masters"
    supports = _FEATURES
    cost = 3.0
    certificates = ("feasibility (worst violation found)",)
    options = {
        "oracle": Option(str, "pga", "worst-case search", ("pga", "vertices")),
        "tol": Option(float, 1e-6, "stop when the worst violation found is below this"),
        "max_iter": Option(int, 50, "cutting-plane rounds"),
        "time_limit": Option(float, None, "wall-clock limit in seconds"),
        "restarts": Option(int, 8, "restarts of the worst-case search"),
        "seed": Option(int, 0, "seed of the worst-case search"),
    }

    def reject_reason(self, problem, tags):
        why = super().reject_reason(problem, tags)
        if why:
            return why
        us = problem.extensions.get("robust") or ()
        if len(us) != 1:
            return "needs exactly one uncertain quantity"
        if uncertain_of(problem.objective):
            return "the objective must not depend on the uncertain quantity"
        if any(c.kind == "eq" and uncertain_of(c.expr) for c in problem.constraints):
            return "robust equality constraints are not supported"
        return None

    def solve(self, compiled, problem, options, callback):
        (u,) = problem.extensions["robust"]
        robust = [c for c in problem.constraints if uncertain_of(c.expr)]
        plain = [c for c in problem.constraints if not uncertain_of(c.expr)]
        plain += bound_constraints(problem) if problem.bounds else []
        variables = list(problem.variables)
        sizes = [v.size for v in variables]

        def master(scenarios):
            low = FixedULowering()
            low.fixed[u] = np.asarray(u.value if u.value is not None else np.zeros(u.shape))
            cons = []
            for c in plain:
                e = low.lower(c.expr)
                cons.append(e == 0 if c.kind == "eq" else e <= 0)
            for s in scenarios:
                low.fixed[u] = np.asarray(s, float).reshape(u.shape)
                cons += [low.lower(c.expr) <= 0 for c in robust]
            obj = low.lower(problem.objective)
            xs = [low.leaf(v) for v in variables]
            prob = cp.Problem(cp.Minimize(obj), cons)
            if not prob.is_dcp():
                raise ModelError("robust_cp: the master problem is not convex (DCP) for fixed uncertainty")
            return prob, _Stack(xs)

        tl = TorchLowering()

        def g(xv, ut):
            env = {v: torch.as_tensor(part, dtype=torch.float64).reshape(v.shape)
                   for v, part in zip(variables, np.split(np.asarray(xv, float).ravel(), np.cumsum(sizes)[:-1]))}
            tl_env = dict(env)
            vals = []
            for c in robust:
                tl_env[u] = ut.reshape(u.shape)
                vals.append(_eval_with_u(tl, c.expr, tl_env, u, ut).reshape(-1))
            return torch.cat(vals).max()

        center = np.asarray(u.value if u.value is not None else np.zeros(u.shape), float).reshape(-1)
        out = cutting_plane(master, g, u.within, oracle=options["oracle"], tol=options["tol"],
                            max_iter=options["max_iter"], time_limit=options["time_limit"], callback=callback,
                            initial_scenarios=[center], restarts=options["restarts"], seed=options["seed"])
        sol = RawSolution(out.status, objective=out.objective, iterations=out.iterations, message=out.message,
                          certificates=dict(out.certificates), counts=dict(out.counts), history=out.history,
                          extras={"scenarios": np.asarray(out.extras.get("scenarios", [])).tolist()})
        if out.x is not None and out.status.has_point:
            parts = np.split(np.asarray(out.x, float).ravel(), np.cumsum(sizes)[:-1])
            sol.values = {v: p.reshape(v.shape) for v, p in zip(variables, parts)}
        return sol


class _Stack:
    """Quacks like the master's x Variable: `.value` is all variables' values concatenated."""

    def __init__(self, xs):
        self.xs = xs

    @property
    def value(self):
        if any(x.value is None for x in self.xs):
            return None
        return np.concatenate([np.asarray(x.value, float).ravel() for x in self.xs])


def _eval_with_u(tl: TorchLowering, expr, env, u: Uncertain, ut: torch.Tensor):
    # the torch lowering reads uncertain leaves as parameters; give it the tensor being maximized over
    from ..lower._walk import lower
    from ..lower.torch import TORCH
    return lower(expr, lambda leaf: ut.reshape(u.shape) if leaf is u else tl.tensor(leaf, env), TORCH)


class RobustCCG(Backend):
    name = "robust_ccg"
    structure = frozenset({"robust", "recourse"})
    description = "two-stage robust models with recourse: column-and-constraint generation (cvxpy/HiGHS)"
    supports = _FEATURES | {"recourse", "integer"}   # integer first-stage variables: MILP masters
    cost = 2.0
    certificates = ("gap (upper - lower bound)",)
    options = {
        "tol": Option(float, 1e-6, "stop when upper - lower bound is below this (relative)"),
        "max_iter": Option(int, 50, "CCG rounds"),
        "time_limit": Option(float, None, "wall-clock limit in seconds"),
        "subproblem": Option(str, "auto", "adversarial subproblem", ("auto", "vertices", "milp")),
        "cvxpy_solver": Option(str, None, "cvxpy solver for master and subproblem (default HiGHS)"),
    }

    def reject_reason(self, problem, tags):
        why = super().reject_reason(problem, tags)
        if why:
            return why
        us = problem.extensions.get("robust") or ()
        if len(us) != 1:
            return "needs exactly one uncertain quantity"
        ys = problem.extensions["recourse"]
        for y in ys:
            if getattr(y, "integer", False):
                return (f"recourse variable {y.name!r} is integer: CCG needs an LP second stage (nearest supported "
                        "form: continuous recourse, integer first-stage variables)")
            if y.lb is None or np.any(y.lb != 0):
                return f"recourse variable {y.name!r} needs lb=0 (the standard form y >= 0)"
        allv = list(problem.variables) + list(us)
        if not is_affine(problem.objective, allv) or uncertain_of(problem.objective):
            return "the objective must be affine in the variables and free of uncertainty"
        for c in problem.constraints:
            if not is_affine(c.expr, allv):
                return f"constraint {c.name!r} is not affine (jointly in variables and uncertainty)"
        return None

    def solve(self, compiled, problem, options, callback):
        (u,) = problem.extensions["robust"]
        ys = list(problem.extensions["recourse"])
        xs = [v for v in problem.variables if v not in set(ys)]
        # objective: cᵀx + dᵀy
        (cx, dy), f0 = affine_coefficients([problem.objective], [xs, ys], {})
        rows_first, rows_second = [], []
        for c in problem.constraints:
            target = rows_second if (set(c.expr.variables()) & set(ys) or uncertain_of(c.expr)) else rows_first
            target.append(c)
            if c.kind == "eq":
                target.append(("neg", c))
        for y in ys:
            if y.ub is not None:
                rows_second.append(("ub", y))
        G, h, E, M = _second_stage(rows_second, xs, ys, u)
        A = b = None
        if rows_first:
            A, b = _first_stage(rows_first, xs)
        lb = np.concatenate([np.full(v.size, -np.inf) if v.lb is None else v.lb.ravel() for v in xs])
        ub = np.concatenate([np.full(v.size, np.inf) if v.ub is None else v.ub.ravel() for v in xs])
        integer = np.concatenate([np.full(v.size, bool(getattr(v, "integer", False))) for v in xs])
        prob = TwoStageProblem(c=cx[0], d=dy[0], G=G, h=h, E=E, M=M, uset=u.within, A=A, b=b, lb=lb, ub=ub,
                               integer=integer if integer.any() else None)
        kw = {"tol": options["tol"], "max_iter": options["max_iter"], "time_limit": options["time_limit"],
              "callback": callback}
        if options["subproblem"] != "auto":
            kw["subproblem"] = options["subproblem"]
        if options["cvxpy_solver"]:
            kw["solver"] = options["cvxpy_solver"]
        out = ccg(prob, **kw)
        sol = RawSolution(out.status, objective=None if out.objective is None else out.objective + float(f0[0]),
                          iterations=out.iterations, message=out.message, certificates=dict(out.certificates),
                          counts=dict(out.counts), history=out.history)
        if out.x is not None and out.status.has_point:
            xv = np.asarray(out.x, float).ravel()
            parts = np.split(xv, np.cumsum([v.size for v in xs])[:-1])
            sol.values = {v: p.reshape(v.shape) for v, p in zip(xs, parts)}
            wu = out.extras.get("worst_case_u")
            if wu is not None:
                sol.extras["worst_case_u"] = np.asarray(wu).tolist()
            # the recourse for the worst case found (wait-and-see decisions depend on u)
            ywc = out.extras.get("y_worst")
            if ywc is not None:
                yparts = np.split(np.asarray(ywc, float).ravel(), np.cumsum([v.size for v in ys])[:-1])
                sol.values.update({v: p.reshape(v.shape) for v, p in zip(ys, yparts)})
        return sol


def _second_stage(rows, xs, ys, u):
    """c(x, y, u) ≤ 0  ⇔  G y ≥ h − E x − M u with G = −C_y, E = −C_x, M = −C_u, h = c(0)."""
    Gs, hs, Es, Ms = [], [], [], []
    for r in rows:
        if isinstance(r, tuple) and r[0] == "ub":
            y = r[1]
            n_y = sum(v.size for v in ys)
            off = sum(v.size for v in ys[:ys.index(y)])
            G = np.zeros((y.size, n_y))
            G[np.arange(y.size), off + np.arange(y.size)] = -1.0
            Gs.append(G)
            hs.append(-y.ub.ravel())
            Es.append(np.zeros((y.size, sum(v.size for v in xs))))
            Ms.append(np.zeros((y.size, u.size)))
            continue
        sign, c = (-1.0, r[1]) if isinstance(r, tuple) else (1.0, r)
        (Cx, Cy, Cu), c0 = affine_coefficients([c.expr], [xs, ys, [u]], {})
        Gs.append(-sign * Cy)
        Es.append(-sign * Cx)
        Ms.append(-sign * Cu)
        hs.append(sign * c0)
    return np.vstack(Gs), np.concatenate(hs), np.vstack(Es), np.vstack(Ms)


def _first_stage(rows, xs):
    """c(x) ≤ 0  ⇔  A x ≥ b with A = −C_x, b = c(0)."""
    As, bs = [], []
    for r in rows:
        sign, c = (-1.0, r[1]) if isinstance(r, tuple) else (1.0, r)
        (Cx,), c0 = affine_coefficients([c.expr], [xs], {})
        As.append(-sign * Cx)
        bs.append(sign * c0)
    return np.vstack(As), np.concatenate(bs)


BACKENDS = [RobustCuttingPlane(), RobustCCG()]
