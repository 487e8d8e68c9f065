"""Soft (penalized) constraint:  minimize (x - 3)^2 + 10 * max(0, x - 1)   (x <= 1 made soft, L1 penalty).

Known answer: for x > 1 the derivative is 2(x-3) + 10 > 0 at x = 1+, and for x < 1 it is 2(x-3) < 0,
so the minimizer is the kink x = 1 with objective (1-3)^2 = 4 (the reported objective is the user's
objective without the penalty term; the violation is 0).
"""
import optdsl as od


def build() -> od.Model:
    m = od.Model("soft_constraints")
    x = m.variable(name="x")
    m.minimize(od.square(x - 3))
    m.subject_to(x <= 1, name="cap", penalty=10.0, penalty_kind="l1")
    return m


EXPECTED = {"objective": 4.0, "rtol": 1e-5, "values": {"x": 1.0}, "atol_values": 1e-5, "status": "OPTIMAL"}
SOLVERS = ["cvxpy"]

if __name__ == "__main__":
    print(build().solve())
