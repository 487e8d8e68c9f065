"""CVXPY lowering: map the IR onto cvxpy atoms, so cvxpy's DCP analysis decides convexity.

An op with no cvxpy counterpart (sigmoid, sin, opaque functions) raises `NotRepresentable`; the model
is then simply not convex-representable and other backends are used.
"""
from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from ..expr.node import Constant, Expr, Leaf, Parameter, Variable
from ..solvers.lazy import lazy_module
from ._walk import lower

cp = lazy_module("cvxpy")   # imported on first use: ~0.7 s that models without a convex step skip


class NotRepresentable(Exception):
    """The expression uses an op cvxpy cannot express."""


def _missing(name):
    def impl(a, at):
        raise NotRepresentable(f"'{name}' has no cvxpy atom")
    return impl


def _reduce(fn):
    def impl(a, at):
        axis = at.get("axis")
        if isinstance(axis, (tuple, list)):
            raise NotRepresentable("reductions over several axes are not lowered to cvxpy")
        return fn(a[0], axis)
    return impl


def _norm(a, at):
    p, axis = at["p"], at.get("axis")
    x = a[0]
    if axis is not None:
        if isinstance(axis, (tuple, list)):
            raise NotRepresentable("norms over several axes are not lowered to cvxpy")
        return cp.norm(x, 2 if p == "fro" else p, axis=axis)
    if x.ndim > 1:  # entrywise, as in the torch lowering (cvxpy's matrix norms are induced norms)
        return cp.norm(cp.vec(x, order="C"), 2 if p == "fro" else p)
    return cp.norm(x, p)


def _pnorm(a, at):
    x, axis = a[0], at.get("axis")
    if isinstance(axis, (tuple, list)):
        raise NotRepresentable("norms over several axes are not lowered to cvxpy")
    if axis is None and x.ndim > 1:
        x = cp.vec(x, order="C")
    return cp.pnorm(x, at["p"], axis=axis)


def _cumsum(a, at):
    axis = at.get("axis")
    x = cp.Constant(a[0]) if not isinstance(a[0], cp.Expression) else a[0]
    return cp.cumsum(cp.vec(x, order="C") if axis is None else x, axis=0 if axis is None else axis)


def _expr(x):
    return x if isinstance(x, cp.Expression) else cp.Constant(x)


def _power(a, at):
    p = at["p"]
    return cp.square(a[0]) if p == 2 else cp.power(a[0], p)


def _mul(a, at):
    x, y = a
    if np.ndim(x) == 0 or np.ndim(y) == 0:
        return x * y
    return cp.multiply(x, y)


def _div(a, at):
    x, y = a
    if isinstance(y, cp.Expression) and not y.is_constant():
        raise NotRepresentable("division by a non-constant expression")
    return x / y


def _matmul(a, at):
    x, y = a
    return x @ y


def _index(a, at):
    return a[0][at["key"]]


def _stack(a, at):
    nd = np.ndim(a[0])
    if nd == 0:
        return cp.hstack([cp.reshape(x, (1,), order="C") for x in a])
    if nd == 1:
        m = cp.vstack(list(a))
        return m if at["axis"] == 0 else m.T
    raise NotRepresentable("stack of matrices is not lowered to cvxpy")


def _concat(a, at):
    if a[0].ndim == 1:
        return cp.hstack(a)
    return cp.vstack(a) if at["axis"] == 0 else cp.hstack(a)


def _mean(x, axis):
    n = int(np.prod(x.shape)) if axis is None else x.shape[axis]
    return cp.sum(x, axis=axis) / n


_DEFINITENESS: dict[int, tuple] = {}  # id(constant's array) -> (weak reference, symmetric part, kind)


def _definiteness(P: np.ndarray) -> tuple:
    """(symmetric part S, "psd" | "nsd" | "indefinite") of a constant matrix, from the eigenvalues of
    S = (P + Pᵀ)/2 (xᵀPx = xᵀSx), computed once per constant array."""
    hit = _DEFINITENESS.get(id(P))
    if hit is not None and hit[0]() is P:
        return hit[1], hit[2]
    S = (P + P.T) / 2
    w = np.linalg.eigvalsh(S) if S.size else np.zeros(1)
    tol = 1e-10 * max(1.0, float(np.abs(w).max()))
    kind = "psd" if w.min() >= -tol else "nsd" if w.max() <= tol else "indefinite"
    _DEFINITENESS[id(P)] = (weakref.ref(P), S, kind)
    return S, kind


def _quad_form(x, P):
    """xᵀPx. A constant P is convex only when positive semidefinite (checked, never assumed)."""
    if isinstance(P, cp.Expression):
        return cp.quad_form(x, P)
    S, kind = _definiteness(np.asarray(P, dtype=float))
    if kind == "psd":
        return cp.quad_form(x, S, assume_PSD=True)
    if kind == "nsd":
        return -cp.quad_form(x, -S, assume_PSD=True)
    raise NotRepresentable(f"quad_form with an indefinite matrix (eigenvalues of both signs) is neither convex "
                           f"nor concave")


CVXPY: dict[str, Any] = {
    "add": lambda a, at: a[0] + a[1],
    "sub": lambda a, at: a[0] - a[1],
    "mul": _mul,
    "div": _div,
    "neg": lambda a, at: -a[0],
    "power": _power,
    "matmul": _matmul,
    "sum": _reduce(lambda x, axis: cp.sum(x, axis=axis)),
    "mean": _reduce(_mean),
    "max": _reduce(lambda x, axis: cp.max(x, axis=axis)),
    "min": _reduce(lambda x, axis: cp.min(x, axis=axis)),
    "logsumexp": _reduce(lambda x, axis: cp.log_sum_exp(x, axis=axis)),
    "transpose": lambda a, at: a[0].T,
    "reshape": lambda a, at: cp.reshape(a[0], at["shape"], order="C"),
    "index": _index,
    "stack": _stack,
    "concat": _concat,
    "exp": lambda a, at: cp.exp(a[0]),
    "log": lambda a, at: cp.log(a[0]),
    "sqrt": lambda a, at: cp.sqrt(a[0]),
    "square": lambda a, at: cp.square(a[0]),
    "abs": lambda a, at: cp.abs(a[0]),
    "relu": lambda a, at: cp.pos(a[0]),
    "maximum": lambda a, at: cp.maximum(a[0], a[1]),
    "minimum": lambda a, at: cp.minimum(a[0], a[1]),
    "norm": _norm,
    "sum_squares": lambda a, at: cp.sum_squares(a[0]),
    "quad_form": lambda a, at: _quad_form(*a),
    "sin": _missing("sin"),
    "cos": _missing("cos"),
    "sigmoid": _missing("sigmoid"),
    "fn": _missing("od.fn (opaque torch function)"),
    "trace_expm": _missing("trace_expm (the NOTEARS acyclicity function)"),
    "finite_sum": _missing("od.mean(..., over=data) (finite sum of a torch loss)"),
    "max_over": _missing("od.maximum_over (a min-max objective)"),
    "blackbox": _missing("od.blackbox (black-box function)"),
    "huber": lambda a, at: cp.huber(a[0], at["M"]),
    "entr": lambda a, at: cp.entr(a[0]),
    "logistic": lambda a, at: cp.logistic(a[0]),
    "inv_pos": lambda a, at: cp.inv_pos(a[0]),
    "kl_div": lambda a, at: cp.kl_div(a[0], a[1]),
    "rel_entr": lambda a, at: cp.rel_entr(a[0], a[1]),
    "log_det": lambda a, at: cp.log_det(a[0]),
    "trace": lambda a, at: cp.trace(_expr(a[0])),
    "diag": lambda a, at: cp.diag(a[0]),
    "diff": lambda a, at: cp.diff(_expr(a[0]), at["k"], axis=at["axis"]),
    "cumsum": _cumsum,
    "pnorm": _pnorm,
    "geo_mean": lambda a, at: cp.geo_mean(a[0], None if at.get("p") is None else list(at["p"])),
    "quad_over_lin": lambda a, at: cp.quad_over_lin(a[0], cp.reshape(_expr(a[1]), (), order="C")),
    "lambda_max": lambda a, at: cp.lambda_max(a[0]),
    "matrix_frac": lambda a, at: cp.matrix_frac(a[0], a[1]),
}


class CvxpyLowering:
    """Lowers expressions onto one shared set of cvxpy Variables/Parameters (one per optdsl leaf)."""

    def __init__(self):
        self.variables: dict[Variable, cp.Variable] = {}
        self.parameters: dict[Parameter, cp.Parameter] = {}

    def leaf(self, leaf: Leaf):
        if isinstance(leaf, Variable):
            v = self.variables.get(leaf)
            if v is None:
                kind = ({"boolean": True} if getattr(leaf, "boolean", False)
                        else {"integer": True} if getattr(leaf, "integer", False) else {})
                structure = getattr(leaf, "structure", None)
                if structure == "diag":  # a dense diag(v): cvxpy's diag=True variables hold sparse values
                    v = cp.diag(cp.Variable(leaf.shape[0], name=leaf.name, **kind))
                else:
                    kind.update({structure: True} if structure else {})
                    v = cp.Variable(leaf.shape, name=leaf.name, **kind)
                self.variables[leaf] = v
            return v
        if isinstance(leaf, Parameter):
            p = self.parameters.get(leaf)
            if p is None:
                p = self.parameters[leaf] = cp.Parameter(leaf.shape, name=leaf.name, value=leaf.value,
                                                         **getattr(leaf, "attributes", {}))
            return p
        if isinstance(leaf, Constant):
            return leaf.data
        raise NotRepresentable(f"{type(leaf).__name__.lower()} {leaf.name!r} needs a rewrite before cvxpy")

    def lower(self, expr: Expr):
        try:
            out = lower(expr, self.leaf, CVXPY)
        except NotRepresentable:
            raise
        except (ValueError, TypeError, IndexError, AttributeError) as e:  # cvxpy refused a construct
            raise NotRepresentable(str(e)) from None
        return out if isinstance(out, cp.Expression) else cp.Constant(out)

    def refresh_parameters(self) -> None:
        for leaf, p in self.parameters.items():
            p.value = leaf.value
