"""Hock-Schittkowski problem 7: log objective on a quartic equality.

    minimize log(1 + x1^2) - x2   s.t.  (1 + x1^2)^2 + x2^2 - 4 = 0

Start point x0 = (2, 2).
Known answer: published f* = -sqrt(3) at x* = (0, sqrt(3)).
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 7
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(7)``).
"""
import math

import optdsl as od


def build() -> od.Model:
    m = od.Model("hs007")
    x = m.variable(2, name="x", value=[2.0, 2.0])
    m.minimize(od.log(1 + od.square(x[0])) - x[1])
    m.subject_to(od.square(1 + od.square(x[0])) + od.square(x[1]) - 4 == 0, name="quartic")
    return m


EXPECTED = {"objective": -math.sqrt(3.0), "rtol": 1e-6, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
