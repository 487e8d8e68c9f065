"""Hock-Schittkowski problem 79: polynomial objective with three polynomial equalities.

    minimize (x1-1)^2 + (x1-x2)^2 + (x2-x3)^2 + (x3-x4)^4 + (x4-x5)^4
    s.t.  x1 + x2^2 + x3^3 - 2 - 3 sqrt(2) = 0,  x2 - x3^2 + x4 + 2 - 2 sqrt(2) = 0,  x1 x5 - 2 = 0

Start point x0 = (2, 2, 2, 2, 2).
Known answer: published f* = 0.0787768209 at x* = (1.191127, 1.362603, 1.472818, 1.635017, 1.679081).
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 79
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(79)``).
"""
import math

import optdsl as od


def build() -> od.Model:
    m = od.Model("hs079")
    r2 = math.sqrt(2.0)
    x = m.variable(5, name="x", value=[2.0, 2.0, 2.0, 2.0, 2.0])
    m.minimize(od.square(x[0] - 1) + od.square(x[0] - x[1]) + od.square(x[1] - x[2]) + (x[2] - x[3]) ** 4
               + (x[3] - x[4]) ** 4)
    m.subject_to(x[0] + od.square(x[1]) + x[2] ** 3 - 2 - 3 * r2 == 0, name="c1")
    m.subject_to(x[1] - od.square(x[2]) + x[3] + 2 - 2 * r2 == 0, name="c2")
    m.subject_to(x[0] * x[4] - 2 == 0, name="c3")
    return m


EXPECTED = {"objective": 0.0787768209, "rtol": 1e-6, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
