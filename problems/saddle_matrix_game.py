"""A zero-sum matrix game on simplices:  min_{x ∈ Δ7} max_{y ∈ Δ5}  xᵀAy,  A (7 × 5) uniform in [−1, 1].

The row player (x) minimises the payoff, the column player (y) maximises it. Each player's set is read by
the Halpern backend from the model: ``x >= 0`` with ``x.sum() == 1`` is the probability simplex.

Known answer: the value of the game is the optimum of the linear program (von Neumann)

    min_{x, t}  t   s.t.  Aᵀx ≤ t·1,  Σx = 1,  x ≥ 0,

solved here directly with scipy.optimize.linprog (HiGHS); the column player's optimal strategy is the
vector of multipliers of Aᵀx ≤ t·1. The equilibrium is unique for this matrix, checked below by the
Bohnenblust–Karlin–Shapley conditions: both supports have the same size, the payoff submatrix on them is
nonsingular, and every pure strategy outside a support does strictly worse than the value.
"""
import numpy as np
from scipy.optimize import linprog

import optdsl as od

A = np.random.default_rng(3).uniform(-1.0, 1.0, (7, 5))


def build() -> od.Model:
    m = od.Model("matrix_game")
    x = m.variable(7, lb=0, name="x")
    y = m.variable(5, lb=0, name="y")
    m.subject_to(x.sum() == 1, name="sx")
    m.subject_to(y.sum() == 1, name="sy")
    m.saddle(x @ A @ y, min_vars=[x], max_vars=[y])
    return m


def _lp(A):
    k, n = A.shape
    res = linprog(np.r_[np.zeros(k), 1.0], A_ub=np.c_[A.T, -np.ones(n)], b_ub=np.zeros(n),
                  A_eq=np.r_[np.ones(k), 0.0][None], b_eq=[1.0], bounds=[(0, None)] * k + [(None, None)],
                  method="highs")
    assert res.status == 0, res.message
    y = -res.ineqlin.marginals
    return float(res.x[-1]), res.x[:k], y / y.sum()


VALUE, X_STAR, Y_STAR = _lp(A)
# the column player's LP (max s s.t. A y >= s·1, y in the simplex) has the same value (LP duality)
_d = linprog(np.r_[np.zeros(5), -1.0], A_ub=np.c_[-A, np.ones(7)], b_ub=np.zeros(7),
             A_eq=np.r_[np.ones(5), 0.0][None], b_eq=[1.0], bounds=[(0, None)] * 5 + [(None, None)], method="highs")
assert _d.status == 0 and abs(-_d.fun - VALUE) < 1e-9 and np.allclose(_d.x[:5], Y_STAR, atol=1e-9)
# uniqueness of the equilibrium (strict complementarity + square nonsingular support submatrix)
_sx, _sy = X_STAR > 1e-9, Y_STAR > 1e-9
assert _sx.sum() == _sy.sum() and abs(np.linalg.det(A[np.ix_(_sx, _sy)])) > 1e-6
assert np.all((A @ Y_STAR)[~_sx] > VALUE + 1e-6) and np.all((A.T @ X_STAR)[~_sy] < VALUE - 1e-6)

EXPECTED = {"objective": VALUE, "rtol": 1e-6, "values": {"x": X_STAR, "y": Y_STAR}, "status": "OPTIMAL"}
SOLVERS = ["halpern"]

if __name__ == "__main__":
    print(build().solve())
