"""Hock-Schittkowski problem 46: degenerate objective with trigonometric equality.

    minimize (x1-x2)^2 + (x3-1)^2 + (x4-1)^4 + (x5-1)^6
    s.t.  x1^2 x4 + sin(x4 - x5) - 1 = 0,  x2 + x3^4 x4^2 - 2 = 0

Start point x0 = (sqrt(2)/2, 1.75, 0.5, 2, 2).
Known answer: published f* = 0 at x* = (1, 1, 1, 1, 1) (degenerate: high-order terms).
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 46
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(46)``).
"""
import math

import optdsl as od


def build() -> od.Model:
    m = od.Model("hs046")
    x = m.variable(5, name="x", value=[math.sqrt(2.0) / 2, 1.75, 0.5, 2.0, 2.0])
    m.minimize(od.square(x[0] - x[1]) + od.square(x[2] - 1) + (x[3] - 1) ** 4 + (x[4] - 1) ** 6)
    m.subject_to(od.square(x[0]) * x[3] + od.sin(x[3] - x[4]) - 1 == 0, name="c1")
    m.subject_to(x[1] + x[2] ** 4 * od.square(x[3]) - 2 == 0, name="c2")
    return m


EXPECTED = {"objective": 0.0, "atol": 1e-8, "status": "LOCALLY_OPTIMAL"}
# The minimum is degenerate ((x4-1)^4, (x5-1)^6 terms): SLSQP needs its objective tolerance below the KKT
# tolerance to get there (optdsl passes ftol = tol**1.5; with ftol = tol it stalled at f = 7.5e-7).
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
