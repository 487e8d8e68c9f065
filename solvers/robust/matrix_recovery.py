"""Robust low-rank matrix recovery by the sub-gradient method (SubGM) with small initialisation.

Model: y_i = ⟨A_i, X*⟩ + s_i, X* = U*U*ᵀ ⪰ 0 of rank r, s_i sparse outliers of arbitrary size (or noise).
With an over-parameterised factor U ∈ R^{d×r'}, r' ≥ r, minimise the ℓ₁ loss

    f(U) = (1/m) Σ_i |⟨A_i, UUᵀ⟩ − y_i|,    D(U) = (1/m) Σ_i sign(⟨A_i, UUᵀ⟩ − y_i)(A_i + A_iᵀ) U,
    U_{t+1} = U_t − η_t D(U_t),   η_t = η₀ ρ^t,   U_0 = α B (B Gaussian, α small).

Ma & Fattahi, "Global convergence of sub-gradient method for robust matrix recovery: small initialization,
noisy measurements, and over-parameterization", JMLR 24, 2023: small initialisation makes the method agnostic
to r' and robust to dense, large outliers (Sign-RIP). Defaults follow refs Part 4.4 (constants are recalled and
were tuned here). The sign subgradient is invariant to the scale of X*, E[sign⟨A, M⟩ A] = √(2/π)σ_A M/‖M‖_F
for Gaussian A, so the step is set against the scale of A, not of X*: η₀ = 0.15 / rms(A), ρ = 0.995, α = 1e-7.
Larger η₀ (0.5) grows spurious directions when r' > r (error stalls near 1e-2); smaller (0.1) can run out of
step budget Σηₜ = η₀/(1 − ρ) before the signal has grown from α.
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from ..common import Budget, Callback, SolverOutput, Status, resolve_device

__all__ = ["subgm"]


def subgm(A: torch.Tensor, y: torch.Tensor, rank: int, *, alpha: float = 1e-7, eta0: Optional[float] = None,
          rho: float = 0.995, max_iter: int = 3000, tol: float = 0.0, time_limit: Optional[float] = None,
          callback: Optional[Callback] = None, seed: int = 0, device=None, dtype=None,
          X_true: Optional[torch.Tensor] = None) -> SolverOutput:
    """Run SubGM on measurements ``y`` (m,) of ``A`` (m, d, d); returns U (d, rank) as ``x``.

    ``tol`` > 0 stops when the relative step ‖U_{t+1} − U_t‖/‖U_t‖ falls below it. If ``X_true`` is given,
    history records ``error`` = ‖UUᵀ − X*‖_F/‖X*‖_F (for experiments). Inputs are not modified.
    """
    if not isinstance(A, torch.Tensor) or A.ndim != 3 or A.shape[1] != A.shape[2]:
        raise ValueError(f"A must be a tensor of shape (m, d, d), got {getattr(A, 'shape', type(A))}")
    if not isinstance(y, torch.Tensor) or y.shape != (A.shape[0],):
        raise ValueError(f"y must be a tensor of shape ({A.shape[0]},), got {getattr(y, 'shape', type(y))}")
    if rank < 1:
        raise ValueError(f"rank must be >= 1, got {rank}")
    if not 0 < rho <= 1:
        raise ValueError(f"rho must lie in (0, 1], got {rho}")
    device, dtype = resolve_device(device, dtype, like=A)
    A, y = A.to(device, dtype), y.to(device, dtype)
    m, d, _ = A.shape
    Af = A.reshape(m, d * d)  # flat views: two mat-vecs per iteration
    As = (A + A.transpose(1, 2)).reshape(m, d * d)  # symmetrised once: the subgradient uses A_i + A_iᵀ
    if eta0 is None:
        eta0 = 0.15 / (float(A.pow(2).mean().sqrt()) or 1.0)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    U = (alpha * torch.randn(d, rank, generator=gen, dtype=dtype) / math.sqrt(d)).to(device)
    budget = Budget(max_iter, time_limit, callback)
    nrm_true = None if X_true is None else float(torch.linalg.norm(X_true))
    status, msg, loss = None, "", math.nan
    for t in budget:
        res = Af @ (U @ U.T).reshape(-1) - y
        loss = float(res.abs().mean())
        if not math.isfinite(loss):
            status, msg = Status.NUMERICAL_ERROR, f"loss became {loss} at iteration {t}: lower eta0"
            break
        D = (torch.sign(res) @ As).reshape(d, d) @ U / m
        step = eta0 * rho ** t * D
        U = U - step
        info = {"objective": loss}
        if nrm_true is not None:
            info["error"] = float(torch.linalg.norm(U @ U.T - X_true.to(device, dtype))) / nrm_true
        if budget.report(t, x=U, **info):
            break
        if tol > 0 and float(torch.linalg.norm(step)) <= tol * max(float(torch.linalg.norm(U)), 1e-300):
            status, msg = Status.LOCALLY_OPTIMAL, f"relative step below tol={tol:g}"
            break
    status = status or budget.status or Status.ITERATION_LIMIT
    return SolverOutput(x=U, status=status, objective=loss, iterations=len(budget.history), message=msg,
                        counts={"grad": len(budget.history)}, history=budget.history,
                        extras={"X": U @ U.T, "eta0": eta0})
