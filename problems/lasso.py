"""Lasso: minimize 0.5 ||A x - b||^2 + lam ||x||_1  (nonsmooth; routed to cvxpy).

Known answer: with A having orthonormal columns, the solution is soft-thresholding of A^T b:
x_i = sign(z_i) max(|z_i| - lam, 0), z = A^T b (closed form, numpy only).
"""
import numpy as np

import optdsl as od

_rng = np.random.default_rng(7)
A, _ = np.linalg.qr(_rng.normal(size=(10, 5)))
B = A @ np.array([2.0, -0.3, 0.0, 1.5, 0.1]) + 0.0
LAM = 0.5


def build() -> od.Model:
    m = od.Model("lasso")
    x = m.variable(5, name="x")
    m.minimize(0.5 * od.sum_squares(A @ x - B) + LAM * od.norm1(x))
    return m


_z = A.T @ B
_x = np.sign(_z) * np.maximum(np.abs(_z) - LAM, 0)
EXPECTED = {"objective": float(0.5 * np.sum((A @ _x - B) ** 2) + LAM * np.sum(np.abs(_x))), "rtol": 1e-6,
            "values": {"x": _x}, "atol_values": 1e-5, "status": "OPTIMAL"}
SOLVERS = ["cvxpy"]

if __name__ == "__main__":
    print(build().solve())
