r"""Sparse affine lowering: an affine expression as ``vec(e) = A x + b`` with ``A`` a scipy CSR matrix.

``x`` is the flat vector of a `FlatProblem` (variables concatenated, each row-major) and ``vec`` is row-major
too, so row ``i`` of ``A`` is the gradient of ``e.reshape(-1)[i]``. Large models (a PDE constraint with 10^5
rows) get their constraint Jacobians this way — exactly and in O(nnz) memory — where autograd would build a
dense ``m x n`` matrix.

Each node lowers to ``(A, b)``; a node that does not depend on the variables has ``A = None`` and is
evaluated numerically through the torch table, so constants of any form (parameters, ``T @ T``) work.
Linear ops that only move entries (transpose, reshape, index, stack, concat, broadcasting) are applied to an
array of row numbers, which gives the row selection without writing one rule per op.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
import scipy.sparse as sp
import torch

from ..expr.node import Constant, Expr, Leaf, Parameter, Variable
from ..expr.ops import SPECS
from ._walk import lower
from .torch import TORCH


class NotAffine(Exception):
    """The expression is not affine in the variables (or uses an op this lowering does not know)."""


class Affine:
    """``vec(value) = A x + b`` for an expression of shape ``shape``; ``A is None`` for a constant."""
    __slots__ = ("A", "b")

    def __init__(self, A: Optional[sp.csr_matrix], b):
        # b is an array, or a scipy sparse matrix for a sparse constant (only ever a matmul's left operand)
        self.A, self.b = A, (b if sp.issparse(b) else np.asarray(b, dtype=float))

    @property
    def shape(self):
        return self.b.shape

    def rows(self, index: np.ndarray) -> "Affine":
        """Entries picked (with repetition) by an integer array of flat positions; result has index's shape."""
        flat = index.reshape(-1)
        A = None if self.A is None else self.A[flat]
        return Affine(A, self.b.reshape(-1)[flat].reshape(index.shape))

    def scale(self, c: np.ndarray) -> "Affine":
        """Entrywise product with a constant of the same shape."""
        A = None if self.A is None else sp.diags(np.asarray(c, float).reshape(-1)) @ self.A
        return Affine(A, self.b * c)


def _positions(shape) -> np.ndarray:
    return np.arange(int(np.prod(shape, dtype=int))).reshape(shape)


def _broadcast(a: Affine, shape) -> Affine:
    if a.shape == tuple(shape):
        return a
    return a.rows(np.broadcast_to(_positions(a.shape), shape))


def _plus(x: Affine, y: Affine, sign: float) -> Affine:
    shape = np.broadcast_shapes(x.shape, y.shape)
    x, y = _broadcast(x, shape), _broadcast(y, shape)
    if x.A is None:
        A = None if y.A is None else sign * y.A
    else:
        A = x.A if y.A is None else x.A + sign * y.A
    return Affine(A, x.b + sign * y.b)


def _mul(a, at):
    x, y = a
    if x.A is not None and y.A is not None:
        raise NotAffine("product of two variable-dependent factors")
    if x.A is None:
        x, y = y, x
    shape = np.broadcast_shapes(x.shape, y.shape)
    return _broadcast(x, shape).scale(np.broadcast_to(y.b, shape))


def _div(a, at):
    x, y = a
    if y.A is not None:
        raise NotAffine("division by a variable-dependent expression")
    shape = np.broadcast_shapes(x.shape, y.shape)
    return _broadcast(x, shape).scale(1.0 / np.broadcast_to(y.b, shape))


def _matmul(a, at):
    x, y = a
    if x.A is not None and y.A is not None:
        raise NotAffine("matmul of two variable-dependent operands")
    if y.A is None:  # X @ C:  vec(X C) = (I_p ⊗ Cᵀ) vec(X) for row-major vec
        C = np.asarray(y.b)
        if x.b.ndim == 1:
            M = sp.csr_matrix(C.T if C.ndim == 2 else C.reshape(1, -1))
        else:
            M = sp.kron(sp.identity(x.shape[0]), sp.csr_matrix(C.T if C.ndim == 2 else C.reshape(1, -1)))
        return Affine(sp.csr_matrix(M @ x.A), x.b @ C)
    C = x.b if sp.issparse(x.b) else np.asarray(x.b)  # C @ Y:  vec(C Y) = (C ⊗ I_q) vec(Y)
    Cm = sp.csr_matrix(C if C.ndim == 2 else C.reshape(1, -1))
    M = Cm if y.b.ndim == 1 else sp.kron(Cm, sp.identity(y.shape[1]))
    return Affine(sp.csr_matrix(M @ y.A), np.asarray(C @ y.b))


def _reduce(mean: bool):
    def impl(a, at):
        x, axis = a[0], at.get("axis")
        pos = _positions(x.shape)
        out_shape = np.sum(np.zeros(x.shape), axis=axis).shape if x.shape else ()
        out_pos = _positions(out_shape)
        axes = tuple(range(x.b.ndim)) if axis is None else ((axis,) if isinstance(axis, int) else tuple(axis))
        target = np.broadcast_to(np.expand_dims(out_pos, tuple(ax % max(x.b.ndim, 1) for ax in axes)), x.shape)
        count = x.b.size // max(out_pos.size, 1)
        w = 1.0 / count if mean else 1.0
        S = sp.csr_matrix((np.full(x.b.size, w), (target.reshape(-1), pos.reshape(-1))),
                          shape=(out_pos.size, x.b.size))
        A = None if x.A is None else sp.csr_matrix(S @ x.A)
        return Affine(A, (S @ x.b.reshape(-1)).reshape(out_shape))
    return impl


def _moves(fn: Callable[[np.ndarray, dict], np.ndarray]):
    """An op that only rearranges entries: apply it to the positions and select those rows."""
    def impl(a, at):
        return a[0].rows(np.asarray(fn(_positions(a[0].shape), at)))
    return impl


def _index_positions(pos, at):
    key = at["key"]
    return pos[key]


def _join(kind):
    def impl(a, at):
        offsets = np.cumsum([0] + [x.b.size for x in a])
        blocks = [(pos + o) for pos, o in zip((_positions(x.shape) for x in a), offsets)]
        pos = np.stack(blocks, axis=at["axis"]) if kind == "stack" else np.concatenate(blocks, axis=at["axis"])
        if all(x.A is None for x in a):
            A = None
        else:
            n = next(x.A.shape[1] for x in a if x.A is not None)
            A = sp.vstack([x.A if x.A is not None else sp.csr_matrix((x.b.size, n)) for x in a], format="csr")
        return Affine(A, np.concatenate([x.b.reshape(-1) for x in a])).rows(pos)
    return impl


AFFINE: dict[str, Any] = {
    "add": lambda a, at: _plus(a[0], a[1], 1.0),
    "sub": lambda a, at: _plus(a[0], a[1], -1.0),
    "neg": lambda a, at: Affine(None if a[0].A is None else -a[0].A, -a[0].b),
    "mul": _mul,
    "div": _div,
    "matmul": _matmul,
    "sum": _reduce(False),
    "mean": _reduce(True),
    "transpose": _moves(lambda p, at: p.T),
    "reshape": _moves(lambda p, at: p.reshape(at["shape"])),
    "index": _moves(_index_positions),
    "stack": _join("stack"),
    "concat": _join("concat"),
    "power": lambda a, at: a[0] if at["p"] == 1 else _nonaffine("power", a, at),
}


def _along(shape: tuple, axis: int, M: sp.spmatrix) -> sp.csr_matrix:
    """The row-major matrix applying M (out_len x len) to every 1-D slice along `axis` of an array of `shape`."""
    before, after = int(np.prod(shape[:axis], dtype=int)), int(np.prod(shape[axis + 1:], dtype=int))
    return sp.csr_matrix(sp.kron(sp.kron(sp.identity(before), M), sp.identity(after)))


def _linear(matrix: Callable[[tuple, dict], sp.spmatrix], out_shape: Callable[[tuple, dict], tuple]):
    """A linear op given by its sparse matrix on the row-major vector of its argument."""
    def impl(a, at):
        x = a[0]
        S = matrix(x.shape, at)
        return Affine(None if x.A is None else sp.csr_matrix(S @ x.A),
                      (S @ x.b.reshape(-1)).reshape(out_shape(x.shape, at)))
    return impl


def _diff_matrix(shape, at):
    L, k = shape[at["axis"]], at["k"]
    D = sp.identity(L, format="csr")
    for j in range(k):
        D = sp.diags([-np.ones(L - j - 1), np.ones(L - j - 1)], [0, 1], shape=(L - j - 1, L - j)) @ D
    return _along(shape, at["axis"], D)


def _cumsum_matrix(shape, at):
    axis = at.get("axis")
    if axis is None:
        return sp.csr_matrix(np.tril(np.ones((int(np.prod(shape, dtype=int)),) * 2)))
    return _along(shape, axis, sp.csr_matrix(np.tril(np.ones((shape[axis], shape[axis])))))


def _diag_matrix(shape, at):
    n = shape[0]
    if len(shape) == 1:  # vector -> diagonal matrix: entry i goes to position i*n + i
        return sp.csr_matrix((np.ones(n), (np.arange(n) * (n + 1), np.arange(n))), shape=(n * n, n))
    return sp.csr_matrix((np.ones(n), (np.arange(n), np.arange(n) * (n + 1))), shape=(n, n * n))


AFFINE.update({  # the linear atoms of the CVXPY set
    "diff": _linear(_diff_matrix, lambda s, at: s[:at["axis"]] + (s[at["axis"]] - at["k"],) + s[at["axis"] + 1:]),
    "cumsum": _linear(_cumsum_matrix, lambda s, at: (int(np.prod(s, dtype=int)),) if at.get("axis") is None else s),
    "diag": _linear(_diag_matrix, lambda s, at: (s[0], s[0]) if len(s) == 1 else (s[0],)),
    "trace": _linear(lambda s, at: sp.csr_matrix(_diag_matrix(s, at).sum(axis=0)), lambda s, at: ()),
})


def _nonaffine(name, a, at):
    raise NotAffine(f"'{name}' of a variable-dependent expression")


class SparseAffineLowering:
    """Lowers affine expressions of `variables` (flat offsets `offsets`, total size `n`) to `Affine`."""

    def __init__(self, variables, offsets, n: int):
        self.n = n
        self.where = {v: (o, v.size) for v, o in zip(variables, offsets)}

    def _leaf(self, leaf: Leaf) -> Affine:
        if isinstance(leaf, Variable):
            if leaf not in self.where:
                raise NotAffine(f"variable {leaf.name!r} is not among the problem's variables")
            o, s = self.where[leaf]
            A = sp.csr_matrix((np.ones(s), (np.arange(s), np.arange(o, o + s))), shape=(s, self.n))
            return Affine(A, np.zeros(leaf.shape))
        if isinstance(leaf, Constant) and leaf.sparse:
            return Affine(None, leaf.data)
        if isinstance(leaf, (Constant, Parameter)):
            value = leaf.data if isinstance(leaf, Constant) else leaf.value
            if value is None:
                raise NotAffine(f"parameter {leaf.name!r} has no value")
            return Affine(None, np.asarray(value, dtype=float))
        raise NotAffine(f"{type(leaf).__name__.lower()} {leaf.name!r} cannot be lowered")

    def _op(self, name):
        def impl(a, at):
            if all(x.A is None for x in a):  # constant subtree: evaluate numerically
                if sp.issparse(a[0].b):  # sparse @ constant (op() allows a sparse matrix nowhere else)
                    return Affine(None, np.asarray(a[0].b @ a[1].b))
                t = TORCH[name]([torch.as_tensor(x.b, dtype=torch.float64) for x in a], at)
                return Affine(None, t.detach().numpy())
            rule = AFFINE.get(name)
            if rule is None:
                raise NotAffine(f"'{name}' of a variable-dependent expression")
            return rule(a, at)
        return impl

    def lower(self, expr: Expr) -> Affine:
        out = lower(expr, self._leaf, {name: self._op(name) for name in SPECS})
        if out.A is None:
            out = Affine(sp.csr_matrix((out.b.size, self.n)), out.b)
        return Affine(sp.csr_matrix(out.A), out.b)

