"""Rosenbrock function constrained to the disk x^2 + y^2 <= 2 (MathWorks' fmincon example family).

The unconstrained minimizer (1, 1) lies on the boundary (1 + 1 = 2), so it is also the constrained optimum:
f* = 0 at (1, 1). Objective is 0, so the suite uses an absolute tolerance via values and a tiny rtol floor.
"""
import optdsl as od


def build() -> od.Model:
    m = od.Model("rosenbrock_disk")
    x = m.variable(2, name="x")
    x.value = [-1.0, 0.5]  # start point
    m.minimize(100 * od.square(x[1] - od.square(x[0])) + od.square(1 - x[0]))
    m.subject_to(od.sum_squares(x) <= 2, name="disk")
    return m


EXPECTED = {"objective": 0.0, "rtol": 1e-6, "values": {"x": [1.0, 1.0]}, "atol_values": 1e-3,
            "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["nlp"]

if __name__ == "__main__":
    print(build().solve())
