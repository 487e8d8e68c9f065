"""Robust constraints affine in the uncertainty  ->  their deterministic counterparts, as a cvxpy problem.

Source: min f(x) s.t. c(x, u) ≤ 0 for all u ∈ U (each row), with c affine in u, convex in x.
Writing c(x, u) = g(x) + Q(x)ᵀu (exact, see `optdsl.robust`), the constraint holds for all u ∈ U iff
g(x) + σ_U(Q(x)) ≤ 0, σ_U the support function of U: box → g + cᵀQ + ‖PᵀQ‖₁ (LP), ellipsoid →
g + cᵀQ + ρ‖PᵀQ‖₂ (SOC), budget and polyhedron → an LP through duality (Ben-Tal, El Ghaoui &
Nemirovski 2009). An objective affine in u is replaced by its worst case the same way.
Target: a cvxpy problem (``cvxpy_form``); the multiplier of each robust counterpart row is reported
under the user's constraint name.
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..expr.analysis import is_affine
from ..robust import FixedULowering, affine_parts, uncertain_of
from ..solvers.lazy import lazy_module
from ..solvers.robust.counterpart import robust_counterpart, worst_case_expression
from .base import Pass
from .bounds_to_constraints import bound_constraints
from .convex_to_cvxpy import ConvexToCvxpy, CvxpyForm

cp = lazy_module("cvxpy")   # imported on first use: ~0.7 s that models without a convex step skip


class _Rows:
    """A user constraint made of several cvxpy constraints (one per row): duals stacked back."""

    def __init__(self, cons, shape):
        self.cons, self.shape = cons, shape

    @property
    def dual_value(self):
        vals = [c.dual_value for c in self.cons]
        if any(v is None for v in vals):
            return None
        return np.asarray([float(np.asarray(v).reshape(-1)[0]) for v in vals]).reshape(self.shape)


def robust_rows(problem):
    """Constraints that read an uncertain quantity, or None with the reason they cannot be rewritten."""
    out = []
    for c in problem.constraints:
        us = uncertain_of(c.expr)
        if not us:
            continue
        if len(us) > 1:
            return None, f"constraint {c.name!r} reads several uncertain quantities"
        if c.kind == "eq":
            return None, f"equality constraint {c.name!r} depends on uncertain {us[0].name!r}"
        if c.soft:
            return None, f"soft constraint {c.name!r} depends on an uncertain quantity"
        if not is_affine(c.expr, us):
            return None, f"constraint {c.name!r} is not affine in {us[0].name!r}"
        out.append((c, us[0]))
    return out, None


class RobustToCounterpart(Pass):
    name = "robust_to_counterpart"
    cost = 0.5

    def accepts(self, problem, tags):
        if "robust" not in tags.features or "recourse" in tags.features:
            return False
        if tags.features - {"robust", "bounds", "equality", "inequality", "nonsmooth", "integer"}:
            return False
        rows, why = robust_rows(problem)
        if rows is None:
            return False
        us = uncertain_of(problem.objective)
        return len(us) <= 1 and (not us or is_affine(problem.objective, us))

    def why_not(self, problem, tags):
        if "robust" not in tags.features or self.accepts(problem, tags):
            return None
        if "recourse" in tags.features:
            return "two-stage models (recourse variables) are solved by robust_ccg, not by a counterpart"
        rows, why = robust_rows(problem)
        if rows is None:
            return why
        us = uncertain_of(problem.objective)
        if len(us) > 1 or (us and not is_affine(problem.objective, us)):
            return "the objective is not affine in a single uncertain quantity"
        extra = sorted(tags.features - {"robust", "bounds", "equality", "inequality", "nonsmooth", "maximize", "integer"})
        return f"cannot rewrite models with {', '.join(extra)}" if extra else None

    def apply(self, problem):
        low = FixedULowering()
        for u in problem.extensions["robust"]:
            low.fixed[u] = np.zeros(u.shape)
        extra: list = []
        us = uncertain_of(problem.objective)
        if us:
            g, Q = affine_parts(low, problem.objective, us[0])
            obj, cons = worst_case_expression(g[0], cp.hstack([q[0] for q in Q]), us[0].within)
            extra += cons
        else:
            obj = low.lower(problem.objective)
        if not obj.is_convex():
            raise ModelError("the robust model's objective is not convex (DCP) after the counterpart rewrite")
        named = {}
        for c in list(problem.constraints) + (bound_constraints(problem) if problem.bounds else []):
            cu = uncertain_of(c.expr)
            if not cu:
                e = low.lower(c.expr)
                named[c.name] = (e == 0) if c.kind == "eq" else (e <= 0)
                continue
            u = cu[0]
            g, Q = affine_parts(low, c.expr, u)
            rows = []
            for i in range(max(1, c.expr.size)):
                cons = robust_counterpart(g[i], cp.hstack([q[i] for q in Q]), 0.0, u.within)
                rows.append(cons[0])
                extra += cons[1:]
            named[c.name] = _Rows(rows, c.expr.shape)
        flat = []
        for v in named.values():
            flat += v.cons if isinstance(v, _Rows) else [v]
        for v in problem.variables:
            low.leaf(v)
        prob = cp.Problem(cp.Minimize(obj), flat + extra)
        if not prob.is_dcp():
            raise ModelError("the robust counterpart is not convex (DCP): a constraint is not convex in the "
                             "decision variables for fixed uncertainty")
        form = CvxpyForm(prob, low, named)
        # the rewritten problem exists only as cvxpy objects: its Expr constraints still read u, so no
        # other backend may consume it ("cvxpy_lowered" is a feature only the cvxpy backend handles)
        ext = {**{k: v for k, v in problem.extensions.items() if k != "robust"}, "cvxpy_lowered": True}
        return problem.with_(payload={"cvxpy": form}, extensions=ext, applied=problem.applied + (self.name,)), form

    def invert(self, solution, form):
        return ConvexToCvxpy().invert(solution, form)


PASS = RobustToCounterpart()
