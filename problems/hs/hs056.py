"""Hock-Schittkowski problem 56: product objective with four trigonometric equalities.

    minimize -x1 x2 x3   s.t.  x1 - 4.2 sin(x4)^2 = 0,  x2 - 4.2 sin(x5)^2 = 0,  x3 - 4.2 sin(x6)^2 = 0,
                           x1 + 2x2 + 2x3 - 7.2 sin(x7)^2 = 0

Start point x0 = (1, 1, 1, a, a, a, b), a = asin(sqrt(1/4.2)), b = asin(sqrt(5/7.2)).
Known answer: published f* = -3.456 at x1 = 2.4, x2 = x3 = 1.2.
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 56
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(56)``).
"""
import math

import optdsl as od


def build() -> od.Model:
    m = od.Model("hs056")
    a, b = math.asin(math.sqrt(1 / 4.2)), math.asin(math.sqrt(5 / 7.2))
    x = m.variable(7, name="x", value=[1.0, 1.0, 1.0, a, a, a, b])
    m.minimize(-x[0] * x[1] * x[2])
    m.subject_to(x[0] - 4.2 * od.square(od.sin(x[3])) == 0, name="c1")
    m.subject_to(x[1] - 4.2 * od.square(od.sin(x[4])) == 0, name="c2")
    m.subject_to(x[2] - 4.2 * od.square(od.sin(x[5])) == 0, name="c3")
    m.subject_to(x[0] + 2 * x[1] + 2 * x[2] - 7.2 * od.square(od.sin(x[6])) == 0, name="c4")
    return m


EXPECTED = {"objective": -3.456, "rtol": 1e-6, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
