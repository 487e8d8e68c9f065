"""Shape rules and structural facts of every op: one row each in `SPECS`.

A shape rule receives the argument expressions and the attrs and returns the result shape, or raises a
`ShapeError` naming the operands. `smooth` says whether the op is differentiable everywhere (used for
the `smooth` tag; `abs`, norms and max/min are not); `linear` whether it is linear in its arguments.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ShapeError


@dataclass(frozen=True)
class OpSpec:
    shape: Callable
    smooth: bool = True
    linear: bool = False
    infix: str | None = None  # for printing binary operators


def _broadcast(name):
    def rule(args, attrs):
        if all(a.shape == args[0].shape for a in args):   # the common case, without numpy's broadcasting machinery
            return args[0].shape
        try:
            return tuple(np.broadcast_shapes(*(a.shape for a in args)))
        except ValueError:
            shapes = " and ".join(f"{a.label(40)!r} with shape {a.shape}" for a in args)
            raise ShapeError(f"cannot broadcast operands of '{name}': {shapes}") from None
    return rule


def _same(args, attrs):
    return args[0].shape


def _scalar(args, attrs):
    return ()


def _matmul(args, attrs):
    a, b = args
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul needs arrays, got {a.label(40)!r} with shape {a.shape} @ "
                         f"{b.label(40)!r} with shape {b.shape}; use * for scalars")
    if a.ndim > 2 or b.ndim > 2:
        raise ShapeError(f"matmul supports 1-D and 2-D operands, got shapes {a.shape} @ {b.shape}")
    ka = a.shape[-1]
    kb = b.shape[0]
    if ka != kb:
        raise ShapeError(f"matmul shape mismatch: {a.label(40)!r} has shape {a.shape} and {b.label(40)!r} "
                         f"has shape {b.shape} (inner dimensions {ka} != {kb})")
    return a.shape[:-1] + b.shape[1:]


def _reduce(args, attrs):
    shape, axis = args[0].shape, attrs.get("axis")
    if axis is None:
        return ()
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    nd = len(shape)
    try:
        axes = tuple(ax % nd if -nd <= ax < nd else _bad_axis(ax, shape) for ax in axes)
    except ZeroDivisionError:
        _bad_axis(axes[0], shape)
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def _bad_axis(ax, shape):
    raise ShapeError(f"axis {ax} is out of range for an expression of shape {shape}")


def _transpose(args, attrs):
    return tuple(reversed(args[0].shape))


def _reshape(args, attrs):
    a, shape = args[0], attrs["shape"]
    shape = tuple(int(s) for s in shape)
    if -1 in shape:
        known = int(np.prod([s for s in shape if s != -1]))
        if known == 0 or a.size % known:
            raise ShapeError(f"cannot reshape {a.label(40)!r} of shape {a.shape} into {shape}")
        shape = tuple(a.size // known if s == -1 else s for s in shape)
    if int(np.prod(shape)) != a.size:
        raise ShapeError(f"cannot reshape {a.label(40)!r} of shape {a.shape} (size {a.size}) into {shape}")
    attrs["shape"] = shape
    return shape


def _index(args, attrs):
    a, key = args[0], attrs["key"]
    if type(key) is int and len(a.shape) == 1 and -a.shape[0] <= key < a.shape[0]:
        return ()   # x[i] of a vector, the scalar-model case (numpy's rule below costs ~8 µs a call)
    try:
        return np.broadcast_to(np.zeros(()), a.shape)[key].shape
    except (IndexError, TypeError, ValueError) as e:
        raise ShapeError(f"invalid index {key!r} for {a.label(40)!r} of shape {a.shape}: {e}") from None


def _stack(args, attrs):
    shapes = {a.shape for a in args}
    if len(shapes) != 1:
        raise ShapeError("stack needs operands of one shape, got " +
                         ", ".join(f"{a.label(30)!r}: {a.shape}" for a in args))
    shape = args[0].shape
    axis = attrs.get("axis", 0)
    if not -len(shape) - 1 <= axis <= len(shape):
        _bad_axis(axis, shape)
    axis = axis % (len(shape) + 1)
    attrs["axis"] = axis
    return shape[:axis] + (len(args),) + shape[axis:]


def _concat(args, attrs):
    axis = attrs.get("axis", 0)
    nd = args[0].ndim
    if nd == 0 or any(a.ndim != nd for a in args):
        raise ShapeError("concatenate needs arrays of equal rank >= 1, got shapes " + ", ".join(str(a.shape) for a in args))
    axis = axis % nd
    attrs["axis"] = axis
    rest = {a.shape[:axis] + a.shape[axis + 1:] for a in args}
    if len(rest) != 1:
        raise ShapeError(f"concatenate along axis {axis}: other dimensions differ: " +
                         ", ".join(f"{a.label(30)!r}: {a.shape}" for a in args))
    return args[0].shape[:axis] + (sum(a.shape[axis] for a in args),) + args[0].shape[axis + 1:]


def _quad_form(args, attrs):
    x, P = args
    if x.ndim != 1 or P.shape != (x.shape[0], x.shape[0]):
        raise ShapeError(f"quad_form(x, P) needs a vector x and a square P of matching size; got "
                         f"{x.label(30)!r} with shape {x.shape} and {P.label(30)!r} with shape {P.shape}")
    return ()


def _norm(args, attrs):
    p = attrs.get("p", 2)
    if p not in (1, 2, np.inf, "inf", "fro"):
        raise ShapeError(f"norm order must be 1, 2, inf or 'fro', got {p!r}")
    if p == "inf":
        attrs["p"] = np.inf
    # on matrices (axis=None), p = 1 and inf are entrywise (sum / max of |x_ij|), 2 means Frobenius;
    # with an axis, the vector norm of each slice along it
    return _reduce(args, attrs)


def _square(a, what):
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ShapeError(f"{what} needs a square matrix; {a.label(40)!r} has shape {a.shape}")


def _square_to_scalar(what):
    def rule(args, attrs):
        _square(args[0], what)
        return ()
    return rule


def _diag(args, attrs):
    a = args[0]
    if a.ndim == 1:
        return (a.shape[0], a.shape[0])
    _square(a, "diag (of a matrix; a vector gives the diagonal matrix)")
    return (a.shape[0],)


def _diff(args, attrs):
    a, k = args[0], attrs["k"]
    if a.ndim == 0:
        raise ShapeError(f"diff needs an array; {a.label(40)!r} is a scalar")
    axis = attrs["axis"]
    if not -a.ndim <= axis < a.ndim:
        _bad_axis(axis, a.shape)
    axis = attrs["axis"] = axis % a.ndim
    if not (isinstance(k, int) and 0 <= k < max(a.shape[axis], 1)):
        raise ShapeError(f"diff of order k={k!r} along axis {axis} needs 0 <= k < {a.shape[axis]} "
                         f"for {a.label(40)!r} of shape {a.shape}")
    return a.shape[:axis] + (a.shape[axis] - k,) + a.shape[axis + 1:]


def _cumsum(args, attrs):
    a, axis = args[0], attrs.get("axis")
    if axis is None:
        return (a.size,)  # numpy: the flattened (row-major) running sum
    if not -a.ndim <= axis < a.ndim:
        _bad_axis(axis, a.shape)
    attrs["axis"] = axis % a.ndim
    return a.shape


def _pnorm(args, attrs):
    p = attrs["p"]
    if not np.isscalar(p) or not np.isfinite(p) or p == 0:
        raise ShapeError(f"pnorm order p must be a nonzero finite number (use od.norm(x, np.inf)), got {p!r}")
    return _reduce(args, attrs)


def _geo_mean(args, attrs):
    x, p = args[0], attrs.get("p")
    if x.ndim > 1:
        raise ShapeError(f"geo_mean needs a vector; {x.label(40)!r} has shape {x.shape}")
    if p is not None:
        p = np.asarray(p, dtype=float)
        if p.shape != (x.size,) or np.any(p < 0) or not np.sum(p) > 0:
            raise ShapeError(f"geo_mean weights p must be {x.size} non-negative numbers, not all zero; got {attrs['p']!r}")
        attrs["p"] = tuple(float(t) for t in p)
    return ()


def _quad_over_lin(args, attrs):
    x, y = args
    if y.size != 1:
        raise ShapeError(f"quad_over_lin(x, y) needs a scalar y; {y.label(40)!r} has shape {y.shape}")
    return ()


def _matrix_frac(args, attrs):
    X, P = args
    _square(P, "matrix_frac(X, P): P")
    if X.ndim not in (1, 2) or X.shape[0] != P.shape[0]:
        raise ShapeError(f"matrix_frac(X, P) needs X with {P.shape[0]} rows (P is {P.shape}); "
                         f"{X.label(40)!r} has shape {X.shape}")
    return ()


def _huber(args, attrs):
    M = attrs["M"]
    if not (np.isscalar(M) and M >= 0):
        raise ShapeError(f"huber threshold M must be a non-negative number, got {M!r}")
    return args[0].shape


def _square_scalar(args, attrs):
    a = args[0]
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ShapeError(f"trace_expm needs a square matrix; {a.label(40)!r} has shape {a.shape}")
    return ()


def _opaque(args, attrs):
    return attrs["out_shape"]


SPECS: dict[str, OpSpec] = {
    "add": OpSpec(_broadcast("add"), linear=True, infix="+"),
    "sub": OpSpec(_broadcast("sub"), linear=True, infix="-"),
    "mul": OpSpec(_broadcast("mul"), infix="*"),
    "div": OpSpec(_broadcast("div"), infix="/"),
    "neg": OpSpec(_same, linear=True),
    "power": OpSpec(_same),
    "matmul": OpSpec(_matmul, infix="@"),
    "sum": OpSpec(_reduce, linear=True),
    "mean": OpSpec(_reduce, linear=True),
    "transpose": OpSpec(_transpose, linear=True),
    "reshape": OpSpec(_reshape, linear=True),
    "index": OpSpec(_index, linear=True),
    "stack": OpSpec(_stack, linear=True),
    "concat": OpSpec(_concat, linear=True),
    "exp": OpSpec(_same),
    "log": OpSpec(_same),
    "sqrt": OpSpec(_same),
    "square": OpSpec(_same),
    "sin": OpSpec(_same),
    "cos": OpSpec(_same),
    "sigmoid": OpSpec(_same),
    "abs": OpSpec(_same, smooth=False),
    "relu": OpSpec(_same, smooth=False),
    "maximum": OpSpec(_broadcast("maximum"), smooth=False),
    "minimum": OpSpec(_broadcast("minimum"), smooth=False),
    "max": OpSpec(_reduce, smooth=False),
    "min": OpSpec(_reduce, smooth=False),
    "norm": OpSpec(_norm, smooth=False),
    "sum_squares": OpSpec(_scalar),
    "quad_form": OpSpec(_quad_form),
    "logsumexp": OpSpec(_reduce),
    "fn": OpSpec(_opaque),
    "finite_sum": OpSpec(_scalar),
    "trace_expm": OpSpec(_square_scalar),
    "max_over": OpSpec(_scalar),
    "blackbox": OpSpec(_opaque, smooth=False),
    # the CVXPY atom set (issue 17); curvature, sign and monotonicity come from cvxpy's lowering
    "huber": OpSpec(_huber),  # C^1 (second derivative jumps at |x| = M)
    "entr": OpSpec(_same),
    "logistic": OpSpec(_same),
    "inv_pos": OpSpec(_same),
    "kl_div": OpSpec(_broadcast("kl_div")),
    "rel_entr": OpSpec(_broadcast("rel_entr")),
    "log_det": OpSpec(_square_to_scalar("log_det")),
    "trace": OpSpec(_square_to_scalar("trace"), linear=True),
    "diag": OpSpec(_diag, linear=True),
    "diff": OpSpec(_diff, linear=True),
    "cumsum": OpSpec(_cumsum, linear=True),
    "pnorm": OpSpec(_pnorm, smooth=False),
    "geo_mean": OpSpec(_geo_mean),
    "quad_over_lin": OpSpec(_quad_over_lin),
    "lambda_max": OpSpec(_square_to_scalar("lambda_max"), smooth=False),
    "matrix_frac": OpSpec(_matrix_frac),
}
