"""Robust LP with ellipsoidal uncertainty (Ben-Tal & Nemirovski, "Robust solutions of uncertain linear
programs", Oper. Res. Lett. 25, 1999).

    maximize   c^T x
    subject to (a + P u)^T x <= 1   for all u with ||u||_2 <= 1,    x >= 0

Known answer: the robust counterpart is the SOCP  a^T x + ||P^T x||_2 <= 1  (support function of the unit
ball is the l2 norm), written by hand directly in cvxpy below (EXPECTED does not use optdsl).
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
    m = od.Model("robust_lp_ellipsoid")
    x = m.variable(3, lb=0, name="x")
    u = m.uncertain(3, within=od.Ellipsoid(np.zeros(3), P=np.eye(3), rho=1.0), name="u")
    m.maximize(C @ x)
    m.subject_to((A_BAR + P @ u) @ x <= 1, name="cap")
    return m


def _reference():
    x = cp.Variable(3)
    prob = cp.Problem(cp.Maximize(C @ x), [x >= 0, A_BAR @ x + cp.norm2(P.T @ x) <= 1])
    prob.solve()
    return prob.value, x.value


_obj, _x = _reference()
EXPECTED = {"objective": float(_obj), "rtol": 1e-5, "values": {"x": _x}, "status": "OPTIMAL"}
SOLVERS = ["cvxpy"]          # through the robust_to_counterpart rewrite

if __name__ == "__main__":
    print(build().solve())
