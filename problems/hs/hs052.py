"""Hock-Schittkowski problem 52: convex quadratic with three linear equalities.

    minimize (4x1-x2)^2 + (x2+x3-2)^2 + (x4-1)^2 + (x5-1)^2
    s.t.  x1 + 3x2 = 0,  x3 + x4 - 2x5 = 0,  x2 - x5 = 0

Start point x0 = (2, 2, 2, 2, 2).
Known answer: published f* = 1859/349 = 5.32664756....
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 52
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(52)``).
"""
import optdsl as od


def build() -> od.Model:
    m = od.Model("hs052")
    x = m.variable(5, name="x", value=[2.0, 2.0, 2.0, 2.0, 2.0])
    m.minimize(od.square(4 * x[0] - x[1]) + od.square(x[1] + x[2] - 2) + od.square(x[3] - 1) + od.square(x[4] - 1))
    m.subject_to(x[0] + 3 * x[1] == 0, name="c1")
    m.subject_to(x[2] + x[3] - 2 * x[4] == 0, name="c2")
    m.subject_to(x[1] - x[4] == 0, name="c3")
    return m


EXPECTED = {"objective": 1859.0 / 349.0, "rtol": 1e-6, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
