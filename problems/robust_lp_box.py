"""Robust LP with box uncertainty (Ben-Tal, El Ghaoui & Nemirovski, *Robust Optimization*, 2009, ch. 1).

    maximize   c^T x
    subject to (a + P u)^T x <= 1   for all u with ||u||_inf <= 1,    x >= 0,  x <= 0.25

Known answer: the robust counterpart is the LP  a^T x + ||P^T x||_1 <= 1  (the support function of the unit
box is the l1 norm), written by hand directly in cvxpy below (EXPECTED does not use optdsl).
"""
import cvxpy as cp
import numpy as np

import optdsl as od

A_BAR = np.array([1.0, 2.0, 1.5])
P = np.array([[0.3, 0.1, 0.0],
              [0.0, 0.4, 0.2],
              [0.1, 0.0, 0.5]])
C = np.array([1.2, 2.0, 1.6])


def build() -> od.Model:
    m = od.Model("robust_lp_box")
    x = m.variable(3, lb=0, ub=0.25, name="x")
    u = m.uncertain(3, within=od.Box(np.zeros(3), radius=1.0), name="u")
    m.maximize(C @ x)
    m.subject_to((A_BAR + P @ u) @ x <= 1, name="cap")
    return m


def _reference():
    x = cp.Variable(3)
    prob = cp.Problem(cp.Maximize(C @ x), [x >= 0, x <= 0.25, A_BAR @ x + cp.norm1(P.T @ x) <= 1])
    prob.solve()
    return prob.value, x.value


_obj, _x = _reference()
EXPECTED = {"objective": float(_obj), "rtol": 1e-6, "values": {"x": _x}, "status": "OPTIMAL"}
SOLVERS = ["cvxpy"]          # through the robust_to_counterpart rewrite

if __name__ == "__main__":
    print(build().solve())
