"""User-facing functions that build `Op` nodes: `od.exp(x)`, `od.norm(x, 1)`, `od.fn(f)(x)`, ..."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ModelError
from .node import Constant, Expr, Op, as_expr, op


def exp(x): return op("exp", x)


def log(x):
    """Natural log. ``log(1 + exp(z))`` is recognised as ``logistic(z)`` (so DCP sees a convex function)."""
    z = _softplus_argument(as_expr(x))
    return logistic(z) if z is not None else op("log", x)


def _softplus_argument(e):
    """`z` when `e` is ``1 + exp(z)`` or ``exp(z) + 1`` with the result's shape that of ``exp(z)``, else None."""
    if not (getattr(e, "name", None) == "add" and isinstance(e, Op)):
        return None
    for one, other in (e.args, reversed(e.args)):
        if (isinstance(one, Constant) and not one.sparse and np.all(one.data == 1) and isinstance(other, Op)
                and other.name == "exp" and other.shape == e.shape):
            return other.args[0]
    return None
def sqrt(x): return op("sqrt", x)
def square(x): return op("square", x)
def sin(x): return op("sin", x)
def cos(x): return op("cos", x)
def sigmoid(x): return op("sigmoid", x)
def abs(x): return op("abs", x)  # noqa: A001 - mirrors numpy's name
def relu(x): return op("relu", x)
pos = relu


def maximum(a, b): return op("maximum", a, b)
def minimum(a, b): return op("minimum", a, b)
def max(x, axis=None): return op("max", x, axis=axis)  # noqa: A001
def min(x, axis=None): return op("min", x, axis=axis)  # noqa: A001
def sum(x, axis=None): return op("sum", x, axis=axis)  # noqa: A001
def mean(x, axis=None, *, over=None, batch: int | None = None, args=()):
    """``od.mean(x, axis)``: the mean of an expression; or a finite-sum objective
    ``od.mean(loss, over=data, batch=B, args=(w, ...))`` = (1/n) Σᵢ loss(data[i], *args).

    In the finite-sum form ``loss(batch, *tensors)`` receives a batch (``data[idx]`` — a tensor, or a tuple
    of tensors indexed together) and the current values of ``args`` as torch tensors, and returns the
    batch's mean loss. Stochastic backends sample batches of size ``batch``; evaluation uses all data.
    With ``args=()`` the loss reads parameters it closes over (e.g. a module declared by `Model.module`).
    """
    if over is None:
        return op("mean", x, axis=axis)
    if not callable(x):
        raise ModelError("od.mean(loss, over=data): loss must be a callable (batch, *tensors) -> scalar tensor")
    n = _length(over)
    if batch is not None and not (isinstance(batch, int) and 1 <= batch):
        raise ModelError(f"od.mean(..., batch=B): B must be a positive int, got {batch!r}")
    return op("finite_sum", *args, func=x, data=over, batch=batch, n=n,
              fname=getattr(x, "__name__", "loss"))


def _length(data) -> int:
    """Number of examples: a tuple means several tensors indexed together, e.g. ``(X, y)``."""
    parts = data if isinstance(data, tuple) else (data,)
    try:
        lens = {len(d) for d in parts}
    except TypeError:
        raise ModelError(f"od.mean(..., over=data): data must be indexable with a length, got {type(data).__name__}") from None
    if len(lens) != 1:
        raise ModelError(f"od.mean(..., over=(...)): the data tensors have different lengths {sorted(lens)}")
    n = lens.pop()
    if n == 0:
        raise ModelError("od.mean(..., over=data): data is empty")
    return n


def maximum_over(y, expr):
    """``max_y expr`` for use in ``m.minimize(od.maximum_over(y, L))``: a min–max (saddle) model in which
    `y` (a variable or a list of them) is chosen by the maximizing player."""
    ys = list(y) if isinstance(y, (list, tuple)) else [y]
    return op("max_over", expr, max_vars=ys)
def transpose(x): return op("transpose", x)
def reshape(x, shape): return op("reshape", x, shape=tuple(shape))
def logsumexp(x, axis=None): return op("logsumexp", x, axis=axis)
def sum_squares(x): return op("sum_squares", x)
def quad_form(x, P): return op("quad_form", x, P)
def matmul(a, b): return op("matmul", a, b)


def norm(x, p=2, axis=None):
    """Vector 1-, 2- or inf-norm. On a matrix the norms are entrywise: p=1 is Σ|x_ij|, p=inf is max|x_ij|,
    and p=2 or "fro" is the Frobenius norm. With ``axis``, the norm of each slice along that axis
    (``od.norm(X, axis=1)``: the row norms)."""
    x = as_expr(x)
    if axis is not None:
        return op("norm", x, p=2 if p == "fro" else p, axis=axis)
    if p == 2 and x.ndim > 1:
        p = "fro"
    return op("norm", x, p=p)


def norm1(x, axis=None): return norm(x, 1, axis)
def norm_inf(x, axis=None): return norm(x, np.inf, axis)


# --- the CVXPY atom set -------------------------------------------------------------------------------

def huber(x, M=1.0):
    """Elementwise Huber function: x² for |x| ≤ M, 2M|x| − M² beyond (cvxpy's scaling)."""
    return op("huber", x, M=float(M))


def entr(x):
    """Elementwise entropy −x·log x (0 at x = 0; concave, domain x ≥ 0)."""
    return op("entr", x)


def logistic(x):
    """Elementwise softplus log(1 + eˣ) (convex, increasing); ``od.log(1 + od.exp(x))`` builds this."""
    return op("logistic", x)


def inv_pos(x):
    """Elementwise 1/x on x > 0 (convex, decreasing)."""
    return op("inv_pos", x)


def kl_div(x, y):
    """Elementwise x·log(x/y) − x + y (jointly convex, x, y ≥ 0)."""
    return op("kl_div", x, y)


def rel_entr(x, y):
    """Elementwise relative entropy x·log(x/y) (jointly convex)."""
    return op("rel_entr", x, y)


def log_det(X):
    """log det X of a symmetric positive definite matrix (concave)."""
    return op("log_det", X)


def trace(X):
    """Σᵢ Xᵢᵢ of a square matrix."""
    return op("trace", X)


def diag(x):
    """A vector -> the diagonal matrix with it on the diagonal; a square matrix -> its diagonal."""
    return op("diag", x)


def diff(x, k: int = 1, axis: int = 0):
    """k-th order forward differences along `axis` (as numpy.diff): x[1:] − x[:-1] for k = 1."""
    return op("diff", x, k=int(k), axis=int(axis))


def cumsum(x, axis=None):
    """Running sum along `axis`; axis=None (numpy's default) sums the flattened array."""
    return op("cumsum", x, axis=axis)


def multiply(a, b):
    """Elementwise product with broadcasting (the same as ``a * b``)."""
    return op("mul", a, b)


def pnorm(x, p=2, axis=None):
    """(Σ|xᵢ|ᵖ)^(1/p): convex for p ≥ 1; for p < 1 concave on x ≥ 0 (as cvxpy's pnorm). Entrywise on
    matrices unless `axis` is given."""
    return op("pnorm", x, p=float(p), axis=axis)


def geo_mean(x, p=None):
    """Weighted geometric mean Πᵢ xᵢ^(pᵢ/Σp) of a vector (equal weights by default; concave, x ≥ 0)."""
    return op("geo_mean", x, p=p)


def quad_over_lin(x, y):
    """Σ xᵢ² / y for a scalar y > 0 (jointly convex)."""
    return op("quad_over_lin", x, y)


def lambda_max(X):
    """Largest eigenvalue of a symmetric matrix (convex; X is read as its symmetric part (X + Xᵀ)/2)."""
    return op("lambda_max", X)


def matrix_frac(X, P):
    """tr(Xᵀ P⁻¹ X) (xᵀ P⁻¹ x for a vector) with P symmetric positive definite (jointly convex)."""
    return op("matrix_frac", X, P)


def trace_expm(W):
    """tr(exp(W)) for a square matrix (matrix exponential). ``od.trace_expm(W * W) - d`` is the NOTEARS
    acyclicity function h(W), zero exactly when W is the weighted adjacency matrix of a DAG."""
    return op("trace_expm", W)


def between(lo, x, hi):
    """The two-sided constraint lo <= x <= hi as one named constraint (Python's chained ``lo <= x <= hi``
    cannot build one). Its dual has a leading axis of 2: [0] for the lower side, [1] for the upper."""
    from .node import BetweenConstraint
    return BetweenConstraint(lo, x, hi)


def psd(X):
    """The constraint "X is positive semidefinite" (its symmetric part), the same as ``X >> 0``."""
    from .node import PSDConstraint
    return PSDConstraint(X, 0.0)


def acyclic(W):
    """Structural constraint: the weighted adjacency matrix `W` (square) describes a DAG.
    Use ``m.subject_to(od.acyclic(W))``."""
    from .node import StructuralConstraint
    W = as_expr(W)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ModelError(f"od.acyclic needs a square matrix; {W.label()!r} has shape {W.shape}")
    return StructuralConstraint("acyclic", W)


def stack(exprs: Sequence[Any], axis: int = 0): return op("stack", *exprs, axis=axis)
def concatenate(exprs: Sequence[Any], axis: int = 0): return op("concat", *exprs, axis=axis)
def hstack(exprs): return concatenate(exprs, axis=-1 if as_expr(exprs[0]).ndim > 1 else 0)
def vstack(exprs):
    exprs = [as_expr(e) for e in exprs]
    if exprs[0].ndim == 1:
        return stack(exprs, axis=0)
    return concatenate(exprs, axis=0)


class _Opaque:
    """A wrapped user callable; calling it on expressions builds an opaque `Op` node."""

    kind = "fn"

    def __init__(self, func: Callable, shape=None, name: str | None = None):
        if not callable(func):
            raise ModelError(f"od.{self.kind} needs a callable, got {type(func).__name__}")
        self.func = func
        self.out_shape = None if shape is None else tuple(np.atleast_1d(shape).astype(int)) if shape != () else ()
        self.name = name or getattr(func, "__name__", self.kind)

    def __call__(self, *args: Any) -> Expr:
        exprs = tuple(as_expr(a) for a in args)
        out_shape = self.out_shape if self.out_shape is not None else self._infer_shape(exprs)
        return op(self.kind, *exprs, func=self.func, out_shape=out_shape, fname=self.name)

    def _infer_shape(self, exprs) -> tuple:
        import torch
        probe = [torch.zeros(e.shape, dtype=torch.float64) for e in exprs]
        try:
            with torch.no_grad():
                out = self.func(*probe) if self.kind == "fn" else self.func(*[p.numpy() for p in probe])
        except Exception as e:  # the user's function failed on a probe input: say so, with its name
            raise ModelError(f"od.{self.kind}({self.name}) could not be called on zero inputs of shapes "
                             f"{[e.shape for e in exprs]} to infer its output shape ({type(e).__name__}: {e}); "
                             f"pass shape=... explicitly") from None
        return tuple(np.shape(out.detach().numpy() if isinstance(out, torch.Tensor) else out))


class fn(_Opaque):
    """Wrap a differentiable torch function of tensors: ``loss = od.fn(net_loss)(w)``.

    The function receives torch tensors (one per argument, on the solve's device/dtype) and must return a
    tensor; gradients come from torch autograd. ``shape`` is the output shape (inferred by a probe call
    on zeros when omitted).
    """

    kind = "fn"


class blackbox(_Opaque):
    """Wrap a function with no gradient (simulator, non-differentiable metric): ``od.blackbox(sim)(x)``.

    The function receives numpy arrays and returns a number (or array). Models with a black box need a
    derivative-free (zeroth-order) backend.
    """

    kind = "blackbox"
