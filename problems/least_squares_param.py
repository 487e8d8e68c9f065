"""Least squares with a parameter right-hand side:  minimize ||A x - b||^2  (b a Parameter).

Known answer: the normal equations, x* = lstsq(A, b) (numpy). `resolve_check()` re-solves with a new b and
compares with lstsq again (used by the conformance suite).
"""
import numpy as np

import optdsl as od

_rng = np.random.default_rng(5)
A = _rng.normal(size=(12, 4))
B0 = _rng.normal(size=12)
B1 = _rng.normal(size=12) + 1.0


def build() -> od.Model:
    m = od.Model("least_squares_param")
    x = m.variable(4, name="x")
    b = m.parameter(value=B0, name="b")
    m.minimize(od.sum_squares(A @ x - b))
    return m


def lstsq(b):
    x = np.linalg.lstsq(A, b, rcond=None)[0]
    return float(np.sum((A @ x - b) ** 2)), x


_obj, _x = lstsq(B0)
EXPECTED = {"objective": _obj, "rtol": 1e-6, "values": {"x": _x}, "atol_values": 1e-4, "status": "OPTIMAL"}
SOLVERS = ["cvxpy", "nlp", "lbfgs"]

if __name__ == "__main__":
    m = build()
    print(m.solve())
    next(p for p in m.parameters if p.name == "b").value = B1
    print(m.solve(), "expected", lstsq(B1)[0])
