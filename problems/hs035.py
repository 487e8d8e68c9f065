"""Hock-Schittkowski problem 35 (convex QP).

    minimize 9 - 8x1 - 6x2 - 4x3 + 2x1^2 + 2x2^2 + x3^2 + 2x1x2 + 2x1x3
    s.t. x1 + x2 + 2x3 <= 3,  x >= 0

Known answer: published f* = 1/9 at x* = (4/3, 7/9, 4/9) (Hock & Schittkowski 1981).
"""
import optdsl as od


def build() -> od.Model:
    m = od.Model("hs035")
    x = m.variable(3, lb=0, name="x")
    x.value = [0.5, 0.5, 0.5]  # start point
    x1, x2, x3 = x[0], x[1], x[2]
    m.minimize(9 - 8 * x1 - 6 * x2 - 4 * x3 + 2 * od.square(x1) + 2 * od.square(x2) + od.square(x3)
               + 2 * x1 * x2 + 2 * x1 * x3)
    m.subject_to(x1 + x2 + 2 * x3 <= 3, name="c1")
    return m


EXPECTED = {"objective": 1.0 / 9.0, "rtol": 1e-5, "values": {"x": [4 / 3, 7 / 9, 4 / 9]}, "atol_values": 1e-4}
SOLVERS = ["nlp"]

if __name__ == "__main__":
    print(build().solve())
