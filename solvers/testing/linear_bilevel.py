r"""Random linear bilevel instances with a scalar leader variable, and their answer by enumeration.

    leader:    min_{x ∈ [0, x_hi]}  c_x x + c_yᵀ y     (optionally s.t. e_x x + e_yᵀ y <= e_b, a coupled row)
    follower:  y ∈ argmin_y { d_yᵀ y :  A y <= b + a x,  0 <= y <= y_hi }

b >= |a| x_hi + 1 keeps y = 0 feasible for every x, so the follower always has an optimum. `value_at` solves
the follower LP at one x (scipy linprog / HiGHS) and, among its optima, takes the leader's best (the
optimistic convention); `enumerate_grid` minimizes that over a grid of x. Numpy/scipy only: the reference
against which modeling-layer routes (KKT → MILP, LV-HBA) are checked.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.optimize import linprog


@dataclass
class LinearBilevel:
    c_x: float
    c_y: np.ndarray
    d_y: np.ndarray
    A: np.ndarray
    a: np.ndarray
    b: np.ndarray
    x_hi: float
    y_hi: float
    coupled: Optional[tuple] = None   # (e_x, e_y, e_b): e_x x + e_yᵀ y <= e_b, a leader row reading y


def random_linear_bilevel(ny: int = 2, m: int = 4, seed: int = 0, x_hi: float = 10.0, y_hi: float = 10.0,
                          coupled: bool = False, per_row: int | None = None) -> LinearBilevel:
    """``per_row``: follower variables per row (sparse rows, as in structured models); None: dense rows."""
    rng = np.random.default_rng(seed)
    A = rng.uniform(0.2, 2.0, (m, ny)) * np.where(rng.random((m, ny)) < 0.8, 1.0, -0.5)
    if per_row is not None:
        keep = np.zeros((m, ny), bool)
        for i in range(m):
            keep[i, rng.choice(ny, min(per_row, ny), replace=False)] = True
        A = np.where(keep, A, 0.0)
    a = rng.uniform(-1.0, 1.0, m)
    b = np.abs(a) * x_hi + rng.uniform(1.0, 5.0, m)
    inst = LinearBilevel(c_x=float(rng.uniform(-1, 1)), c_y=rng.uniform(-2, 2, ny), d_y=-rng.uniform(0.5, 2, ny),
                         A=A, a=a, b=b, x_hi=x_hi, y_hi=y_hi)
    if coupled:
        inst.coupled = (1.0, np.ones(ny) / ny, float(rng.uniform(2.0, 6.0)))
    return inst


def value_at(inst: LinearBilevel, x: float) -> tuple[float, Optional[np.ndarray]]:
    """The leader's cost at x with the follower's optimistic response (inf when x admits none)."""
    ny = len(inst.d_y)
    bounds = [(0.0, inst.y_hi)] * ny
    rhs = inst.b + inst.a * x
    first = linprog(inst.d_y, A_ub=inst.A, b_ub=rhs, bounds=bounds, method="highs")
    if first.status != 0:
        return np.inf, None
    # the follower's optimal set: its feasible set with the rows and bounds of the dual optimum (marginals ≠ 0)
    # active — exact, where a value constraint d_yᵀy <= φ + tol lets a degenerate optimal face leak
    tol = 1e-9 * (1 + np.abs(first.ineqlin.marginals).max(initial=0))
    tight = np.abs(first.ineqlin.marginals) > tol
    lo = np.where(np.abs(first.lower.marginals) > tol, 0.0, 0.0)
    hi = np.where(np.abs(first.upper.marginals) > tol, inst.y_hi, inst.y_hi)
    lo_fix, hi_fix = np.abs(first.lower.marginals) > tol, np.abs(first.upper.marginals) > tol
    bounds2 = [(l_, h if not lf else l_) if not hf else (h, h) for l_, h, lf, hf in zip(lo, hi, lo_fix, hi_fix)]
    A2, b2 = inst.A[~tight], rhs[~tight]
    Aeq, beq = (inst.A[tight], rhs[tight]) if tight.any() else (None, None)
    if inst.coupled is not None:
        ex, ey, eb = inst.coupled
        A2, b2 = np.vstack([A2, ey]), np.r_[b2, eb - ex * x]
    second = linprog(inst.c_y, A_ub=A2 if len(b2) else None, b_ub=b2 if len(b2) else None, A_eq=Aeq, b_eq=beq,
                     bounds=bounds2, method="highs")
    if second.status != 0:
        return np.inf, None
    return float(inst.c_x * x + second.fun), second.x


def enumerate_grid(inst: LinearBilevel, points: int = 2001) -> tuple[float, float]:
    """(best value, best x) over an even grid of [0, x_hi]."""
    grid = np.linspace(0.0, inst.x_hi, points)
    vals = np.array([value_at(inst, x)[0] for x in grid])
    k = int(np.argmin(vals))
    return float(vals[k]), float(grid[k])
