"""Hock-Schittkowski problem 6: Rosenbrock-type objective on an equality-constrained parabola.

    minimize (1 - x1)^2   s.t.  10 (x2 - x1^2) = 0

Start point x0 = (-1.2, 1).
Known answer: published f* = 0 at x* = (1, 1).
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 6
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(6)``).
"""
import optdsl as od


def build() -> od.Model:
    m = od.Model("hs006")
    x = m.variable(2, name="x", value=[-1.2, 1.0])
    m.minimize(od.square(1 - x[0]))
    m.subject_to(10 * (x[1] - od.square(x[0])) == 0, name="parabola")
    return m


EXPECTED = {"objective": 0.0, "atol": 1e-8, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
