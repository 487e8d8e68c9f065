"""Hock-Schittkowski problem 47: degenerate objective with three nonlinear equalities.

    minimize (x1-x2)^2 + (x2-x3)^3 + (x3-x4)^4 + (x4-x5)^4
    s.t.  x1 + x2^2 + x3^3 - 3 = 0,  x2 - x3^2 + x4 - 1 = 0,  x1 x5 - 1 = 0

Start point x0 = (2, sqrt(2), -1, 2 - sqrt(2), 0.5).
Known answer: published f* = 0 at x* = (1, 1, 1, 1, 1) (degenerate: high-order terms).
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 47
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(47)``).
"""
import math

import optdsl as od


def build() -> od.Model:
    m = od.Model("hs047")
    x = m.variable(5, name="x", value=[2.0, math.sqrt(2.0), -1.0, 2 - math.sqrt(2.0), 0.5])
    m.minimize(od.square(x[0] - x[1]) + (x[1] - x[2]) ** 3 + (x[2] - x[3]) ** 4 + (x[3] - x[4]) ** 4)
    m.subject_to(x[0] + od.square(x[1]) + x[2] ** 3 - 3 == 0, name="c1")
    m.subject_to(x[1] - od.square(x[2]) + x[3] - 1 == 0, name="c2")
    m.subject_to(x[0] * x[4] - 1 == 0, name="c3")
    return m


EXPECTED = {"objective": 0.0, "atol": 1e-8, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
