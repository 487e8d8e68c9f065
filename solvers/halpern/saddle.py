"""Saddle-point helpers: from a convex–concave L(x, y) to the monotone operator F, and duality gaps.

For min_x max_y L(x, y) with L convex in x and concave in y, F(x, y) = (∇ₓL, −∇ᵧL) is monotone
(Rockafellar 1970) and (x*, y*) is a saddle point on X × Y iff 0 ∈ F(z*) + N_{X×Y}(z*). The operator acts on
the flat vector z = (vec x, vec y) so that all methods work on one tensor; `pack` / `unpack` convert.

Duality gap (a certificate that needs no solution): gap(x, y) = max_{y'∈Y} L(x, y') − min_{x'∈X} L(x', y) ≥ 0,
zero exactly at saddle points. Computable in closed form for bilinear L = xᵀAy + bᵀx + cᵀy through the
support functions σ of X and Y:  gap = bᵀx + σ_Y(Aᵀx + c) − cᵀy + σ_X(−(Ay + b)).
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch

from .projections import as_projection

__all__ = ["pack", "unpack", "saddle_operator", "bilinear_gap", "bilinear_gap_fn"]


def pack(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """z = (vec x, vec y)."""
    return torch.cat([x.reshape(-1), y.reshape(-1)])


def unpack(z: torch.Tensor, x_shape, y_shape):
    """Views (x, y) of the flat z with the given shapes."""
    nx = math.prod(x_shape)
    return z[:nx].reshape(x_shape), z[nx:].reshape(y_shape)


def _check_value(val, where: str):
    if not isinstance(val, torch.Tensor):
        raise TypeError(f"L(x, y) must return a torch scalar tensor, got {type(val).__name__} {where}")
    if val.numel() != 1:
        raise ValueError(f"L(x, y) must return a scalar, got a tensor of shape {tuple(val.shape)} {where}")


def saddle_operator(L: Callable, x_shape, y_shape, *, sample_x: Optional[torch.Tensor] = None,
                    sample_y: Optional[torch.Tensor] = None) -> Callable:
    """F(z) = (∇ₓL(x, y), −∇ᵧL(x, y)) on flat z, by autograd.

    Uses ``torch.autograd.grad``; ``F.functional`` is the same operator through ``torch.func.grad`` (for
    Jacobian-vector products, e.g. Lipschitz estimation, when L is functional). When sample points are given, L is called once there to check
    that it returns a scalar tensor (a clear ValueError/TypeError otherwise).
    """
    if not callable(L):
        raise TypeError(f"L must be a callable (x, y) -> scalar tensor, got {type(L).__name__}")
    x_shape, y_shape = tuple(x_shape), tuple(y_shape)
    if sample_x is not None and sample_y is not None:
        _check_value(L(sample_x, sample_y), f"at x of shape {x_shape}, y of shape {y_shape}")

    def L_scalar(x, y):
        return L(x, y).reshape(())

    grad_xy = torch.func.grad(L_scalar, argnums=(0, 1))

    def F_func(z):
        x, y = unpack(z, x_shape, y_shape)
        gx, gy = grad_xy(x, y)
        return torch.cat([gx.reshape(-1), -gy.reshape(-1)])

    def F_autograd(z):
        with torch.enable_grad():
            x, y = unpack(z.detach(), x_shape, y_shape)
            x = x.clone().requires_grad_(True)
            y = y.clone().requires_grad_(True)
            val = L(x, y)
            _check_value(val, "during the solve")
            gx, gy = torch.autograd.grad(val.reshape(()), (x, y), allow_unused=True)
        gx = torch.zeros_like(x) if gx is None else gx
        gy = torch.zeros_like(y) if gy is None else gy
        return torch.cat([gx.reshape(-1), -gy.reshape(-1)]).detach()

    def F(z):
        return F_autograd(z)

    # torch.func version, composable with jvp/vjp: used by Lipschitz estimation (3x slower per call, so the
    # solve itself uses plain autograd)
    F.functional = F_func
    return F


def bilinear_gap(A: torch.Tensor, x: torch.Tensor, y: torch.Tensor, X=None, Y=None,
                 b: Optional[torch.Tensor] = None, c: Optional[torch.Tensor] = None) -> float:
    """Duality gap of L = xᵀAy + bᵀx + cᵀy over sets X, Y (objects with ``support``; None = whole space)."""
    X, Y = as_projection(X, "X"), as_projection(Y, "Y")
    for name, S in (("X", X), ("Y", Y)):
        if not hasattr(S, "support"):
            raise TypeError(f"{name} must be a set with a support function (Box, Simplex, Ball, ...) for a gap")
    x, y = x.reshape(-1), y.reshape(-1)
    if A.shape != (x.numel(), y.numel()):
        raise ValueError(f"A must have shape ({x.numel()}, {y.numel()}) to match x and y, got {tuple(A.shape)}")
    gx = A.T @ x + (c if c is not None else 0.0)
    gy = A @ y + (b if b is not None else 0.0)
    lin_x = float(b @ x) if b is not None else 0.0
    lin_y = float(c @ y) if c is not None else 0.0
    return lin_x + Y.support(gx) - lin_y + X.support(-gy)


def bilinear_gap_fn(A, X=None, Y=None, b=None, c=None) -> Callable:
    """gap(x, y) closure for `solve_saddle(gap_fn=...)`."""
    return lambda x, y: bilinear_gap(A, x, y, X, Y, b, c)
