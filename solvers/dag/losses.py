"""Score functions Q(W) for DAG learning; each returns (value, gradient) as torch tensors.

* ``l2`` — least squares for a linear SEM X = XW + Z (NOTEARS/DAGMA), in covariance form
  with C = XᵀX/n on centred data::

      Q(W) = (1/2n)‖X − XW‖²_F = ½ tr((I − W)ᵀ C (I − W)),   ∇Q = −C (I − W)

  Cost per call is O(d³), independent of n.
* ``logistic`` — binary data, x_j ~ Bernoulli(σ((XW)_j)) (NOTEARS' logistic loss)::

      Q(W) = (1/n) Σ [log(1 + e^{XW}) − X∘XW],              ∇Q = (1/n) Xᵀ(σ(XW) − X)

* a callable ``f(W) -> scalar`` — any differentiable torch loss (e.g. an MLP structural model);
  its gradient comes from autograd.

The L1 penalty λ‖W‖₁ is not part of Q: solvers treat it exactly (variable splitting or subgradient).
"""
from __future__ import annotations

from typing import Callable, Union

import torch


class L2Loss:
    """Least-squares score of a linear SEM, in covariance form."""

    name = "l2"

    def __init__(self, X: torch.Tensor):
        n = X.shape[0]
        Xc = X - X.mean(dim=0, keepdim=True)   # centring: the SEM has no intercept
        self.cov = Xc.T @ Xc / n
        self.eye = torch.eye(X.shape[1], dtype=X.dtype, device=X.device)

    def __call__(self, W: torch.Tensor):
        R = self.cov @ (self.eye - W)
        return 0.5 * torch.sum((self.eye - W) * R), -R


class LogisticLoss:
    """Logistic score for binary (0/1) data."""

    name = "logistic"

    def __init__(self, X: torch.Tensor):
        vals = torch.unique(X)
        if not bool(((vals == 0) | (vals == 1)).all()):
            raise ValueError("loss='logistic' needs binary data X with entries in {0, 1}; "
                         f"got values such as {vals[:5].tolist()}")
        self.X = X
        self.n = X.shape[0]

    def __call__(self, W: torch.Tensor):
        M = self.X @ W
        f = (torch.nn.functional.softplus(M) - self.X * M).sum() / self.n
        return f, self.X.T @ (torch.sigmoid(M) - self.X) / self.n


class TorchLoss:
    """Wraps an arbitrary differentiable ``f(W) -> scalar``; gradient by autograd."""

    name = "callable"

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]):
        if not callable(fn):
            raise TypeError(f"loss must be 'l2', 'logistic' or a callable, got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, W: torch.Tensor):
        with torch.enable_grad():
            Wv = W.detach().clone().requires_grad_(True)
            f = self.fn(Wv)
            if not isinstance(f, torch.Tensor) or f.numel() != 1:
                raise ValueError("a callable loss must return a scalar torch tensor, "
                                 f"got {type(f).__name__} {getattr(f, 'shape', '')}")
            (g,) = torch.autograd.grad(f, Wv, allow_unused=True)
        return f.detach().reshape(()), torch.zeros_like(W) if g is None else g


LossSpec = Union[str, Callable[[torch.Tensor], torch.Tensor]]


def make_loss(loss: LossSpec, X: torch.Tensor | None = None):
    """Build a loss object from 'l2', 'logistic' or a callable; data X is required for the named ones."""
    if callable(loss) and not isinstance(loss, str):
        return loss if isinstance(loss, (L2Loss, LogisticLoss, TorchLoss)) else TorchLoss(loss)
    if loss not in ("l2", "logistic"):
        raise ValueError(f"loss must be 'l2', 'logistic' or a callable f(W) -> scalar, got {loss!r}")
    if X is None:
        raise ValueError(f"loss={loss!r} needs the data matrix X")
    return L2Loss(X) if loss == "l2" else LogisticLoss(X)


class ParamLoss:
    """``fn(W, *params) -> scalar`` with extra torch parameters optimised jointly with W.

    The parameters are copied (never mutated); the optimiser works on a flat vector p and this object
    maps it back to the original shapes. ``unflatten(p)`` gives the fitted tensors.
    """

    name = "callable"

    def __init__(self, fn: Callable, params):
        if not callable(fn):
            raise TypeError(f"loss must be a callable fn(W, *params), got {type(fn).__name__}")
        self.fn = fn
        self.shapes = [tuple(q.shape) for q in params]
        self.sizes = [int(q.numel()) for q in params]
        self.p0 = torch.cat([q.detach().reshape(-1).to(torch.float64).cpu() for q in params]) \
            if params else torch.zeros(0, dtype=torch.float64)

    def unflatten(self, p: torch.Tensor):
        out, k = [], 0
        for shp, sz in zip(self.shapes, self.sizes):
            out.append(p[k:k + sz].reshape(shp))
            k += sz
        return out

    def __call__(self, W: torch.Tensor, p: torch.Tensor | None = None):
        with torch.enable_grad():
            Wv = W.detach().clone().requires_grad_(True)
            pv = (p if p is not None else self.p0.to(W)).detach().clone().requires_grad_(True)
            f = self.fn(Wv, *self.unflatten(pv))
            if not isinstance(f, torch.Tensor) or f.numel() != 1:
                raise ValueError("a callable loss must return a scalar torch tensor")
            gW, gp = torch.autograd.grad(f, (Wv, pv), allow_unused=True)
        gW = torch.zeros_like(W) if gW is None else gW
        gp = torch.zeros_like(pv) if gp is None else gp
        return f.detach().reshape(()), gW, gp


def with_params(loss):
    """Normalise a loss to the signature ``loss(W, p) -> (f, ∇_W f, ∇_p f or None)``."""
    if isinstance(loss, ParamLoss):
        return loss

    def wp(W, p=None):
        f, g = loss(W)
        return f, g, None
    return wp
