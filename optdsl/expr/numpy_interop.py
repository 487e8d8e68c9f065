"""NumPy interop: numpy functions and ufuncs applied to expressions build expressions.

`Expr.__array_ufunc__` routes ``np.exp(x)``, ``A @ x``, ``A * x``, ``A <= x`` (an array on the left) here,
and `Expr.__array_function__` routes ``np.sum(x)``, ``np.linalg.norm(x)``, ``np.stack([...])``. Each
supported numpy name maps onto the od.* atom of the same meaning; any other raises a one-line
`ModelError` naming the od.* spelling to use (or saying there is none).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ModelError
from . import atoms
from .node import BetweenConstraint, Constraint, PSDConstraint, op  # noqa: F401 (BetweenConstraint: docs)

_UNARY = {
    "exp": atoms.exp, "log": atoms.log, "sqrt": atoms.sqrt, "square": atoms.square, "sin": atoms.sin,
    "cos": atoms.cos, "absolute": atoms.abs, "fabs": atoms.abs, "negative": lambda x: -x,
    "positive": lambda x: x, "reciprocal": lambda x: 1.0 / x,
    "log1p": lambda x: atoms.log(1.0 + x), "expm1": lambda x: atoms.exp(x) - 1.0,
}
_BINARY = {
    "add": lambda a, b: op("add", a, b), "subtract": lambda a, b: op("sub", a, b),
    "multiply": lambda a, b: op("mul", a, b), "divide": lambda a, b: op("div", a, b),
    "true_divide": lambda a, b: op("div", a, b), "matmul": lambda a, b: op("matmul", a, b),
    "maximum": atoms.maximum, "minimum": atoms.minimum, "fmax": atoms.maximum, "fmin": atoms.minimum,
    "power": lambda a, b: _power(a, b),
    "equal": lambda a, b: Constraint(a, b, "=="), "less_equal": lambda a, b: Constraint(a, b, "<="),
    "greater_equal": lambda a, b: Constraint(b, a, "<="),
    "right_shift": lambda a, b: PSDConstraint(a, b), "left_shift": lambda a, b: PSDConstraint(b, a),
    "logaddexp": lambda a, b: atoms.logsumexp(atoms.stack([a, b]), axis=0),
}
# numpy names with no direct counterpart: what to write instead
_INSTEAD = {
    "less": "<= (strict inequalities are not supported)", "greater": ">= (strict inequalities are not supported)",
    "not_equal": "two inequalities (!= is not a constraint)", "tanh": "od.fn(torch.tanh)", "arctan": "od.fn(torch.atan)",
    "sign": "od.fn(torch.sign) (not differentiable)", "floor": "an integer variable", "ceil": "an integer variable",
    "round": "an integer variable", "rint": "an integer variable", "heaviside": "od.blackbox(...)",
    "float_power": "x ** p", "exp2": "od.exp(x * np.log(2))", "log2": "od.log(x) / np.log(2)",
    "log10": "od.log(x) / np.log(10)", "prod": "od.geo_mean (or od.exp(od.sum(od.log(x))))",
    "det": "od.log_det", "slogdet": "od.log_det", "inv": "od.matrix_frac / od.inv_pos",
    "eigvalsh": "od.lambda_max", "where": "od.maximum / od.minimum", "sort": "od.max / od.min",
    "all": "Model.subject_to (constraints have no truth value)", "any": "Model.subject_to",
    "array": "od.stack / od.hstack / od.vstack", "asarray": "od.stack / od.hstack", "outer": "od.reshape and *",
}


def _power(a, b):
    from .node import Expr
    if isinstance(b, Expr) or not np.isscalar(b):
        raise ModelError("np.power(x, p): p must be a Python number (write x ** p)")
    return a ** b


def _refuse(name: str) -> None:
    instead = _INSTEAD.get(name)
    tail = f"write {instead}" if instead else "it has no od.* counterpart (od.fn wraps any torch function)"
    raise ModelError(f"numpy.{name} is not supported on optdsl expressions: {tail}")


def apply_ufunc(ufunc, method: str, inputs: tuple, kwargs: dict) -> Any:
    name = ufunc.__name__
    if kwargs.get("out") is not None or (kwargs.keys() - {"out"}):
        raise ModelError(f"numpy.{name} on optdsl expressions takes no keyword arguments "
                         f"({', '.join(sorted(kwargs))}); expressions are immutable")
    if method == "reduce" and name in ("add", "maximum", "minimum"):
        return {"add": atoms.sum, "maximum": atoms.max, "minimum": atoms.min}[name](inputs[0], axis=0)
    if method != "__call__":
        _refuse(f"{name}.{method}")
    if name in _UNARY and len(inputs) == 1:
        return _UNARY[name](inputs[0])
    if name in _BINARY and len(inputs) == 2:
        return _BINARY[name](*inputs)
    _refuse(name)


def _no_extras(fname: str, kwargs: dict, allowed: tuple = ()) -> None:
    extra = sorted(k for k, v in kwargs.items() if k not in allowed and v is not None and v is not False
                   and not (k == "keepdims" and v is np._NoValue))
    if extra:
        raise ModelError(f"numpy.{fname} on optdsl expressions does not take {', '.join(extra)}")


def _reduction(atom):
    def impl(a, axis=None, **kw):
        _no_extras(atom.__name__, kw)
        return atom(a, axis=axis)
    return impl


def _norm(x, ord=None, axis=None, keepdims=False):
    _no_extras("linalg.norm", {"keepdims": keepdims})
    if ord in ("nuc",) or (ord in (2, -2) and axis is None and getattr(x, "ndim", 1) == 2):
        raise ModelError("numpy.linalg.norm(X, 2/'nuc') of a matrix (spectral/nuclear) is not supported: write "
                         "od.lambda_max for the largest eigenvalue of a symmetric matrix, od.norm(X) for Frobenius")
    return atoms.norm(x, 2 if ord is None else ord, axis=axis)


def _dot(a, b, out=None):
    _no_extras("dot", {"out": out})
    if np.ndim(a) == 0 or np.ndim(b) == 0 or getattr(a, "ndim", 1) == 0 or getattr(b, "ndim", 1) == 0:
        return op("mul", a, b)
    return op("matmul", a, b)


def _diff(a, n=1, axis=-1, **kw):
    _no_extras("diff", kw)
    return atoms.diff(a, n, axis=axis)


def _cumsum(a, axis=None, **kw):
    _no_extras("cumsum", kw)
    return atoms.cumsum(a, axis=axis)


def _clip(a, a_min=None, a_max=None, **kw):
    _no_extras("clip", kw)
    out = a if a_min is None else atoms.maximum(a, a_min)
    return out if a_max is None else atoms.minimum(out, a_max)


def _shape(a):
    return a.shape


_FUNCTIONS: dict = {
    np.sum: _reduction(atoms.sum), np.mean: _reduction(atoms.mean),
    np.max: _reduction(atoms.max), np.min: _reduction(atoms.min),
    np.amax: _reduction(atoms.max), np.amin: _reduction(atoms.min),
    np.dot: _dot, np.matmul: lambda a, b, **kw: op("matmul", a, b),
    np.transpose: lambda a, axes=None: atoms.transpose(a) if axes is None else _refuse("transpose(axes=...)"),
    np.reshape: lambda a, *args, **kw: atoms.reshape(a, args[0] if args else kw.get("shape", kw.get("newshape"))),
    np.ravel: lambda a, order="C": a.flatten(),
    np.stack: lambda arrays, axis=0, **kw: atoms.stack(list(arrays), axis=axis),
    np.concatenate: lambda arrays, axis=0, **kw: atoms.concatenate(list(arrays), axis=axis),
    np.hstack: lambda tup, **kw: atoms.hstack(list(tup)), np.vstack: lambda tup, **kw: atoms.vstack(list(tup)),
    np.trace: lambda a, **kw: atoms.trace(a), np.diag: lambda v, k=0: atoms.diag(v) if k == 0 else _refuse("diag(k != 0)"),
    np.diff: _diff, np.cumsum: _cumsum, np.clip: _clip,
    np.linalg.norm: _norm, np.shape: _shape, np.ndim: lambda a: a.ndim, np.size: lambda a, axis=None: a.size,
    np.square: atoms.square, np.abs: atoms.abs,
}


def apply_function(func, args: tuple, kwargs: dict) -> Any:
    impl = _FUNCTIONS.get(func)
    if impl is None:
        _refuse(getattr(func, "__name__", str(func)))
    return impl(*args, **kwargs)
