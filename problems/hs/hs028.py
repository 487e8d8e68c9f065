"""Hock-Schittkowski problem 28: convex quadratic with one linear equality.

    minimize (x1 + x2)^2 + (x2 + x3)^2   s.t.  x1 + 2 x2 + 3 x3 - 1 = 0

Start point x0 = (-4, 1, 1).
Known answer: published f* = 0 at x* = (0.5, -0.5, 0.5).
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 28
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(28)``).
"""
import optdsl as od


def build() -> od.Model:
    m = od.Model("hs028")
    x = m.variable(3, name="x", value=[-4.0, 1.0, 1.0])
    m.minimize(od.square(x[0] + x[1]) + od.square(x[1] + x[2]))
    m.subject_to(x[0] + 2 * x[1] + 3 * x[2] - 1 == 0, name="c1")
    return m


EXPECTED = {"objective": 0.0, "atol": 1e-8, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
