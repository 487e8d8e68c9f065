"""Hock-Schittkowski problem 50: polynomial objective with three linear equalities.

    minimize (x1-x2)^2 + (x2-x3)^2 + (x3-x4)^4 + (x4-x5)^2
    s.t.  x1 + 2x2 + 3x3 - 6 = 0,  x2 + 2x3 + 3x4 - 6 = 0,  x3 + 2x4 + 3x5 - 6 = 0

Start point x0 = (35, -31, 11, 5, -5).
Known answer: published f* = 0 at x* = (1, 1, 1, 1, 1).
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 50
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(50)``).
"""
import optdsl as od


def build() -> od.Model:
    m = od.Model("hs050")
    x = m.variable(5, name="x", value=[35.0, -31.0, 11.0, 5.0, -5.0])
    m.minimize(od.square(x[0] - x[1]) + od.square(x[1] - x[2]) + (x[2] - x[3]) ** 4 + od.square(x[3] - x[4]))
    m.subject_to(x[0] + 2 * x[1] + 3 * x[2] - 6 == 0, name="c1")
    m.subject_to(x[1] + 2 * x[2] + 3 * x[3] - 6 == 0, name="c2")
    m.subject_to(x[2] + 2 * x[3] + 3 * x[4] - 6 == 0, name="c3")
    return m


EXPECTED = {"objective": 0.0, "atol": 1e-8, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
