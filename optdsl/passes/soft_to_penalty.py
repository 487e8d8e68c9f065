"""Soft constraints  ->  penalty terms in the objective.

A soft constraint ``c`` with weight ρ becomes, for ``e = lhs - rhs``:

* l1 (exact penalty):  equality ρ·Σ|e|,      inequality ρ·Σ max(e, 0)
* l2 (quadratic):      equality ρ·Σ e²,      inequality ρ·Σ max(e, 0)²

The constraint is removed. `invert` reports, under the constraint's name, the derivative of its
penalty at the solution (the multiplier it acts with: ρ·sign(e) or 2ρ·e), and its violation in
``extras["soft_violation"]``.

Inside a level (``level.subject_to(c, penalty=ρ)``) the follower pays the penalty in its own objective,
written in elastic form so that an LP/QP follower stays one (and keeps smooth constraints):

    inequality  e <= t,  t >= 0,          + ρ·Σt  (l1)  or  + ρ·Σt²  (l2)
    equality    e = t⁺ − t⁻,  t± >= 0,    + ρ·Σ(t⁺ + t⁻)  or  + ρ·Σ(t⁺² + t⁻²)

(minimizing over t gives back ρ·max(e, 0), ρ|e|, ...). The elastic row keeps the user's name, so the
follower's multiplier for it comes back under that name; the elastic variables are dropped in `invert`.
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
        ext, elastic, level_soft = _levels_elastic(problem)
        new = problem.with_(objective=objective, constraints=problem.hard_constraints, payload={}, extensions=ext,
                            variables=problem.variables + tuple(elastic), applied=problem.applied + (self.name,))
        return new, (soft, problem, elastic, level_soft)

    def invert(self, solution: RawSolution, inverse):
        soft, original, elastic, level_soft = inverse
        elastic_at = {v.name: solution.values.get(v) for v in elastic}
        for v in elastic:
            solution.values.pop(v, None)
            solution.duals.pop(f"{v.name}.lb", None)
            solution.duals.pop(f"{v.name}.ub", None)
        if not solution.values:
            return solution
        if level_soft:
            from ..lower.torch import evaluate_numpy
            viol = dict(solution.extras.get("soft_violation", {}))
            from ..robust import uncertain_of
            for item in level_soft:
                t = elastic_at.get(f"{item.name}.elastic")
                if t is not None and uncertain_of(item.expr):   # robust: the elastic variable holds the worst case
                    viol[item.name] = np.maximum(np.asarray(t, dtype=float), 0.0)
                    continue
                e = np.asarray(evaluate_numpy(item.expr, solution.values), dtype=float)
                viol[item.name] = np.maximum(e, 0.0) if item.kind == "ineq" else np.abs(e)
            solution.extras["soft_violation"] = viol
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
        if kinks and not original.extensions.get("bilevel"):  # (a bilevel leader's Lagrangian is no certificate)
            _kink_multipliers(original, solution, kinks)
        solution.extras["soft_violation"] = viol
        return solution


def _levels_elastic(problem):
    """Levels with soft constraints rewritten in elastic form (module docstring)."""
    from dataclasses import replace

    from ..expr.node import Variable
    from ..problem import ConstraintItem
    levels = problem.extensions.get("bilevel") or ()
    if not any(c.soft for lv in levels for c in lv.constraints):
        return problem.extensions, [], []
    out, elastic, level_soft = [], [], []
    for lv in levels:
        soft = [c for c in lv.constraints if c.soft]
        if not soft:
            out.append(lv)
            continue
        objective, cons, new_vars = lv.objective, [c for c in lv.constraints if not c.soft], []
        sign = -1.0 if lv.sense == "max" else 1.0
        for item in soft:
            parts = ("",) if item.kind == "ineq" else (".plus", ".minus")
            lo, hi = _range(item.expr, problem.variables)
            ts = []
            for suffix, top in zip(parts, (hi, None if lo is None else -lo)):
                # at the follower's optimum t = max(±e, 0): the range of e bounds it (kept finite for big-M bounds)
                ub = None if top is None or not np.all(np.isfinite(top)) else np.maximum(top, 0.0)
                t = Variable(item.expr.shape, lb=0, ub=ub, name=f"{item.name}.elastic{suffix}")
                t.level = lv.name
                ts.append(t)
                cost = atoms.sum(t) if item.penalty_kind == "l1" else atoms.sum_squares(t) if t.shape else atoms.square(t)
                objective = objective + sign * item.penalty * cost
            expr = item.expr - ts[0] if item.kind == "ineq" else item.expr - ts[0] + ts[1]
            cons.append(ConstraintItem(item.name, item.kind, expr))
            new_vars += ts
            level_soft.append(item)
        elastic += new_vars
        out.append(replace(lv, objective=objective, variables=lv.variables + tuple(new_vars), constraints=tuple(cons)))
    return {**problem.extensions, "bilevel": tuple(out)}, elastic, level_soft


def _range(expr, variables):
    """Entrywise (inf, sup) of an affine expression over the variables' bounds; (None, None) if not affine."""
    from ..lower.sparse_affine import NotAffine, SparseAffineLowering
    offsets, n = [], 0
    for v in variables:
        offsets.append(n)
        n += v.size
    try:
        aff = SparseAffineLowering(list(variables), offsets, n).lower(expr)
    except NotAffine:
        return None, None
    lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
    for v, o in zip(variables, offsets):
        if v.lb is not None:
            lo[o:o + v.size] = v.lb.reshape(-1)
        if v.ub is not None:
            hi[o:o + v.size] = v.ub.reshape(-1)
    A = aff.A.tocoo()
    with np.errstate(invalid="ignore"):
        up = np.where(A.data > 0, A.data * hi[A.col], A.data * lo[A.col])
        down = np.where(A.data > 0, A.data * lo[A.col], A.data * hi[A.col])
    sup, inf = aff.b.reshape(-1).astype(float), aff.b.reshape(-1).astype(float)
    np.add.at(sup, A.row, np.nan_to_num(up, nan=0.0))
    np.add.at(inf, A.row, np.nan_to_num(down, nan=0.0))
    shape = expr.shape
    return inf.reshape(shape), sup.reshape(shape)


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
