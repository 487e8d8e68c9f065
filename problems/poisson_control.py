r"""2-D Poisson optimal control (distributed control of the discrete Laplace equation).

On the unit square with an N x N interior grid, h = 1/(N+1), state Y and control U (N x N each):

    minimize   (h^2/2) (||Y - Y_d||^2 + alpha ||U||^2)     subject to   (T Y + Y T) / h^2 = U,

T = tridiag(-1, 2, -1) (N x N). (T Y + Y T)/h^2 is the 5-point discretization of -Laplace(y) with homogeneous
Dirichlet conditions: on the row-major vec(Y) it is the matrix (T (x) I + I (x) T)/h^2 of
``optdsl.solvers.testing.poisson_control.laplacian_2d``. Target Y_d(s, t) = sin(pi s) sin(pi t), alpha = 1e-2 —
the same instance as ``optdsl.solvers.testing.poisson_control.make(N, alpha)``, which knows the discrete
solution in closed form (tests/test_hs_models.py compares the two).

N (module constant) is kept small so every backend solves it quickly; ``build(N=...)`` makes other sizes
(``optdsl solve problems/poisson_control.py --solver alsketch --build N=224`` has n = 2N^2 = 100,352 unknowns).
Up to n + m = 5000 (alsketch's ``sketch_threshold``) alsketch factorizes the dense KKT matrix. Above it,
because the constraint is affine and the objective a sum of squares, alsketch's ``structured="auto"`` builds the
constant sparse Jacobian [A, -I] and the diagonal Hessian from the model (`optdsl.lower.sparse_affine`) and
solves sparse KKT systems (N = 224: about 1 s on one CPU core, 0.74 GB peak).

Known answer: EXPECTED is computed below by one direct sparse solve (scipy.sparse.linalg.spsolve) of the
KKT system of this equality-constrained QP,

    [ H  J^T ] [ x   ]   [ h^2 (Y_d, 0) ]
    [ J  0   ] [ lam ] = [      0       ],     H = h^2 diag(I, alpha I),  J = [A, -I],  x = (vec Y, vec U).
"""
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import optdsl as od

N = 12
ALPHA = 1e-2


def _grid(N):
    h = 1.0 / (N + 1)
    s = np.arange(1, N + 1) * h
    T = 2 * np.eye(N) - np.eye(N, k=1) - np.eye(N, k=-1)
    return h, T, np.outer(np.sin(np.pi * s), np.sin(np.pi * s))


def build(N: int = N, alpha: float = ALPHA) -> od.Model:
    h, T, Yd = _grid(N)
    m = od.Model(f"poisson_control_{N}")
    Y = m.variable((N, N), name="y")
    U = m.variable((N, N), name="u")
    m.minimize(h ** 2 / 2 * (od.sum_squares(Y - Yd) + alpha * od.sum_squares(U)))
    m.subject_to((T @ Y + Y @ T) / h ** 2 == U, name="state")
    return m


def reference(N: int = N, alpha: float = ALPHA):
    """(f*, Y*, U*, multipliers of 'state') from one sparse direct solve of the KKT system."""
    h, _, Yd = _grid(N)
    M = N * N
    T = sp.diags([-np.ones(N - 1), 2 * np.ones(N), -np.ones(N - 1)], [-1, 0, 1])
    A = (sp.kron(T, sp.identity(N)) + sp.kron(sp.identity(N), T)) / h ** 2
    J = sp.hstack([A, -sp.identity(M)])
    H = sp.diags(np.concatenate([np.full(M, h ** 2), np.full(M, alpha * h ** 2)]))
    K = sp.bmat([[H, J.T], [J, None]], format="csc")
    rhs = np.concatenate([h ** 2 * Yd.ravel(), np.zeros(M), np.zeros(M)])
    z = spla.spsolve(K, rhs)
    y, u, lam = z[:M], z[M:2 * M], z[2 * M:]
    f = h ** 2 / 2 * (np.sum((y - Yd.ravel()) ** 2) + alpha * np.sum(u ** 2))
    # the model's row "state" reads A y - u = 0 with L = f + lam^T (A y - u): the same sign as here
    return float(f), y.reshape(N, N), u.reshape(N, N), lam.reshape(N, N)


_F_STAR, _Y_STAR, _U_STAR, _LAM_STAR = reference()
EXPECTED = {"objective": _F_STAR, "rtol": 1e-6, "values": {"y": _Y_STAR, "u": _U_STAR}, "atol_values": 1e-5,
            "status": "OPTIMAL"}
SOLVERS = ["alsketch", "nlp", "cvxpy"]

if __name__ == "__main__":
    print(build().solve())
