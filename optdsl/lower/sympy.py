"""Sympy lowering: exact elementwise symbolic forms (for checks) and compact LaTeX (for printing).

Two modes:
* ``elementwise``: every entry of a variable becomes a scalar symbol ``x_i``; the result is a numpy
  object array of sympy expressions, used to check the other lowerings numerically and symbolically.
* ``to_latex``: every leaf is one symbol and vector operations print in the usual notation
  (``x^T P x``, ``\\|x\\|_1``), through sympy's LaTeX printer.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from ..expr.node import Constant, Expr, Leaf, Parameter, Variable
from ._walk import lower

_v = np.vectorize


def _ew(f):
    return lambda a, at: _v(f, otypes=[object])(a[0])


def _arr(x):
    return np.asarray(x, dtype=object)


def _reduce(fn):
    def impl(a, at):
        x, axis = _arr(a[0]), at.get("axis")
        if axis is None:
            return fn(x.reshape(-1))
        return np.apply_along_axis(fn, axis, x) if isinstance(axis, int) else fn_multi(fn, x, axis)
    return impl


def fn_multi(fn, x, axes):
    moved = np.moveaxis(x, axes, range(-len(axes), 0))
    flat = moved.reshape(moved.shape[: x.ndim - len(axes)] + (-1,))
    return np.apply_along_axis(fn, -1, flat)


def _lse(v):
    return sp.log(sum(sp.exp(t) for t in v))


def _norm(a, at):
    x, p = _arr(a[0]).reshape(-1), at["p"]
    if p == 1:
        return sum(sp.Abs(t) for t in x)
    if p == np.inf:
        return sp.Max(*[sp.Abs(t) for t in x])
    return sp.sqrt(sum(t * t for t in x))


def _norm_axis(a, at):
    p = at["p"]
    if at.get("axis") is None:
        return _norm(a, at)
    return _reduce(lambda v: _pnorm_of(v, p if p != "fro" else 2))(a, at)


def _pnorm_of(v, p):
    if p == 1:
        return sum(sp.Abs(t) for t in v)
    if p == np.inf:
        return sp.Max(*[sp.Abs(t) for t in v])
    if p == 2:
        return sp.sqrt(sum(t * t for t in v))
    q = sp.nsimplify(p)
    return sum(sp.Abs(t) ** q for t in v) ** (1 / q)


def _huber(M):
    M = sp.nsimplify(M)
    return lambda t: sp.Piecewise((t ** 2, sp.Abs(t) <= M), (2 * M * sp.Abs(t) - M ** 2, True))


def _diag(a, at):
    x = _arr(a[0])
    if x.ndim == 1:
        out = np.full((x.size, x.size), sp.Integer(0), dtype=object)
        for i, t in enumerate(x):
            out[i, i] = t
        return out
    return np.array([x[i, i] for i in range(x.shape[0])], dtype=object)


def _diff(a, at):
    x = _arr(a[0])
    for _ in range(at["k"]):
        x = np.diff(x, axis=at["axis"])
    return x


def _cumsum(a, at):
    x, axis = _arr(a[0]), at.get("axis")
    return np.cumsum(x.reshape(-1)) if axis is None else np.cumsum(x, axis=axis)


def _geo_mean(a, at):
    x, p = _arr(a[0]).reshape(-1), at.get("p")
    w = [sp.Integer(1)] * x.size if p is None else [sp.nsimplify(t) for t in p]
    total = sum(w)
    return sp.Mul(*[t ** (wi / total) for t, wi in zip(x, w) if wi != 0])


def _matrix_frac(a, at):
    X, P = sp.Matrix(_arr(a[0])), sp.Matrix(_arr(a[1]))
    return (X.T * P.inv() * X).trace()


def _binary(f):
    def impl(a, at):
        x, y = np.broadcast_arrays(_arr(a[0]), _arr(a[1]))
        return _v(f, otypes=[object])(x, y) if x.ndim else f(x[()], y[()])
    return impl


def _matmul(a, at):
    x, y = _arr(a[0]), _arr(a[1])
    return x @ y


ELEMENTWISE: dict[str, Any] = {
    "add": _binary(lambda x, y: x + y),
    "sub": _binary(lambda x, y: x - y),
    "mul": _binary(lambda x, y: x * y),
    "div": _binary(lambda x, y: x / y),
    "neg": lambda a, at: -_arr(a[0]),
    "power": lambda a, at: _v(lambda t: t ** sp.nsimplify(at["p"]), otypes=[object])(_arr(a[0])),
    "matmul": _matmul,
    "sum": _reduce(lambda v: sum(v)),
    "mean": _reduce(lambda v: sum(v) / len(v)),
    "max": _reduce(lambda v: sp.Max(*v)),
    "min": _reduce(lambda v: sp.Min(*v)),
    "logsumexp": _reduce(_lse),
    "transpose": lambda a, at: _arr(a[0]).T,
    "reshape": lambda a, at: _arr(a[0]).reshape(at["shape"]),
    "index": lambda a, at: _arr(a[0])[at["key"]],
    "stack": lambda a, at: np.stack([_arr(x) for x in a], axis=at["axis"]),
    "concat": lambda a, at: np.concatenate([_arr(x) for x in a], axis=at["axis"]),
    "exp": _ew(sp.exp),
    "log": _ew(sp.log),
    "sqrt": _ew(sp.sqrt),
    "square": _ew(lambda t: t ** 2),
    "sin": _ew(sp.sin),
    "cos": _ew(sp.cos),
    "sigmoid": _ew(lambda t: 1 / (1 + sp.exp(-t))),
    "abs": _ew(sp.Abs),
    "relu": _ew(lambda t: sp.Max(0, t)),
    "maximum": _binary(lambda x, y: sp.Max(x, y)),
    "minimum": _binary(lambda x, y: sp.Min(x, y)),
    "norm": _norm,
    "sum_squares": lambda a, at: sum(t * t for t in _arr(a[0]).reshape(-1)),
    "quad_form": lambda a, at: _arr(a[0]) @ _arr(a[1]) @ _arr(a[0]),
    "huber": lambda a, at: _v(_huber(at["M"]), otypes=[object])(_arr(a[0])),
    "entr": _ew(lambda t: -t * sp.log(t)),
    "logistic": _ew(lambda t: sp.log(1 + sp.exp(t))),
    "inv_pos": _ew(lambda t: 1 / t),
    "kl_div": _binary(lambda x, y: x * sp.log(x / y) - x + y),
    "rel_entr": _binary(lambda x, y: x * sp.log(x / y)),
    "log_det": lambda a, at: sp.log(sp.Matrix(_arr(a[0])).det()),
    "trace": lambda a, at: sum(_arr(a[0])[i, i] for i in range(_arr(a[0]).shape[0])),
    "diag": _diag,
    "diff": _diff,
    "cumsum": _cumsum,
    "pnorm": lambda a, at: _reduce(lambda v: _pnorm_of(v, at["p"]))(a, at),
    "geo_mean": _geo_mean,
    "quad_over_lin": lambda a, at: sum(t * t for t in _arr(a[0]).reshape(-1)) / _arr(a[1]).reshape(-1)[0],
    "lambda_max": lambda a, at: sp.Max(*sp.Matrix(_arr(a[0])).eigenvals().keys()),
    "matrix_frac": _matrix_frac,
}
ELEMENTWISE["norm"] = _norm_axis


def elementwise(expr: Expr, symbols: dict | None = None):
    """Lower to a numpy object array (or a scalar) of sympy expressions in per-entry symbols.

    Variables and parameters become symbols ``name_i`` (returned in `symbols`, keyed by leaf);
    constants become exact numbers.
    """
    symbols = {} if symbols is None else symbols

    def leaf(node: Leaf):
        if isinstance(node, (Variable, Parameter)):
            if node not in symbols:
                if node.shape == ():
                    symbols[node] = np.array(sp.Symbol(node.name, real=True), dtype=object)
                else:
                    flat = [sp.Symbol(f"{node.name}_{i}", real=True) for i in range(int(np.prod(node.shape)))]
                    symbols[node] = np.array(flat, dtype=object).reshape(node.shape)
            return symbols[node]
        if not isinstance(node, Constant):  # uncertain quantities: symbols like variables
            return np.array(sp.Symbol(node.name, real=True), dtype=object) if node.shape == () else \
                np.array([sp.Symbol(f"{node.name}_{i}", real=True) for i in range(node.size)], dtype=object).reshape(node.shape)
        data = node.data.toarray() if node.sparse else node.data  # sympy forms are for small checks
        return _v(lambda t: sp.Float(t) if t != int(t) else sp.Integer(int(t)), otypes=[object])(data) \
            if data.ndim else (sp.Float(float(node.data)) if float(node.data) != int(node.data) else sp.Integer(int(node.data)))

    table = dict(ELEMENTWISE)
    for name in ("fn", "blackbox", "finite_sum", "max_over", "trace_expm"):
        table[name] = _opaque_elementwise
    out = lower(expr, leaf, table)
    return out[()] if isinstance(out, np.ndarray) and out.ndim == 0 else out


def _opaque_elementwise(a, at):
    raise NotImplementedError(f"{at['fname']} is an opaque function and has no symbolic form")


# ---- compact symbolic form for LaTeX -------------------------------------------------------------

class _Op(sp.Function):
    """An uninterpreted function whose LaTeX comes from a template (so vector ops print naturally)."""

    template = ""
    nargs = None

    def _latex(self, printer):
        return self.template.format(*[printer._print(a) for a in self.args])


def _fn(name: str, template: str):
    return type(name, (_Op,), {"template": template})


_Sum = _fn("Sum1", r"\mathbf{{1}}^T {0}")
_Mean = _fn("Mean", r"\operatorname{{mean}}\left({0}\right)")
_T = _fn("Tr", r"{0}^{{T}}")
_MatMul = _fn("MatMulOp", r"{0} {1}")
_Quad = _fn("QuadForm", r"{0}^{{T}} {1} {0}")
_Norm1 = _fn("Norm1", r"\left\|{0}\right\|_1")
_Norm2 = _fn("Norm2", r"\left\|{0}\right\|_2")
_NormInf = _fn("NormInf", r"\left\|{0}\right\|_\infty")
_NormF = _fn("NormF", r"\left\|{0}\right\|_F")
_SumSq = _fn("SumSquares", r"\left\|{0}\right\|_2^2")
_LSE = _fn("LogSumExp", r"\operatorname{{logsumexp}}\left({0}\right)")
_Relu = _fn("Relu", r"\left({0}\right)_+")
_Sig = _fn("Sigmoid", r"\sigma\left({0}\right)")
_Idx = _fn("Index", r"{0}_{{{1}}}")
_TrExp = _fn("TraceExpm", r"\operatorname{{tr}} e^{{{0}}}")
_FiniteSum = _fn("FiniteSum", r"\frac{{1}}{{n}}\sum_{{i=1}}^{{n}} {0}")
_MaxOver = _fn("MaxOver", r"\max_{{{0}}} {1}")
_Trace = _fn("TraceOp", r"\operatorname{{tr}}\left({0}\right)")
_LogDet = _fn("LogDet", r"\log\det\left({0}\right)")
_LamMax = _fn("LambdaMax", r"\lambda_{{\max}}\left({0}\right)")
_MatFrac = _fn("MatrixFrac", r"\operatorname{{tr}}\left({0}^{{T}} {1}^{{-1}} {0}\right)")
_QuadLin = _fn("QuadOverLin", r"\frac{{\left\|{0}\right\|_2^2}}{{{1}}}")
_InvPos = _fn("InvPos", r"\frac{{1}}{{{0}}}")


def _named(name):
    return lambda a, at: sp.Function(name)(*a)


def _latex_norm(a, at):
    if at.get("axis") is not None:
        return sp.Function("norm")(a[0], sp.nsimplify(at["p"]) if at["p"] != np.inf else sp.oo, sp.Symbol(f"axis={at['axis']}"))
    return {1: _Norm1, 2: _Norm2, np.inf: _NormInf, "fro": _NormF}[at["p"]](a[0])


def _pnorm_latex(a, at):
    p = sp.nsimplify(at["p"])
    return _fn(f"PNorm{str(p).replace('/', '_')}", r"\left\|{0}\right\|_{{" + sp.latex(p).replace("{", "{{").replace("}", "}}") + "}}")(a[0])


SYMBOLIC: dict[str, Any] = {
    "add": lambda a, at: a[0] + a[1],
    "sub": lambda a, at: a[0] - a[1],
    "mul": lambda a, at: a[0] * a[1],
    "div": lambda a, at: a[0] / a[1],
    "neg": lambda a, at: -a[0],
    "power": lambda a, at: a[0] ** sp.nsimplify(at["p"]),
    "matmul": lambda a, at: _MatMul(a[0], a[1]),
    "sum": lambda a, at: _Sum(a[0]),
    "mean": lambda a, at: _Mean(a[0]),
    "max": _named("max"),
    "min": _named("min"),
    "logsumexp": lambda a, at: _LSE(a[0]),
    "transpose": lambda a, at: _T(a[0]),
    "reshape": lambda a, at: a[0],
    "index": lambda a, at: _Idx(a[0], sp.Symbol(str(at["key"]).replace(" ", ""))),
    "stack": _named("stack"),
    "concat": _named("concat"),
    "exp": lambda a, at: sp.exp(a[0]),
    "log": lambda a, at: sp.log(a[0]),
    "sqrt": lambda a, at: sp.sqrt(a[0]),
    "square": lambda a, at: a[0] ** 2,
    "sin": lambda a, at: sp.sin(a[0]),
    "cos": lambda a, at: sp.cos(a[0]),
    "sigmoid": lambda a, at: _Sig(a[0]),
    "abs": lambda a, at: sp.Abs(a[0]),
    "relu": lambda a, at: _Relu(a[0]),
    "maximum": lambda a, at: sp.Max(a[0], a[1]),
    "minimum": lambda a, at: sp.Min(a[0], a[1]),
    "norm": _latex_norm,
    "sum_squares": lambda a, at: _SumSq(a[0]),
    "quad_form": lambda a, at: _Quad(a[0], a[1]),
    "fn": lambda a, at: sp.Function(at["fname"])(*a),
    "blackbox": lambda a, at: sp.Function(at["fname"])(*a),
    "trace_expm": lambda a, at: _TrExp(a[0]),
    "finite_sum": lambda a, at: _FiniteSum(sp.Function(at["fname"])(sp.Symbol("d_i"), *a)),
    "max_over": lambda a, at: _MaxOver(sp.Symbol(",".join(v.name for v in at["max_vars"])), a[0]),
    "huber": lambda a, at: sp.Function("huber")(a[0], sp.nsimplify(at["M"])),
    "entr": _named("entr"),
    "logistic": lambda a, at: sp.log(1 + sp.exp(a[0])),
    "inv_pos": lambda a, at: _InvPos(a[0]),
    "kl_div": _named("kl_div"),
    "rel_entr": _named("rel_entr"),
    "log_det": lambda a, at: _LogDet(a[0]),
    "trace": lambda a, at: _Trace(a[0]),
    "diag": _named("diag"),
    "diff": _named("diff"),
    "cumsum": _named("cumsum"),
    "pnorm": _pnorm_latex,
    "geo_mean": _named("geo_mean"),
    "quad_over_lin": lambda a, at: _QuadLin(a[0], a[1]),
    "lambda_max": lambda a, at: _LamMax(a[0]),
    "matrix_frac": lambda a, at: _MatFrac(a[0], a[1]),
}


def symbolic(expr: Expr):
    """One sympy object per leaf: scalars stay commutative symbols; arrays are non-commutative symbols
    (so ``A x`` keeps its order). Constants print as their value when scalar, else as a name."""

    def leaf(node: Leaf):
        if isinstance(node, Constant) and node.data.ndim == 0:
            v = float(node.data)
            return sp.Integer(int(v)) if v == int(v) else sp.Float(v, 6)
        name = node.name if not isinstance(node, Constant) else r"\mathrm{" + node.name.replace("(", "").replace(")", "").replace(",", "x").replace(" ", "") + "}"
        return sp.Symbol(name, commutative=node.shape == ())

    return lower(expr, leaf, SYMBOLIC)


def to_latex(expr: Expr) -> str:
    return sp.latex(symbolic(expr))
