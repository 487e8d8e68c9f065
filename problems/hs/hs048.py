"""Hock-Schittkowski problem 48: convex quadratic with two linear equalities.

    minimize (x1-1)^2 + (x2-x3)^2 + (x4-x5)^2   s.t.  x1+x2+x3+x4+x5 - 5 = 0,  x3 - 2(x4 + x5) + 3 = 0

Start point x0 = (3, 5, -3, 2, -2).
Known answer: published f* = 0 at x* = (1, 1, 1, 1, 1).
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 48
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(48)``).
"""
import optdsl as od


def build() -> od.Model:
    m = od.Model("hs048")
    x = m.variable(5, name="x", value=[3.0, 5.0, -3.0, 2.0, -2.0])
    m.minimize(od.square(x[0] - 1) + od.square(x[1] - x[2]) + od.square(x[3] - x[4]))
    m.subject_to(x.sum() - 5 == 0, name="c1")
    m.subject_to(x[2] - 2 * (x[3] + x[4]) + 3 == 0, name="c2")
    return m


EXPECTED = {"objective": 0.0, "atol": 1e-8, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
