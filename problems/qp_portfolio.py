"""Minimum-variance-minus-return portfolio QP with a budget (equality) constraint and no bounds.

    minimize  x^T Q x - mu^T x   s.t.  1^T x = 1,   Q = diag(q)

Known answer (closed form via the KKT system, no inequalities active):  2 Q x - mu + nu 1 = 0, 1^T x = 1
=>  x_i = (mu_i - nu) / (2 q_i), nu chosen so the budget holds. Computed below with numpy only.
"""
import numpy as np

import optdsl as od

Q_DIAG = np.array([1.0, 2.0, 0.5, 4.0, 1.5])
MU = np.array([0.3, 0.5, 0.2, 0.9, 0.4])


def build() -> od.Model:
    m = od.Model("qp_portfolio")
    x = m.variable(5, name="x")
    mu = m.parameter(value=MU, name="mu")
    m.minimize(od.quad_form(x, np.diag(Q_DIAG)) - mu @ x)
    m.subject_to(x.sum() == 1, name="budget")
    return m


_w = 1.0 / (2 * Q_DIAG)
_nu = (np.sum(MU * _w) - 1.0) / np.sum(_w)
_x = (MU - _nu) * _w
EXPECTED = {"objective": float(_x @ (Q_DIAG * _x) - MU @ _x), "rtol": 1e-6, "values": {"x": _x},
            "atol_values": 1e-4, "status": "OPTIMAL"}
SOLVERS = ["cvxpy", "nlp"]

if __name__ == "__main__":
    print(build().solve())
