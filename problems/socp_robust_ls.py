"""Second-order cone problem: minimize the (unsquared) residual norm ||A x - b||_2 subject to ||x||_2 <= r.

Known answer: computed independently below with scipy (SLSQP on the squared problem, which has the same
minimizer) -- not with optdsl.
"""
import numpy as np
from scipy.optimize import minimize

import optdsl as od

_rng = np.random.default_rng(11)
A = _rng.normal(size=(8, 3))
B = _rng.normal(size=8) * 3
R = 0.5


def build() -> od.Model:
    m = od.Model("socp_robust_ls")
    x = m.variable(3, name="x")
    m.minimize(od.norm(A @ x - B))
    m.subject_to(od.norm(x) <= R, name="ball")
    return m


def _reference():
    r = minimize(lambda x: np.sum((A @ x - B) ** 2), np.zeros(3), jac=lambda x: 2 * A.T @ (A @ x - B),
                 constraints=[{"type": "ineq", "fun": lambda x: R**2 - x @ x, "jac": lambda x: -2 * x}],
                 method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})
    return float(np.linalg.norm(A @ r.x - B)), r.x


_obj, _x = _reference()
EXPECTED = {"objective": _obj, "rtol": 1e-6, "values": {"x": _x}, "atol_values": 1e-4, "status": "OPTIMAL"}
SOLVERS = ["cvxpy"]

if __name__ == "__main__":
    print(build().solve())
