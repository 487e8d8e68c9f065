"""Hock-Schittkowski problem 61: quadratic objective with two quadratic equalities.

    minimize 4x1^2 + 2x2^2 + 2x3^2 - 33x1 + 16x2 - 24x3   s.t.  3x1 - 2x2^2 - 7 = 0,  4x1 - x3^2 - 11 = 0

Start point x0 = (0, 0, 0).
Known answer: published f* = -143.6461422 at x* = (5.32677016, -2.11899864, 3.21046424).
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 61
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(61)``).
"""
import optdsl as od


def build() -> od.Model:
    m = od.Model("hs061")
    x = m.variable(3, name="x", value=[0.0, 0.0, 0.0])
    m.minimize(4 * od.square(x[0]) + 2 * od.square(x[1]) + 2 * od.square(x[2]) - 33 * x[0] + 16 * x[1]
               - 24 * x[2])
    m.subject_to(3 * x[0] - 2 * od.square(x[1]) - 7 == 0, name="c1")
    m.subject_to(4 * x[0] - od.square(x[2]) - 11 == 0, name="c2")
    return m


EXPECTED = {"objective": -143.6461422, "rtol": 1e-6, "status": "LOCALLY_OPTIMAL"}
# SciPy SLSQP fails from the published x0 = 0 (the Jacobian of c1, c2 w.r.t. x2, x3 vanishes there, so the
# linearized constraints are inconsistent); nlp then minimizes the violation, finds a feasible point and
# restarts SLSQP from it.
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
