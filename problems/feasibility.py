"""Feasibility problem (no objective): find x with A x <= b, sum x = 1, x >= 0.

Known answer: any feasible point; objective is reported as 0. The suite checks max_violation <= 1e-6 and
that a point is returned; the feasible set is nonempty since x = (1/3, 1/3, 1/3) satisfies it (checked below).
"""
import numpy as np

import optdsl as od

A = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]])
B = np.array([1.5, 2.0])
assert np.all(A @ np.full(3, 1 / 3) <= B)


def build() -> od.Model:
    m = od.Model("feasibility")
    x = m.variable(3, lb=0, name="x")
    m.subject_to(A @ x <= B, name="rows")
    m.subject_to(x.sum() == 1, name="simplex")
    return m


EXPECTED = {"objective": 0.0, "rtol": 1e-6}
SOLVERS = ["cvxpy"]

if __name__ == "__main__":
    print(build().solve())
