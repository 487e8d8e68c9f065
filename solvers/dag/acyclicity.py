"""Smooth acyclicity functions h(W) with h(W) = 0 exactly when the graph of W is a DAG.

Trace exponential (NOTEARS; Zheng, Aragam, Ravikumar, Xing, NeurIPS 2018)::

    h_exp(W) = tr(exp(W∘W)) − d,          ∇h_exp(W) = exp(W∘W)ᵀ ∘ 2W

Log-determinant (DAGMA; Bello, Aragam, Ravikumar, NeurIPS 2022), defined on the M-matrix domain
{W : s > ρ(W∘W)}::

    h_s(W) = −log det(sI − W∘W) + d log s,   ∇h_s(W) = 2 W ∘ (sI − W∘W)^{−T}

Both are ≥ 0 and vanish only on DAGs, because tr((W∘W)^k) counts weighted closed walks of length k.
The log-det gradient does not vanish as fast as the exponential's, which is why DAGMA is better conditioned.
W ∈ domain ⇔ (sI − W∘W)⁻¹ ≥ 0 entrywise (a nonsingular M-matrix); that is the check used here.
"""
from __future__ import annotations

import functools
import math

import torch


def _check_square(W: torch.Tensor, name: str = "W") -> int:
    if not isinstance(W, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(W).__name__}")
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"{name} must be a square (d, d) matrix, got shape {tuple(W.shape)}")
    return W.shape[0]


def h_expm(W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (h_exp(W), ∇h_exp(W)) for a square matrix W (no autograd needed)."""
    d = _check_square(W)
    E = torch.linalg.matrix_exp(W * W)
    return torch.diagonal(E).sum() - d, E.T * (2.0 * W)


def h_logdet(W: torch.Tensor, s: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Return (h_s(W), ∇h_s(W), inside) where inside says W is in the domain s > ρ(W∘W).

    Outside the domain h is reported as +inf (and the gradient is meaningless): callers treat that as a
    rejected step, as DAGMA does.
    """
    d = _check_square(W)
    if not s > 0:
        raise ValueError(f"s must be > 0 for the log-det acyclicity, got {s}")
    M = -(W * W)
    M.diagonal().add_(s)
    # one LU gives both the inverse and log det (inv + slogdet would factorise M twice)
    LU, piv, info = torch.linalg.lu_factor_ex(M)
    if bool(info != 0):
        return W.new_tensor(math.inf), torch.zeros_like(W), False
    Minv = torch.linalg.lu_solve(LU, piv, _eye(d, W.dtype, W.device))
    # (sI − A)⁻¹ ≥ 0 entrywise with A = W∘W ≥ 0  ⇔  s > ρ(A) (M-matrix); then det > 0 as well.
    # Two reductions; a NaN makes the comparison False, an inf fails isfinite.
    mn, mx = float(Minv.min()), float(Minv.max())
    if not (math.isfinite(mx) and mn >= -1e-6 * max(1.0, mx)):
        return W.new_tensor(math.inf), torch.zeros_like(W), False
    logabs = torch.log(torch.diagonal(LU).abs()).sum()
    return -logabs + d * math.log(s), 2.0 * W * Minv.T, True


@functools.lru_cache(maxsize=16)
def _eye(d: int, dtype, device) -> torch.Tensor:
    return torch.eye(d, dtype=dtype, device=device)


def h_expm_torch(W: torch.Tensor) -> torch.Tensor:
    """h_exp(W) as a differentiable torch expression (for use inside autograd losses)."""
    d = _check_square(W)
    return torch.diagonal(torch.linalg.matrix_exp(W * W)).sum() - d


def h_logdet_torch(W: torch.Tensor, s: float = 1.0) -> torch.Tensor:
    """h_s(W) as a differentiable torch expression (valid only inside the domain)."""
    d = _check_square(W)
    M = s * torch.eye(d, dtype=W.dtype, device=W.device) - W * W
    return -torch.linalg.slogdet(M)[1] + d * math.log(s)


def h_value(W: torch.Tensor, kind: str = "expm", s: float = 1.0) -> float:
    """Evaluate h(W) as a plain float; the certificate reported by every DAG backend."""
    if kind == "expm":
        return float(h_expm(W.detach())[0])
    if kind == "logdet":
        return float(h_logdet(W.detach(), s)[0])
    raise ValueError(f"acyclicity kind must be 'expm' or 'logdet', got {kind!r}")
