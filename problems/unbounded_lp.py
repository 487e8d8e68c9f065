"""Unbounded LP: minimize -x1 - x2 over x >= 0, x1 - x2 <= 1 (the ray (1, 1) t stays feasible).

Known answer: unbounded by inspection, status UNBOUNDED.
"""
import numpy as np

import optdsl as od


def build() -> od.Model:
    m = od.Model("unbounded_lp")
    x = m.variable(2, lb=0, name="x")
    m.minimize(np.array([-1.0, -1.0]) @ x)
    m.subject_to(x[0] - x[1] <= 1, name="row")
    return m


EXPECTED = {"objective": float("-inf"), "rtol": 0.0, "status": "UNBOUNDED"}
SOLVERS = ["cvxpy"]

if __name__ == "__main__":
    print(build().solve())
