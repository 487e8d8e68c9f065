"""Variable bounds  ->  inequality constraints named ``"<var>.lb"`` and ``"<var>.ub"``.

``lb ≤ x`` becomes ``lb - x ≤ 0`` and ``x ≤ ub`` becomes ``x - ub ≤ 0`` over the finite entries only,
for backends without native bounds. Their multipliers come back under those names.
"""
from __future__ import annotations

import numpy as np

from ..expr.node import Constant
from ..problem import ConstraintItem
from .base import Pass


def bound_constraints(problem) -> list[ConstraintItem]:
    items = []
    for v in problem.variables:
        for which, b in (("lb", v.lb), ("ub", v.ub)):
            if b is None:
                continue
            if b.size and not any(b.strides):  # one scalar broadcast over a large variable: keep it a scalar
                bound = Constant(float(b.flat[0]), name=f"{v.name}.{which}")
                items.append(ConstraintItem(f"{v.name}.{which}", "ineq", bound - v if which == "lb" else v - bound))
                continue
            finite = np.isfinite(b)
            if not finite.any():
                continue
            if finite.all():
                lhs, bound = v, Constant(b, name=f"{v.name}.{which}")
            else:
                key = np.nonzero(finite) if v.ndim > 1 else np.nonzero(finite)[0]
                lhs, bound = v[key], Constant(b[finite], name=f"{v.name}.{which}")
            expr = bound - lhs if which == "lb" else lhs - bound
            items.append(ConstraintItem(f"{v.name}.{which}", "ineq", expr))
    return items


class BoundsToConstraints(Pass):
    name = "bounds_to_constraints"
    cost = 0.2
    keeps_dcp = True  # lb - x <= 0 and x - ub <= 0 are affine

    def accepts(self, problem, tags):
        return "bounds" in tags.features

    def apply(self, problem):
        return problem.with_(constraints=problem.constraints + tuple(bound_constraints(problem)), bounds=False,
                             payload={}, applied=problem.applied + (self.name,)), None
PASS = BoundsToConstraints()
