"""Robust least squares (El Ghaoui & Lebret, "Robust solutions to least-squares problems with uncertain
data", SIAM J. Matrix Anal. Appl. 18(4), 1997):

    minimize_x  max_{||Delta|| <= rho}  ||(A + Delta) x - b||_2

for Delta in the spectral-norm ball (the Frobenius ball gives the same value: the worst case
Delta* = rho r x^T / (||r|| ||x||), r = A x - b, is rank one, so both norms of it equal rho). The worst case
is max ||r + Delta x|| = ||r|| + rho ||x||.

Modeling note: the inner maximum is of a *norm* of an expression affine in Delta, i.e. convex but not affine
in the uncertainty, so it does not fit the affine-in-u counterpart (`od.uncertain` + robust_to_counterpart);
the cutting-plane backend `robust_cp` can handle it (tests/test_robust_models.py does so on a 6 x 3 instance
with Delta in a Frobenius ball, od.Ellipsoid on vec(Delta)), but it adds one scenario per round in
m * n = 100 uncertain dimensions. The gallery model is therefore written as the equivalent SOCP
min ||A x - b||_2 + rho ||x||_2.

Data: solvers/robust/testing.py robust_least_squares(20, 5, rho=0.5, seed=0).
Known answer (no optimisation solver): El Ghaoui & Lebret's characterisation of the optimum as a Tikhonov
solution x(lam) = (A^T A + lam I)^{-1} A^T b with lam = rho ||A x - b|| / ||x||, found by bisection on lam
below; the value is then ||A x - b|| + rho ||x||, and it is checked against the worst-case Delta*.
"""
import numpy as np

import optdsl as od
from optdsl.solvers.robust.testing import robust_least_squares

A, B, RHO = robust_least_squares(20, 5, rho=0.5, seed=0)


def build() -> od.Model:
    m = od.Model("robust_least_squares")
    x = m.variable(A.shape[1], name="x")
    m.minimize(od.norm(A @ x - B) + RHO * od.norm(x))
    return m


def _tikhonov(lam):
    return np.linalg.solve(A.T @ A + lam * np.eye(A.shape[1]), A.T @ B)


def _reference():
    phi = lambda lam: lam - RHO * np.linalg.norm(A @ _tikhonov(lam) - B) / np.linalg.norm(_tikhonov(lam))
    lo, hi = 0.0, 1.0
    while phi(hi) < 0:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if phi(mid) < 0 else (lo, mid)
    x = _tikhonov(0.5 * (lo + hi))
    r = A @ x - B
    val = np.linalg.norm(r) + RHO * np.linalg.norm(x)
    worst = RHO * np.outer(r, x) / (np.linalg.norm(r) * np.linalg.norm(x))     # El Ghaoui-Lebret Delta*
    assert abs(np.linalg.norm((A + worst) @ x - B) - val) <= 1e-10 * val
    assert abs(np.linalg.norm(worst, 2) - RHO) <= 1e-12 and abs(np.linalg.norm(worst, "fro") - RHO) <= 1e-12
    return val, x


_obj, _x = _reference()
EXPECTED = {"objective": float(_obj), "rtol": 1e-6, "values": {"x": _x}, "status": "OPTIMAL"}
SOLVERS = ["cvxpy"]

if __name__ == "__main__":
    print(build().solve())
