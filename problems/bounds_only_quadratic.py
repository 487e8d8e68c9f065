"""Bound-constrained separable quadratic (the lbfgs path):  minimize sum_i w_i (x_i - c_i)^2,  0 <= x <= 1.

Known answer (closed form): x_i = clip(c_i, 0, 1); objective sum w_i (clip(c_i) - c_i)^2.
"""
import numpy as np

import optdsl as od

W = np.array([1.0, 2.0, 0.5, 3.0, 1.0, 1.5])
C = np.array([-0.5, 0.3, 1.7, 0.9, 2.0, 0.1])


def build() -> od.Model:
    m = od.Model("bounds_only_quadratic")
    x = m.variable(6, lb=0, ub=1, name="x")
    m.minimize(W @ od.square(x - C))
    return m


_x = np.clip(C, 0, 1)
EXPECTED = {"objective": float(W @ (_x - C) ** 2), "rtol": 1e-6, "values": {"x": _x}, "atol_values": 1e-5}
SOLVERS = ["lbfgs", "nlp", "cvxpy"]

if __name__ == "__main__":
    print(build().solve())
