"""A sequence of shifted 2-D Laplacian systems (L + c_t I) x = b_t on a 10 x 10 grid (n = 100, dense A), the
shift c_t in [0, 0.5] being a *context feature* of each system: the best SOR relaxation factor depends on it
(for small shifts the system is ill-conditioned and omega* is close to 2, Young's formula
omega* = 2 / (1 + sqrt(1 - rho_J^2)) with rho_J = 4 cos(pi h) / (4 + c)).

The shift and the right-hand side are parameters; each solve passes the shift as context:

    m.solve(solver="sor", context=c_t, context_range="0,0.5")

Known answer: EXPECTED is the solution of the first system computed independently with np.linalg.solve.
"""
import numpy as np

import optdsl as od
from optdsl.solvers.linalg.sequences import laplacian_2d

M = 10
N = M * M
L = laplacian_2d(M).toarray()
CONTEXT_RANGE = "0,0.5"


def _data(T, seed=1):
    rng = np.random.default_rng(seed)
    c = rng.uniform(0.0, 0.5, size=T)
    B = np.clip(rng.standard_normal((T, N)), -3, 3)
    return c, B


def build() -> od.Model:
    c0, B0 = _data(1)
    m = od.Model("shifted_laplacian")
    x = m.variable(N, name="x")
    b = m.parameter(N, value=B0[0], name="b")
    c = m.parameter(value=float(c0[0]), name="c")
    m.subject_to(L @ x + c * x == b, name="system")      # (L + c I) x = b
    return m


def sequence(T, seed=1):
    """Parameter values {"b": ..., "c": ...} for T systems; c is also the context of each solve."""
    c, B = _data(T, seed)
    for t in range(T):
        yield {"b": B[t], "c": float(c[t])}


_c, _B = _data(1)
EXPECTED = {"objective": 0.0, "rtol": 1e-6, "status": "OPTIMAL",
            "values": {"x": np.linalg.solve(L + _c[0] * np.eye(N), _B[0])}}
SOLVERS = ["sor"]

if __name__ == "__main__":
    m = build()
    print(m.solve(solver="sor", context=float(m.parameters[1].value), context_range=CONTEXT_RANGE))
