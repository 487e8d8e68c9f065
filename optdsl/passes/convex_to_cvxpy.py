"""A DCP-convex problem  ->  a `cvxpy.Problem` (every variable, parameter and named constraint mapped).

Source: min f(x) s.t. h(x) = 0, g(x) ≤ 0, lb ≤ x ≤ ub with f, g convex and h affine under DCP rules.
Target: the same problem as cvxpy objects; optdsl Parameters become cvxpy Parameters, so changing
``param.value`` re-solves without rebuilding (DPP). Bounds become constraints named ``"x.lb"``/``"x.ub"``.
`invert` reads primal values from the cvxpy variables and each constraint's ``dual_value`` back under
the user's name (cvxpy uses the same sign convention as optdsl: L = f + λᵀh + μᵀg, μ ≥ 0).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..expr.batching import batch_constraints
from ..lower.cvxpy import CvxpyLowering
from ..problem import RawSolution
from ..solvers.common import Status
from ..solvers.lazy import lazy_module
from .base import Pass
from .bounds_to_constraints import bound_constraints

cp = lazy_module("cvxpy")   # imported on first use: ~0.7 s that models without a convex step skip

_HANDLED = frozenset({"bounds", "equality", "inequality", "nonsmooth", "integer", "psd", "matrix_structure"})


@dataclass
class CvxpyForm:
    problem: cp.Problem
    lowering: CvxpyLowering
    constraints: dict  # user name -> cvxpy constraint
    shapes: dict = None  # user name -> the constraint's shape (cvxpy returns scalars' duals as (1,))
    members: dict = None  # user name -> (cvxpy constraint of its batch, entry): loop-built scalar rows

    def refresh(self) -> None:
        self.lowering.refresh_parameters()


class _DeferredForm(CvxpyForm):
    """A `CvxpyForm` whose cvxpy problem is built on first use of any of its parts (once, thread-safe)."""

    def __init__(self, build):  # noqa: D107 - the dataclass fields are read through the built form
        self._build, self._form, self._guard = build, None, threading.Lock()

    def built(self) -> CvxpyForm:
        if self._form is None:
            with self._guard:
                if self._form is None:
                    self._form = self._build()
        return self._form

    problem = property(lambda self: self.built().problem)
    lowering = property(lambda self: self.built().lowering)
    constraints = property(lambda self: self.built().constraints)
    shapes = property(lambda self: self.built().shapes)
    members = property(lambda self: self.built().members)

    def refresh(self) -> None:
        self.built().refresh()

    def __repr__(self) -> str:
        return f"<cvxpy form, {'built' if self._form is not None else 'not built yet'}>"


class ConvexToCvxpy(Pass):
    name = "convex_to_cvxpy"
    cost = 0.5
    keeps_dcp = True  # the same objective and constraints

    def accepts(self, problem, tags):
        return ("convex" in tags.properties and "cvxpy_form" not in tags.properties
                and tags.features <= _HANDLED)

    def apply(self, problem):
        # built when first read (the cvxpy backend's solve): dispatch walks this rewrite for every DCP model,
        # and for most smooth ones another backend wins, so building the cvxpy problem here would be wasted
        form = _DeferredForm(lambda: self._build(problem))
        payload = {"cvxpy": form}
        return problem.with_(payload=payload, applied=problem.applied + (self.name,)), form

    def _build(self, problem) -> CvxpyForm:
        low = CvxpyLowering()
        objective = cp.Minimize(low.lower(problem.objective))
        items = list(problem.constraints) + (bound_constraints(problem) if problem.bounds else [])
        cons, members, rows = {}, {}, []
        for batch in batch_constraints(items):  # scalar rows of one form (loop-built) become one vector row
            e = low.lower(batch.expr)
            c = (e == 0) if batch.kind == "eq" else (e >> 0) if batch.kind == "psd" else (e <= 0)
            rows.append(c)
            if batch.batched:
                members.update({item.name: (c, i) for i, item in enumerate(batch.items)})
            else:
                cons[batch.items[0].name] = c
        for v in problem.variables:  # variables absent from every expression still get a cvxpy twin
            low.leaf(v)
        return CvxpyForm(cp.Problem(objective, rows), low, cons, {item.name: item.expr.shape for item in items},
                         members)

    def invert(self, solution: RawSolution, form: CvxpyForm):
        # Ctrl-C inside cvxpy leaves no point: its variables still hold the previous solve's values
        if solution.status.has_point and solution.status != Status.INTERRUPTED and not solution.values:
            for v, cv in form.lowering.variables.items():
                if cv.value is not None:
                    solution.values[v] = np.asarray(cv.value, dtype=float).reshape(v.shape)
            for name, c in form.constraints.items():
                if c.dual_value is not None:
                    d = np.asarray(c.dual_value, dtype=float)
                    shape = (form.shapes or {}).get(name)
                    solution.duals[name] = d.reshape(shape) if shape is not None and d.size == int(np.prod(shape)) else d
            for name, (c, i) in (form.members or {}).items():
                if c.dual_value is not None:
                    solution.duals[name] = np.asarray(np.ravel(c.dual_value)[i], dtype=float)
        return solution
PASS = ConvexToCvxpy()
