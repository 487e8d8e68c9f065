"""Hock-Schittkowski problem 78: product objective with three polynomial equalities.

    minimize x1 x2 x3 x4 x5   s.t.  sum x_i^2 - 10 = 0,  x2 x3 - 5 x4 x5 = 0,  x1^3 + x2^3 + 1 = 0

Start point x0 = (-2, 1.5, 2, -1, -1).
Known answer: published f* = -2.91970041 at x* = (-1.717142, 1.595708, 1.827248, -0.7636429, -0.7636435).
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 78
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(78)``).
"""
import optdsl as od


def build() -> od.Model:
    m = od.Model("hs078")
    x = m.variable(5, name="x", value=[-2.0, 1.5, 2.0, -1.0, -1.0])
    m.minimize(x[0] * x[1] * x[2] * x[3] * x[4])
    m.subject_to(od.sum_squares(x) - 10 == 0, name="sphere")
    m.subject_to(x[1] * x[2] - 5 * x[3] * x[4] == 0, name="c2")
    m.subject_to(x[0] ** 3 + x[1] ** 3 + 1 == 0, name="c3")
    return m


EXPECTED = {"objective": -2.91970041, "rtol": 1e-6, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
