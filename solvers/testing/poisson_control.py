r"""2-D Poisson optimal control: a sparse equality-constrained QP whose size is a parameter.

On the unit square with an N x N interior grid (h = 1/(N+1)), state y and control u (N² values each):

    minimize   (h²/2) (‖y − y_d‖² + α ‖u‖²)      subject to   A y − u = 0,

where A = (1/h²)(T ⊗ I + I ⊗ T), T = tridiag(−1, 2, −1), is the 5-point discretization of −Δ with homogeneous
Dirichlet conditions (the standard elliptic model problem of PDE-constrained optimization, e.g. Hong, Na,
Mahoney & Kolar, ICML 2023 §6; Rees, Dollar & Wathen 2010). Unknowns n = 2N², constraints m = N² (N = 224 gives
n ≈ 1e5).

With the default target y_d(s, t) = sin(πs) sin(πt) — an eigenvector of A with eigenvalue
κ_h = (8/h²) sin²(πh/2) — the discrete solution is known in closed form: y = y_d/(1 + α κ_h²), u = κ_h y, and the
multiplier of A y − u = 0 is λ = α h² u.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch


@dataclass
class PoissonControl:
    """A generated instance: callables for ``optdsl.solvers.alsketch.minimize`` plus the closed-form answer."""

    N: int
    alpha: float
    A: sp.csr_matrix                      # (N², N²) discrete −Δ
    f: Callable[[torch.Tensor], torch.Tensor]
    eq: Callable[[torch.Tensor], torch.Tensor]
    jac_eq: Callable[[torch.Tensor], sp.csr_matrix]
    hess_lag: Callable[[torch.Tensor, torch.Tensor], sp.csr_matrix]
    x0: torch.Tensor
    x_star: torch.Tensor
    lam_star: torch.Tensor
    f_star: float

    @property
    def n(self) -> int:
        return 2 * self.N * self.N

    @property
    def m(self) -> int:
        return self.N * self.N


def laplacian_2d(N: int) -> sp.csr_matrix:
    """5-point −Δ on an N x N interior grid of the unit square, Dirichlet boundary, scaled by 1/h²."""
    h = 1.0 / (N + 1)
    T = sp.diags([-np.ones(N - 1), 2 * np.ones(N), -np.ones(N - 1)], [-1, 0, 1])
    I = sp.identity(N)
    return ((sp.kron(T, I) + sp.kron(I, T)) / h**2).tocsr()


def make(N: int = 32, alpha: float = 1e-2, *, dtype=torch.float64, device=None) -> PoissonControl:
    """Build the Poisson control QP on an N x N grid (n = 2N² unknowns x = (y, u), m = N² constraints)."""
    if not (isinstance(N, int) and N >= 2):
        raise ValueError(f"N must be an int >= 2, got {N!r}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    h = 1.0 / (N + 1)
    M = N * N
    A = laplacian_2d(N)
    s = np.arange(1, N + 1) * h
    yd_np = np.outer(np.sin(np.pi * s), np.sin(np.pi * s)).ravel()
    yd = torch.tensor(yd_np, dtype=dtype, device=device)
    Acoo = A.tocoo()
    At = torch.sparse_coo_tensor(np.vstack([Acoo.row, Acoo.col]), Acoo.data, (M, M), check_invariants=False,
                                 dtype=dtype, device=device).coalesce()
    w = h * h

    def f(x):
        y, u = x[:M], x[M:]
        return 0.5 * w * (((y - yd) ** 2).sum() + alpha * (u * u).sum())

    def eq(x):
        y, u = x[:M], x[M:]
        return torch.sparse.mm(At, y[:, None])[:, 0] - u

    J = sp.hstack([A, -sp.identity(M)]).tocsr()
    Hs = sp.diags(np.concatenate([np.full(M, w), np.full(M, w * alpha)])).tocsr()

    kappa = 8.0 / h**2 * math.sin(math.pi * h / 2) ** 2
    y_star = yd / (1 + alpha * kappa**2)
    u_star = kappa * y_star
    x_star = torch.cat([y_star, u_star])
    f_star = float(f(x_star))
    return PoissonControl(N=N, alpha=alpha, A=A, f=f, eq=eq, jac_eq=lambda x: J, hess_lag=lambda x, lam: Hs,
                          x0=torch.zeros(2 * M, dtype=dtype, device=device), x_star=x_star,
                          lam_star=alpha * w * u_star, f_star=f_star)
