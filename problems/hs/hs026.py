"""Hock-Schittkowski problem 26: degenerate quartic with one cubic-type equality.

    minimize (x1 - x2)^2 + (x2 - x3)^4   s.t.  (1 + x2^2) x1 + x3^4 - 3 = 0

Start point x0 = (-2.6, 2, 2).
Known answer: published f* = 0 at x* = (1, 1, 1) (a degenerate minimum: the Hessian is singular there).
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 26
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(26)``).
"""
import optdsl as od


def build() -> od.Model:
    m = od.Model("hs026")
    x = m.variable(3, name="x", value=[-2.6, 2.0, 2.0])
    m.minimize(od.square(x[0] - x[1]) + (x[1] - x[2]) ** 4)
    m.subject_to((1 + od.square(x[1])) * x[0] + x[2] ** 4 - 3 == 0, name="c1")
    return m


EXPECTED = {"objective": 0.0, "atol": 1e-8, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
