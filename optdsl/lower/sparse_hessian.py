r"""Sparse Hessians of objectives that are separable in affine maps.

An objective of the form

    f(x) = Σ_k w_k · Σ_i φ_k((A_k x + b_k)_i)  +  Σ_j w_j (A_j x + b_j)ᵀ P_j (A_j x + b_j)  +  affine(x)

(sums of squares of affine expressions, ``od.sum``/``od.mean`` of elementwise smooth functions of an affine
expression — least squares, logistic losses, entropies —, quadratic forms and linear terms) has

    ∇²f(x) = Σ_k w_k A_kᵀ diag(φ_k''(A_k x + b_k)) A_k  +  Σ_j w_j A_jᵀ (P_j + P_jᵀ) A_j,

which is sparse whenever the A's are. The A's come from `SparseAffineLowering`; φ'' is computed by torch
autograd on the elementwise sub-expression (two backward passes give the diagonal because φ acts entrywise).
Objectives of any other form raise `NotSeparable` with the reason, and callers keep their dense path.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ..expr.analysis import is_affine
from ..expr.node import Expr, Op
from .sparse_affine import NotAffine, SparseAffineLowering

# entrywise ops of one argument, and binary ops that act entrywise when the other operand is constant
_UNARY = {"exp", "log", "sqrt", "square", "sin", "cos", "sigmoid", "power", "neg", "logistic", "entr", "inv_pos", "huber"}
_BINARY = {"add", "sub", "mul", "div"}


class NotSeparable(Exception):
    """The objective is not a sum of separable functions of affine maps (the message says which part)."""


def _depends(e: Expr, variables) -> bool:
    return any(v in variables for v in e.variables())


def _elementwise_root(e: Expr, variables) -> Expr:
    """The affine node z with e = φ(z) entrywise (same shape), or NotSeparable."""
    if is_affine(e, variables):
        return e
    if not isinstance(e, Op):
        raise NotSeparable(f"{e.label(40)!r} is not an entrywise function of an affine expression")
    if e.name in _UNARY:
        root = _elementwise_root(e.args[0], variables)
    elif e.name in _BINARY:
        dep = [a for a in e.args if _depends(a, variables)]
        roots = {id(r): r for r in (_elementwise_root(a, variables) for a in dep)}
        if len(roots) != 1:
            raise NotSeparable(f"{e.label(40)!r} combines two different variable-dependent expressions")
        root = next(iter(roots.values()))  # e.g. z * exp(z): one z, still entrywise
    else:
        raise NotSeparable(f"'{e.name}' in {e.label(40)!r} is not an entrywise operation")
    if root.shape != e.shape:
        raise NotSeparable(f"{e.label(40)!r} broadcasts its argument of shape {root.shape} to {e.shape}")
    return root


class SparseHessian:
    """``hessian(x) -> scipy CSR`` for a separable objective; constant parts are assembled once."""

    def __init__(self, objective: Expr, variables, offsets, n: int, lowering):
        self.variables = set(variables)
        self.aff = SparseAffineLowering(variables, offsets, n)
        self.low = lowering  # TorchLowering, to evaluate φ at z
        self.n = n
        self.constant = sp.csr_matrix((n, n))
        self.entrywise: list[tuple] = []  # (weight, φ(z) expression, z, A, b, squared)
        try:
            self._collect(objective, 1.0)
        except NotAffine as err:
            raise NotSeparable(str(err)) from None

    def _scalar_constant(self, e: Expr) -> float:
        if _depends(e, self.variables) or e.size != 1:
            raise NotSeparable(f"{e.label(40)!r} is not a scalar constant factor")
        return float(np.asarray(self.aff.lower(e).b).reshape(()))

    def _collect(self, e: Expr, w: float) -> None:
        if not _depends(e, self.variables) or is_affine(e, self.variables):
            return
        name = e.name if isinstance(e, Op) else None
        if name in ("add", "sub") and e.args[0].size == 1 and e.args[1].size == 1:
            self._collect(e.args[0], w)
            self._collect(e.args[1], w if name == "add" else -w)
        elif name == "neg":
            self._collect(e.args[0], -w)
        elif name == "mul" and e.size == 1:
            dep = [a for a in e.args if _depends(a, self.variables)]
            if len(dep) != 1:
                raise NotSeparable(f"{e.label(40)!r} is a product of variable-dependent factors")
            other = e.args[1] if dep[0] is e.args[0] else e.args[0]
            self._collect(dep[0], w * self._scalar_constant(other))
        elif name == "div" and e.size == 1 and not _depends(e.args[1], self.variables):
            self._collect(e.args[0], w / self._scalar_constant(e.args[1]))
        elif name == "sum_squares" and is_affine(e.args[0], self.variables):
            A = self.aff.lower(e.args[0]).A
            self.constant = self.constant + 2.0 * w * (A.T @ A)
        elif name == "quad_form" and is_affine(e.args[0], self.variables) \
                and not _depends(e.args[1], self.variables):
            A = self.aff.lower(e.args[0]).A
            P = sp.csr_matrix(np.asarray(self.aff.lower(e.args[1]).b))
            self.constant = self.constant + w * (A.T @ (P + P.T) @ A)
        elif name in ("sum", "mean", "sum_squares") and e.attrs.get("axis") is None:
            inner = e.args[0]
            scale = 1.0 / inner.size if name == "mean" else 1.0
            root = _elementwise_root(inner, self.variables)
            z = self.aff.lower(root)
            self.entrywise.append((w * scale, inner, root, z.A, z.b.reshape(-1), name == "sum_squares"))
        else:
            raise NotSeparable(f"the objective term {e.label(40)!r} is not a separable function of affine maps")

    def __call__(self, x: np.ndarray) -> sp.csr_matrix:
        H = self.constant
        for w, inner, root, A, b, squared in self.entrywise:
            zt = torch.as_tensor(A @ x + b, dtype=torch.float64).reshape(root.shape).requires_grad_(True)
            with torch.enable_grad():
                val = self.low.evaluate(inner, {}, {id(root): zt})
                total = (val * val).sum() if squared else val.sum()
                g, = torch.autograd.grad(total, zt, create_graph=True)
                d2, = torch.autograd.grad(g.sum(), zt, allow_unused=True)
            d2 = np.zeros(A.shape[0]) if d2 is None else d2.detach().cpu().numpy().reshape(-1)
            H = H + w * (A.T @ sp.diags(d2) @ A)
        return sp.csr_matrix(H)

