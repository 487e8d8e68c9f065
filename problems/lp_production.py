"""Production-planning LP (classic textbook example, e.g. Hillier & Lieberman's Wyndor Glass Co.).

    maximize 3 x1 + 5 x2  s.t.  x1 <= 4,  2 x2 <= 12,  3 x1 + 2 x2 <= 18,  x >= 0

Known answer: optimum x = (2, 6), profit 36 (the published Wyndor solution, checked by hand at the vertex).
"""
import numpy as np

import optdsl as od


def build() -> od.Model:
    m = od.Model("lp_production")
    x = m.variable(2, lb=0, name="x")
    m.maximize(np.array([3.0, 5.0]) @ x)
    m.subject_to(x[0] <= 4, name="plant1")
    m.subject_to(2 * x[1] <= 12, name="plant2")
    m.subject_to(3 * x[0] + 2 * x[1] <= 18, name="plant3")
    return m


EXPECTED = {"objective": 36.0, "rtol": 1e-6, "values": {"x": [2.0, 6.0]}, "atol_values": 1e-5, "status": "OPTIMAL"}
SOLVERS = ["cvxpy", "nlp"]

if __name__ == "__main__":
    print(build().solve())
