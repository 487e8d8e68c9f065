"""Hock-Schittkowski problem 77: polynomial objective with two trigonometric/polynomial equalities.

    minimize (x1-1)^2 + (x1-x2)^2 + (x3-1)^2 + (x4-1)^4 + (x5-1)^6
    s.t.  x1^2 x4 + sin(x4 - x5) - 2 sqrt(2) = 0,  x2 + x3^4 x4^2 - 8 - sqrt(2) = 0

Start point x0 = (2, 2, 2, 2, 2).
Known answer: published f* = 0.24150513 at x* = (1.166172, 1.182111, 1.380257, 1.506036, 0.6109203).
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 77
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(77)``).
"""
import math

import optdsl as od


def build() -> od.Model:
    m = od.Model("hs077")
    x = m.variable(5, name="x", value=[2.0, 2.0, 2.0, 2.0, 2.0])
    m.minimize(od.square(x[0] - 1) + od.square(x[0] - x[1]) + od.square(x[2] - 1) + (x[3] - 1) ** 4
               + (x[4] - 1) ** 6)
    m.subject_to(od.square(x[0]) * x[3] + od.sin(x[3] - x[4]) - 2 * math.sqrt(2.0) == 0, name="c1")
    m.subject_to(x[1] + x[2] ** 4 * od.square(x[3]) - 8 - math.sqrt(2.0) == 0, name="c2")
    return m


EXPECTED = {"objective": 0.24150513, "rtol": 1e-6, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
