"""Chebyshev center of a polyhedron {x : a_i^T x <= b_i} (Boyd & Vandenberghe, sec. 8.5.1).

    maximize r  s.t.  a_i^T xc + r ||a_i||_2 <= b_i,  r >= 0

The polyhedron is the square [-1, 1]^2 cut by x + y <= 1.5. Known answer: computed independently with
scipy.optimize.linprog (the norms ||a_i|| are data, so it is an LP).
"""
import numpy as np
from scipy.optimize import linprog

import optdsl as od

A = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [1.0, 1.0]])
B = np.array([1.0, 1.0, 1.0, 1.0, 1.5])


def build() -> od.Model:
    m = od.Model("chebyshev_center")
    xc = m.variable(2, name="xc")
    r = m.variable(lb=0, name="r")
    m.maximize(r)
    for i in range(len(B)):
        m.subject_to(A[i] @ xc + r * od.norm(od.Constant(A[i])) <= B[i], name=f"face{i}")
    return m


_lp = linprog(c=[0, 0, -1], A_ub=np.hstack([A, np.linalg.norm(A, axis=1)[:, None]]), b_ub=B,
              bounds=[(None, None), (None, None), (0, None)], method="highs")
EXPECTED = {"objective": float(-_lp.fun), "rtol": 1e-6, "values": {"r": _lp.x[2]}, "atol_values": 1e-6,
            "status": "OPTIMAL"}
SOLVERS = ["cvxpy"]

if __name__ == "__main__":
    print(build().solve())
