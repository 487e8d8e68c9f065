"""Hock-Schittkowski problem 39: linear objective with two nonlinear equalities.

    minimize -x1   s.t.  x2 - x1^3 - x3^2 = 0,  x1^2 - x2 - x4^2 = 0

Start point x0 = (2, 2, 2, 2).
Known answer: published f* = -1 at x* = (1, 1, 0, 0).
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 39
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(39)``).
"""
import optdsl as od


def build() -> od.Model:
    m = od.Model("hs039")
    x = m.variable(4, name="x", value=[2.0, 2.0, 2.0, 2.0])
    m.minimize(-x[0])
    m.subject_to(x[1] - x[0] ** 3 - od.square(x[2]) == 0, name="c1")
    m.subject_to(od.square(x[0]) - x[1] - od.square(x[3]) == 0, name="c2")
    return m


EXPECTED = {"objective": -1.0, "rtol": 1e-6, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
