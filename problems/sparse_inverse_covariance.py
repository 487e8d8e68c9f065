"""Sparse inverse covariance (graphical lasso): a PSD matrix variable, log det and an l1 penalty.

    minimize  -log det X + tr(S X) + alpha * sum_ij |X_ij|   over  X PSD (symmetric positive semidefinite)

S is the sample covariance of 60 draws from a Gaussian whose precision matrix is sparse (a chain);
``alpha`` is a nonneg parameter, so ``alpha * od.norm1(X)`` is convex by DCP and changing ``alpha.value``
re-solves without recompiling. Reference: the same problem written in cvxpy directly (EXPECTED, computed
at import; rtol 1e-5 since the conic solvers stop at ~1e-8 relative gaps).
"""
import cvxpy as cp
import numpy as np

import optdsl as od

N_DIM, ALPHA = 6, 0.05
_rng = np.random.default_rng(11)
PRECISION = np.eye(N_DIM) * 2.0 + np.diag(np.full(N_DIM - 1, -0.8), 1) + np.diag(np.full(N_DIM - 1, -0.8), -1)
_samples = _rng.multivariate_normal(np.zeros(N_DIM), np.linalg.inv(PRECISION), size=60)
S = _samples.T @ _samples / len(_samples)


def build(alpha: float = ALPHA) -> od.Model:
    m = od.Model("sparse_inverse_covariance")
    X = m.variable((N_DIM, N_DIM), PSD=True, name="X")
    a = m.parameter(value=alpha, nonneg=True, name="alpha")
    m.minimize(-od.log_det(X) + od.trace(S @ X) + a * od.norm1(X))
    return m


def reference(alpha: float = ALPHA):
    """(objective, X) from the same problem written in cvxpy directly."""
    X = cp.Variable((N_DIM, N_DIM), PSD=True)
    prob = cp.Problem(cp.Minimize(-cp.log_det(X) + cp.trace(S @ X) + alpha * cp.sum(cp.abs(X))))
    prob.solve()
    return float(prob.value), X.value


_obj, _X = reference()
EXPECTED = {"objective": _obj, "rtol": 1e-5, "values": {"X": _X}, "atol_values": 1e-3, "status": "OPTIMAL"}
SOLVERS = ["cvxpy"]

if __name__ == "__main__":
    res = build().solve()
    print(res)
    print(np.round(res.values["X"], 2))
