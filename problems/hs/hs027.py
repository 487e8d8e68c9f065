"""Hock-Schittkowski problem 27: Rosenbrock-type objective with one equality.

    minimize 0.01 (x1 - 1)^2 + (x2 - x1^2)^2   s.t.  x1 + x3^2 + 1 = 0

Start point x0 = (2, 2, 2).
Known answer: published f* = 0.04 at x* = (-1, 1, 0).
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 27
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(27)``).
"""
import optdsl as od


def build() -> od.Model:
    m = od.Model("hs027")
    x = m.variable(3, name="x", value=[2.0, 2.0, 2.0])
    m.minimize(0.01 * od.square(x[0] - 1) + od.square(x[1] - od.square(x[0])))
    m.subject_to(x[0] + od.square(x[2]) + 1 == 0, name="c1")
    return m


EXPECTED = {"objective": 0.04, "rtol": 1e-6, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
