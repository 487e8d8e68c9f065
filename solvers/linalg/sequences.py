"""Generators of *sequences* of related sparse linear systems, for tuning SOR's ω online.

All systems are 5-point finite-difference operators on an ``ny × nx`` interior grid (natural, row-major
ordering; Dirichlet boundary), returned as scipy CSR matrices (SPD, diagonally dominant or shifted):

* :func:`laplacian_2d` — ``−∇·(k ∇u)`` with a nodal coefficient field ``k`` (face values = arithmetic mean
  of the two nodes); ``k ≡ 1`` gives the classic stencil with diagonal 4, off-diagonals −1, for which
  ``ρ_J(A + cI) = 4 cos(π/(m+1)) / (4 + c)`` on an ``m × m`` grid.
* :func:`shifted_laplacian_sequence` — ``A_t = A + c_t I`` with shifts on a grid or random
  (``c_t = lo + (hi − lo)·Beta(α, β)``, the setting of Khodak et al. 2024, §experiments) and right-hand
  sides ``b_t ~ N(0, I)`` truncated to [−3, 3]; the context is ``c_t``.
* :func:`heat_equation_sequence` — implicit-Euler steps of ``u_t = ∇·(κ(t) a(x, y) ∇u) + f``:
  ``(I + dt κ(t) L_a / h²) u^{n+1} = u^n + dt f``, with a time-varying diffusivity ``κ(t)``, so the best ω
  drifts along one simulation; ``u^n`` comes from an exact (direct) solve so the sequence does not depend on
  the solver under test. The context is ``r_t = dt κ(t) / h²`` (the mesh ratio).

Reference: M. Khodak, E. Chow, M.-F. Balcan, A. Talwalkar, "Learning to Relax", ICLR 2024 (utils/Heat2D.m
and the shifted-Laplacian scripts of the authors' code).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, Union

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = ["LinearSystem", "laplacian_2d", "shifted_laplacian_sequence", "heat_equation_sequence"]


@dataclass
class LinearSystem:
    """One instance ``A x = b`` of a sequence, with an optional scalar context feature."""

    A: sp.csr_matrix
    b: np.ndarray
    context: Optional[float] = None
    info: dict = field(default_factory=dict)


def laplacian_2d(m: int, nx: Optional[int] = None, *, coeff: Optional[np.ndarray] = None,
                 shift: float = 0.0) -> sp.csr_matrix:
    """5-point ``−∇·(k∇u)`` on an ``m × nx`` interior grid (unscaled: no 1/h²), plus ``shift·I``.

    ``coeff``: nodal coefficient array of shape ``(m, nx)`` (positive); default all ones.
    """
    ny, nx = int(m), int(nx if nx is not None else m)
    if ny < 1 or nx < 1:
        raise ValueError(f"grid size must be >= 1, got {ny} x {nx}")
    k = np.ones((ny, nx)) if coeff is None else np.asarray(coeff, dtype=np.float64)
    if k.shape != (ny, nx):
        raise ValueError(f"coeff must have shape ({ny}, {nx}), got {k.shape}")
    if not np.all(k > 0):
        raise ValueError("coeff must be positive everywhere")
    kh = 0.5 * (k[:, :-1] + k[:, 1:])          # faces between (i, j) and (i, j+1)
    kv = 0.5 * (k[:-1, :] + k[1:, :])          # faces between (i, j) and (i+1, j)
    diag = np.zeros((ny, nx))
    diag[:, :-1] += kh
    diag[:, 1:] += kh
    diag[:-1, :] += kv
    diag[1:, :] += kv
    diag[:, 0] += k[:, 0]                      # Dirichlet boundary faces use the node's own coefficient
    diag[:, -1] += k[:, -1]
    diag[0, :] += k[0, :]
    diag[-1, :] += k[-1, :]
    idx = np.arange(ny * nx).reshape(ny, nx)
    rows = [idx.ravel(), idx[:, :-1].ravel(), idx[:, 1:].ravel(), idx[:-1, :].ravel(), idx[1:, :].ravel()]
    cols = [idx.ravel(), idx[:, 1:].ravel(), idx[:, :-1].ravel(), idx[1:, :].ravel(), idx[:-1, :].ravel()]
    vals = [diag.ravel() + shift, -kh.ravel(), -kh.ravel(), -kv.ravel(), -kv.ravel()]
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(ny * nx,) * 2)
    A.sort_indices()
    return A


def _truncated_normal(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.clip(rng.standard_normal(n), -3.0, 3.0)


def shifted_laplacian_sequence(T: int, m: int, *, shifts: Union[str, Sequence[float], None] = None,
                               low: float = 0.0, high: float = 0.5, beta: tuple = (2.0, 6.0),
                               seed: int = 0) -> list[LinearSystem]:
    """``T`` systems ``(A + c_t I) x = b_t`` on an ``m × m`` grid; ``context = c_t``.

    ``shifts``: an explicit sequence of ``T`` shifts; ``"linspace"`` (``T`` evenly spaced in [low, high],
    in order); ``"uniform"`` (i.i.d. uniform in [low, high]); ``"beta"`` / None (``low + (high − low)·
    Beta(*beta)``, the paper's choice). Keep ``low > −λ_min(A) = −8 sin²(π/(2(m+1)))`` so every system is SPD.
    """
    rng = np.random.default_rng(seed)
    if shifts is None or shifts == "beta":
        c = low + (high - low) * rng.beta(beta[0], beta[1], size=T)
    elif shifts == "uniform":
        c = rng.uniform(low, high, size=T)
    elif shifts == "linspace":
        c = np.linspace(low, high, T)
    else:
        c = np.asarray(shifts, dtype=np.float64)
        if c.shape != (T,):
            raise ValueError(f"shifts must have shape ({T},), got {c.shape}")
    lam_min = 8.0 * math.sin(math.pi / (2 * (m + 1))) ** 2
    if np.any(c <= -lam_min):
        raise ValueError(f"shift {c.min():.4g} <= -lambda_min(A) = {-lam_min:.4g}: A + cI is not SPD on a "
                         f"{m}x{m} grid and SOR would diverge")
    A = laplacian_2d(m)
    I = sp.identity(m * m, format="csr")
    return [LinearSystem((A + float(ct) * I).tocsr(), _truncated_normal(rng, m * m), float(ct), {"t": t})
            for t, ct in enumerate(c)]


def heat_equation_sequence(T: int, m: int, *, dt: float = 1e-3, kappa: Optional[Callable[[float], float]] = None,
                           coeff: Optional[np.ndarray] = None, source: float = 1.0,
                           seed: int = 0) -> list[LinearSystem]:
    """``T`` implicit-Euler steps of the 2-D heat equation on the unit square, ``m × m`` interior nodes.

    ``A_t = I + (dt κ(t_n)/h²) L_a`` with ``L_a = laplacian_2d(m, coeff=a)``, ``b_t = u^n + dt·source``.
    Default ``κ(t) = 10^(1.5 sin(2π n/T))`` (diffusivity swinging over three decades, so the mesh ratio
    and the best ω change along the run) and ``a(x, y) = 1 + 0.5 sin(πx) sin(πy)``; ``u^0`` is a random
    smooth bump. ``context = r_t = dt κ(t_n)/h²``.
    """
    rng = np.random.default_rng(seed)
    h = 1.0 / (m + 1)
    xs = np.arange(1, m + 1) * h
    X, Y = np.meshgrid(xs, xs, indexing="xy")
    a = 1.0 + 0.5 * np.sin(np.pi * X) * np.sin(np.pi * Y) if coeff is None else np.asarray(coeff, float)
    La = laplacian_2d(m, coeff=a)
    x0, y0 = rng.uniform(0.3, 0.7, size=2)
    u = np.exp(-((X - x0) ** 2 + (Y - y0) ** 2) / 0.02).ravel()
    kap = kappa if kappa is not None else (lambda n: 10.0 ** (1.5 * math.sin(2 * math.pi * n / T)))
    I = sp.identity(m * m, format="csr")
    out = []
    for n in range(T):
        r = dt * float(kap(n)) / h ** 2
        A = (I + r * La).tocsr()
        b = u + dt * source
        out.append(LinearSystem(A, b, r, {"t": n, "kappa": float(kap(n))}))
        u = spla.spsolve(A.tocsc(), b)  # exact step: the sequence is independent of the solver under test
    return out
