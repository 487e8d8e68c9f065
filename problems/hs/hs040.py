"""Hock-Schittkowski problem 40: product objective with three nonlinear equalities.

    minimize -x1 x2 x3 x4   s.t.  x1^3 + x2^2 - 1 = 0,  x1^2 x4 - x3 = 0,  x4^2 - x2 = 0

Start point x0 = (0.8, 0.8, 0.8, 0.8).
Known answer: published f* = -0.25 at x* = (2^(-1/3), 2^(-1/2), 2^(-11/12), 2^(-1/4)).
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 40
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(40)``).
"""
import optdsl as od


def build() -> od.Model:
    m = od.Model("hs040")
    x = m.variable(4, name="x", value=[0.8, 0.8, 0.8, 0.8])
    m.minimize(-x[0] * x[1] * x[2] * x[3])
    m.subject_to(x[0] ** 3 + od.square(x[1]) - 1 == 0, name="c1")
    m.subject_to(od.square(x[0]) * x[3] - x[2] == 0, name="c2")
    m.subject_to(od.square(x[3]) - x[1] == 0, name="c3")
    return m


EXPECTED = {"objective": -0.25, "rtol": 1e-6, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
