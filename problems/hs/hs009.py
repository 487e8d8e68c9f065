"""Hock-Schittkowski problem 9: trigonometric objective on a line.

    minimize sin(pi x1 / 12) cos(pi x2 / 16)   s.t.  4 x1 - 3 x2 = 0

Start point x0 = (0, 0).
Known answer: published f* = -0.5 at x* = (12k - 3, 16k - 4), k integer (from x0 = 0: k = 0).
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 9
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(9)``).
"""
import math

import optdsl as od


def build() -> od.Model:
    m = od.Model("hs009")
    x = m.variable(2, name="x", value=[0.0, 0.0])
    m.minimize(od.sin(math.pi * x[0] / 12) * od.cos(math.pi * x[1] / 16))
    m.subject_to(4 * x[0] - 3 * x[1] == 0, name="line")
    return m


EXPECTED = {"objective": -0.5, "rtol": 1e-6, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
