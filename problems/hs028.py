"""Hock-Schittkowski problem 28 (equality-constrained convex quadratic).

    minimize (x1 + x2)^2 + (x2 + x3)^2   s.t.  x1 + 2 x2 + 3 x3 = 1

Known answer: published f* = 0 at x* = (0.5, -0.5, 0.5); start x0 = (-4, 1, 1).
"""
import optdsl as od


def build() -> od.Model:
    m = od.Model("hs028")
    x = m.variable(3, name="x")
    x.value = [-4.0, 1.0, 1.0]  # start point
    m.minimize(od.square(x[0] + x[1]) + od.square(x[1] + x[2]))
    m.subject_to(x[0] + 2 * x[1] + 3 * x[2] == 1, name="eq")
    return m


EXPECTED = {"objective": 0.0, "rtol": 1e-6, "values": {"x": [0.5, -0.5, 0.5]}, "atol_values": 1e-4}
SOLVERS = ["nlp", "cvxpy"]

if __name__ == "__main__":
    print(build().solve())
