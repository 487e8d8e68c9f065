"""Markowitz mean-variance portfolio written with maximize:  maximize mu^T x - gamma x^T S x
s.t. sum x = 1, x >= 0.

Known answer: computed independently with cvxpy written directly (minimizing the negated objective).
"""
import cvxpy as cp
import numpy as np

import optdsl as od

_rng = np.random.default_rng(3)
_F = _rng.normal(size=(4, 4))
S = _F @ _F.T / 4 + 0.1 * np.eye(4)
MU = np.array([0.12, 0.10, 0.07, 0.03])
GAMMA = 0.5


def build() -> od.Model:
    m = od.Model("markowitz_maximize")
    x = m.variable(4, lb=0, name="x")
    m.maximize(MU @ x - GAMMA * od.quad_form(x, S))
    m.subject_to(x.sum() == 1, name="budget")
    return m


def _reference():
    x = cp.Variable(4)
    p = cp.Problem(cp.Minimize(GAMMA * cp.quad_form(x, S) - MU @ x), [cp.sum(x) == 1, x >= 0])
    p.solve()
    return -float(p.value), x.value


_obj, _x = _reference()
EXPECTED = {"objective": _obj, "rtol": 1e-5, "values": {"x": _x}, "atol_values": 1e-4, "status": "OPTIMAL"}
SOLVERS = ["cvxpy", "nlp"]

if __name__ == "__main__":
    print(build().solve())
