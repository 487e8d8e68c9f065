"""Hock-Schittkowski problem 49: degenerate polynomial objective with two linear equalities.

    minimize (x1-x2)^2 + (x3-1)^2 + (x4-1)^4 + (x5-1)^6   s.t.  x1+x2+x3+4x4 - 7 = 0,  x3 + 5x5 - 6 = 0

Start point x0 = (10, 7, 2, -3, 0.8).
Known answer: published f* = 0 at x* = (1, 1, 1, 1, 1).
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 49
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(49)``).
"""
import optdsl as od


def build() -> od.Model:
    m = od.Model("hs049")
    x = m.variable(5, name="x", value=[10.0, 7.0, 2.0, -3.0, 0.8])
    m.minimize(od.square(x[0] - x[1]) + od.square(x[2] - 1) + (x[3] - 1) ** 4 + (x[4] - 1) ** 6)
    m.subject_to(x[0] + x[1] + x[2] + 4 * x[3] - 7 == 0, name="c1")
    m.subject_to(x[2] + 5 * x[4] - 6 == 0, name="c2")
    return m


# the sixth power makes the optimum degenerate: a conic solver (cvxpy, the default here since the model is
# convex) stops 1e-5 from x* at its gap tolerance, where the stationarity residual is ~2e-4
EXPECTED = {"objective": 0.0, "atol": 1e-8, "status": "LOCALLY_OPTIMAL", "kkt_rtol": 1e-3}
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
