"""Soft constraints  ->  penalty terms in the objective.

A soft constraint ``c`` with weight ρ becomes, for ``e = lhs - rhs``:

* l1 (exact penalty):  equality ρ·Σ|e|,      inequality ρ·Σ max(e, 0)
* l2 (quadratic):      equality ρ·Σ e²,      inequality ρ·Σ max(e, 0)²

The constraint is removed. `invert` reports, under the constraint's name, the derivative of its
penalty at the solution (the multiplier it acts with: ρ·sign(e) or 2ρ·e), and its violation in
``extras["soft_violation"]``.
"""
from __future__ import annotations

import numpy as np

from ..expr import atoms
from ..problem import RawSolution
from .base import Pass


def penalty_term(item):
    e, rho = item.expr, item.penalty
    if item.penalty_kind == "l2":
        inner = e if item.kind == "eq" else atoms.relu(e)
        return rho * atoms.sum_squares(inner) if e.shape else rho * atoms.square(inner)
    inner = atoms.abs(e) if item.kind == "eq" else atoms.relu(e)
    return rho * (atoms.sum(inner) if e.shape else inner)


class SoftToPenalty(Pass):
    name = "soft_to_penalty"
    normalizing = True
    cost = 0.05

    def accepts(self, problem, tags):
        return "soft" in tags.features

    def apply(self, problem):
        soft = [c for c in problem.constraints if c.soft]
        objective = problem.objective
        for item in soft:
            objective = objective + penalty_term(item)
        new = problem.with_(objective=objective, constraints=problem.hard_constraints, payload={},
                            applied=problem.applied + (self.name,))
        return new, soft

    def invert(self, solution: RawSolution, soft):
        if not solution.values:
            return solution
        from ..lower.torch import evaluate_numpy
        viol = dict(solution.extras.get("soft_violation", {}))
        for item in soft:
            e = np.asarray(evaluate_numpy(item.expr, solution.values), dtype=float)
            if item.kind == "ineq":
                viol[item.name] = np.maximum(e, 0.0)
                d = 2 * item.penalty * np.maximum(e, 0) if item.penalty_kind == "l2" else item.penalty * (e > 0)
            else:
                viol[item.name] = np.abs(e)
                d = 2 * item.penalty * e if item.penalty_kind == "l2" else item.penalty * np.sign(e)
            solution.duals[item.name] = np.asarray(d, dtype=float)
        solution.extras["soft_violation"] = viol
        return solution
PASS = SoftToPenalty()
