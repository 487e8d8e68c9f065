"""Random expression trees: the torch, cvxpy (when representable) and sympy-elementwise lowerings agree."""
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import optdsl as od
from optdsl.expr import ops
from optdsl.lower.cvxpy import CvxpyLowering, NotRepresentable
from optdsl.lower.sympy import elementwise

N = 3
XV = np.array([0.7, -1.3, 2.1])
YV = np.array([1.5, 0.4, -0.6])
SV = 0.9
MAT = np.array([[1.0, -0.5, 0.25], [0.3, 2.0, -1.0], [0.0, 0.7, 1.1]])
PSD = MAT @ MAT.T + np.eye(3)

UNARY = ["neg", "exp", "log", "sqrt", "square", "sin", "cos", "sigmoid", "abs", "relu", "power"]
BINARY = ["add", "sub", "mul", "div", "maximum", "minimum"]
REDUCE = ["sum", "mean", "max", "min", "norm", "norm1", "norm_inf", "sum_squares", "logsumexp", "quad_form",
          "matvec", "index"]


def test_ops_used_exist_in_specs():
    for name in ["add", "sub", "mul", "div", "neg", "power", "matmul", "sum", "mean", "index", "exp", "log", "sqrt",
                 "square", "sin", "cos", "sigmoid", "abs", "relu", "maximum", "minimum", "max", "min", "norm",
                 "sum_squares", "quad_form", "logsumexp"]:
        assert name in ops.SPECS, name


def _val(e):
    return np.asarray(e.evaluate(), dtype=float)


def _positive(e):
    """An input safe for log/sqrt/div: e itself when clearly positive, else e^2 + 0.5."""
    return e if np.min(_val(e)) > 0.1 else od.square(e) + 0.5


def _expr(draw, leaves, depth, vector):
    """A random expression; vector=True gives shape (N,), else a scalar."""
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        if vector:
            return draw(st.sampled_from([leaves["x"], leaves["y"], leaves["c"]]))
        return draw(st.sampled_from([leaves["s"], leaves["k"]]))
    kind = draw(st.sampled_from(["unary", "binary", "reduce" if not vector else "unary", "binary"]))
    if kind == "reduce":
        a = _expr(draw, leaves, depth - 1, True)
        name = draw(st.sampled_from(REDUCE))
        if name == "quad_form":
            return od.quad_form(a, PSD)
        if name == "matvec":
            return od.sum(MAT @ a)
        if name == "index":
            return a[draw(st.integers(0, N - 1))]
        if name in ("norm1", "norm_inf"):
            return getattr(od, name)(a)
        return getattr(od, name)(a)
    if kind == "unary":
        a = _expr(draw, leaves, depth - 1, vector)
        name = draw(st.sampled_from(UNARY))
        if name == "neg":
            return -a
        if name in ("log", "sqrt"):
            return getattr(od, name)(_positive(a))
        if name == "power":
            return _positive(a) ** draw(st.sampled_from([2, 3, 0.5, 1.5]))
        if name == "exp":
            return od.exp(od.sin(a))  # keep magnitudes moderate
        return getattr(od, name)(a)
    a = _expr(draw, leaves, depth - 1, vector)
    b = _expr(draw, leaves, depth - 1, draw(st.booleans()) if vector else False)  # scalar broadcasts
    name = draw(st.sampled_from(BINARY))
    if draw(st.booleans()):
        a, b = b, a
    if name == "add":
        return a + b
    if name == "sub":
        return a - b
    if name == "mul":
        return a * b
    if name == "div":
        return a / _positive(b)
    return getattr(od, name)(a, b)


def _sympy_values(expr, leaves):
    symbols = {}
    sym = elementwise(expr, symbols)
    subs = {}
    for leaf, arr in symbols.items():
        vals = np.asarray(leaf.value, dtype=float)
        for s, v in zip(np.asarray(arr, dtype=object).ravel(), vals.ravel()):
            subs[s] = sp.Float(float(v), 30)
    arr = np.asarray(sym, dtype=object)
    return np.array([float(sp.N(sp.sympify(e).subs(subs), 30)) for e in arr.ravel()]).reshape(arr.shape)


@settings(derandomize=True, max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.data())
def test_lowerings_agree(data):
    m = od.Model("agree")
    x, y, s = m.variable(N, name="x"), m.variable(N, name="y"), m.variable(name="s")
    x.value, y.value, s.value = XV, YV, np.array(SV)
    leaves = {"x": x, "y": y, "s": s, "c": od.Constant(np.array([0.5, -2.0, 1.25])), "k": od.Constant(1.5)}
    vector = data.draw(st.booleans())
    e = _expr(data.draw, leaves, data.draw(st.integers(1, 4)), vector)
    if not isinstance(e, od.Expr):
        e = od.Constant(e)
    t = _val(e)
    assume(np.all(np.isfinite(t)) and np.max(np.abs(t), initial=0) < 1e8)

    sy = _sympy_values(e, leaves)
    np.testing.assert_allclose(sy.reshape(t.shape), t, rtol=1e-8, atol=1e-10, err_msg=str(e))

    try:
        lw = CvxpyLowering()
        ce = lw.lower(e)
    except NotRepresentable:
        event("cvxpy: not representable")
        return
    event("cvxpy: compared")
    for leaf, var in lw.variables.items():
        var.value = np.asarray(leaf.value, dtype=float).reshape(var.shape)
    cv = np.asarray(ce.value, dtype=float)
    np.testing.assert_allclose(cv.reshape(t.shape), t, rtol=1e-8, atol=1e-10, err_msg=str(e))
