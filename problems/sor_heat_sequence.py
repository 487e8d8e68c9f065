"""Implicit (backward-Euler) time stepping of the 2-D heat equation u_t = kappa * Laplace(u) + s on the unit
square, homogeneous Dirichlet boundary, 12 x 12 interior grid (n = 144 unknowns, dense A).

Each step solves the square linear system

    (I + r L) u^{n+1} = u^n + dt * s,      r = dt * kappa / h^2,

with L the unscaled 5-point Laplacian (optdsl.solvers.linalg.sequences.laplacian_2d). The right-hand side b
and the mesh ratio r are parameters, so one compiled model is re-solved along the whole run and the SOR
backend learns its relaxation factor omega across the solves (`m.solve(solver="sor")`).

Known answer: EXPECTED is the first step's solution computed independently with np.linalg.solve on the
assembled dense matrix (not by optdsl).
"""
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import optdsl as od
from optdsl.solvers.linalg.sequences import laplacian_2d

M = 12                      # interior nodes per side
N = M * M
H = 1.0 / (M + 1)
DT = 0.02
KAPPA = 1.0
SOURCE = 1.0
R0 = DT * KAPPA / H ** 2    # mesh ratio, 3.38: the best omega is well above 1 (Gauss-Seidel)
L = laplacian_2d(M).toarray()
I = np.eye(N)


def initial_state():
    xs = np.arange(1, M + 1) * H
    X, Y = np.meshgrid(xs, xs, indexing="xy")
    return np.exp(-((X - 0.4) ** 2 + (Y - 0.6) ** 2) / 0.02).ravel()


def rhs(u):
    return u + DT * SOURCE


def build() -> od.Model:
    m = od.Model("heat")
    u = m.variable(N, name="u")
    b = m.parameter(N, value=rhs(initial_state()), name="b")
    r = m.parameter(value=R0, name="r")
    m.subject_to(u + r * (L @ u) == b, name="step")      # (I + r L) u = b
    return m


def sequence(T, r=R0):
    """Parameter values {"b": ..., "r": ...} for T implicit steps, the states advanced by exact solves."""
    u = initial_state()
    A = (I + r * L)
    for _ in range(T):
        b = rhs(u)
        yield {"b": b, "r": r}
        u = np.linalg.solve(A, b)


_u1 = np.linalg.solve(I + R0 * L, rhs(initial_state()))
# cross-check with a sparse direct solve of the same step
assert np.allclose(spla.spsolve((sp.identity(N, format="csc") + R0 * laplacian_2d(M)).tocsc(), rhs(initial_state())),
                   _u1, rtol=1e-10, atol=1e-12)
EXPECTED = {"objective": 0.0, "rtol": 1e-6, "values": {"u": _u1}, "status": "OPTIMAL"}
SOLVERS = ["sor"]

if __name__ == "__main__":
    print(build().solve(solver="sor"))
