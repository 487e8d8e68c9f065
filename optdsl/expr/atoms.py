"""User-facing functions that build `Op` nodes: `od.exp(x)`, `od.norm(x, 1)`, `od.fn(f)(x)`, ..."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ModelError
from .node import Expr, as_expr, op


def exp(x): return op("exp", x)
def log(x): return op("log", x)
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


def norm(x, p=2):
    """Vector 1-, 2- or inf-norm. On a matrix the norms are entrywise: p=1 is Σ|x_ij|, p=inf is max|x_ij|,
    and p=2 or "fro" is the Frobenius norm."""
    x = as_expr(x)
    if p == 2 and x.ndim > 1:
        p = "fro"
    return op("norm", x, p=p)


def norm1(x): return norm(x, 1)
def norm_inf(x): return norm(x, np.inf)


def trace_expm(W):
    """tr(exp(W)) for a square matrix (matrix exponential). ``od.trace_expm(W * W) - d`` is the NOTEARS
    acyclicity function h(W), zero exactly when W is the weighted adjacency matrix of a DAG."""
    return op("trace_expm", W)


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
