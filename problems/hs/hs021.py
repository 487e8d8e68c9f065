"""Hock-Schittkowski problem 21: bound-constrained quadratic with one linear inequality.

    minimize 0.01 x1^2 + x2^2 - 100   s.t.  10 x1 - x2 - 10 >= 0,  2 <= x1 <= 50,  -50 <= x2 <= 50

Start point x0 = (-1, -1) (as published: outside the bound x1 >= 2; the solver starts from its projection).
Known answer: published f* = -99.96 at x* = (2, 0).
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 21
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(21)``).
"""
import optdsl as od


def build() -> od.Model:
    m = od.Model("hs021")
    x = m.variable(2, lb=[2.0, -50.0], ub=[50.0, 50.0], name="x", value=[-1.0, -1.0])
    m.minimize(0.01 * od.square(x[0]) + od.square(x[1]) - 100)
    m.subject_to(10 * x[0] - x[1] - 10 >= 0, name="c1")
    return m


EXPECTED = {"objective": -99.96, "rtol": 1e-6, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
