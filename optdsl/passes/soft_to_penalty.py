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
import torch

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
        return new, (soft, problem)

    def invert(self, solution: RawSolution, inverse):
        soft, original = inverse
        if not solution.values:
            return solution
        from ..lower.torch import evaluate_numpy
        viol = dict(solution.extras.get("soft_violation", {}))
        kinks = []
        for item in soft:
            e = np.asarray(evaluate_numpy(item.expr, solution.values), dtype=float)
            if item.kind == "ineq":
                viol[item.name] = np.maximum(e, 0.0)
                d = 2 * item.penalty * np.maximum(e, 0) if item.penalty_kind == "l2" else item.penalty * (e > 0)
            else:
                viol[item.name] = np.abs(e)
                d = 2 * item.penalty * e if item.penalty_kind == "l2" else item.penalty * np.sign(e)
            d = np.asarray(d, dtype=float)
            if item.penalty_kind == "l1":
                at_kink = np.abs(e) <= 1e-7 * (1 + np.abs(e).max(initial=0))
                if at_kink.any():
                    kinks.append((item, np.flatnonzero(at_kink.reshape(-1))))
            solution.duals[item.name] = d
        if kinks:
            _kink_multipliers(original, solution, kinks)
        solution.extras["soft_violation"] = viol
        return solution


def _kink_multipliers(problem, solution, kinks) -> None:
    """At the kink of an exact (l1) penalty the multiplier is any subgradient element, ρ·[0, 1] (≤) or
    ρ·[−1, 1] (==): pick the one that makes the Lagrangian stationary (bounded least squares), so the
    reported dual is the true KKT multiplier of the soft constraint there."""
    from scipy.optimize import lsq_linear

    from ..certificates import constraint_jacobian, lagrangian_gradient
    from ..graph import analyze
    if "smooth" not in analyze(problem.with_(constraints=problem.hard_constraints, payload={})).properties:
        return
    g0 = lagrangian_gradient(problem, solution.values, solution.duals, skip=frozenset(i.name for i, _ in kinks))
    # add back the non-kink rows of the kinked constraints
    cols, lo, hi = [], [], []
    for item, rows in kinks:
        J = constraint_jacobian(problem, solution.values, item.expr, range(item.expr.size))
        d = solution.duals[item.name].reshape(-1).copy()
        d[rows] = 0.0
        g0 = g0 + torch.as_tensor(J.T @ d)
        cols.append(J[rows].T)
        lo += [0.0 if item.kind == "ineq" else -item.penalty] * len(rows)
        hi += [item.penalty] * len(rows)
    A = np.hstack(cols)
    sol = lsq_linear(A, -g0.numpy(), bounds=(np.array(lo), np.array(hi))).x
    k = 0
    for item, rows in kinks:
        d = solution.duals[item.name].reshape(-1).copy()
        d[rows] = sol[k:k + len(rows)]
        k += len(rows)
        solution.duals[item.name] = d.reshape(item.expr.shape)
PASS = SoftToPenalty()
