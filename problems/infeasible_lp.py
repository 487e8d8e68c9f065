"""Infeasible LP: x >= 0, x1 + x2 <= 1 and x1 + x2 >= 2 cannot both hold.

Known answer: infeasible by inspection (1 < 2), status INFEASIBLE.
"""
import numpy as np

import optdsl as od


def build() -> od.Model:
    m = od.Model("infeasible_lp")
    x = m.variable(2, lb=0, name="x")
    m.minimize(np.array([1.0, 1.0]) @ x)
    m.subject_to(x.sum() <= 1, name="upper")
    m.subject_to(x.sum() >= 2, name="lower")
    return m


EXPECTED = {"objective": float("nan"), "rtol": 0.0, "status": "INFEASIBLE"}
SOLVERS = ["cvxpy"]

if __name__ == "__main__":
    print(build().solve())
