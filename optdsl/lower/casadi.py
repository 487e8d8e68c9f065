"""CasADi lowering: the IR as CasADi SX or MX expressions, for IPOPT with exact sparse derivatives.

Arrays map onto CasADi's 2-D matrices: shape ``()`` is 1×1, ``(n,)`` a column n×1, ``(m, n)`` an m×n
matrix; higher ranks are not representable. All variables are slices of one symbol ``x`` (row-major,
the order of `optdsl.backends.flatten.FlatProblem`) and all parameters slices of one symbol ``p``, so
``nlpsol`` sees ``x`` and ``p`` as plain vectors and a parameter change needs no rebuild.

Ops stay vectorized: an index is one gather (``v[flat_indices]``) on the row-major vector, numpy
broadcasting is ``repmat``, dense constants are ``DM`` and scipy.sparse constants ``DM`` with their
sparsity pattern. Terms with no CasADi counterpart (od.fn torch functions, black boxes, finite sums of a
torch loss, min–max objectives, the matrix exponential) raise `NotRepresentable` naming the term.
"""
from __future__ import annotations

from typing import Any

import casadi as ca
import numpy as np

from ..expr.node import Constant, Expr, Leaf, Op, Parameter, Variable


class NotRepresentable(Exception):
    """The expression uses a term CasADi cannot express (the message names it)."""


# --- shapes ---------------------------------------------------------------------------------------------

def _dims(shape: tuple) -> tuple[int, int]:
    if len(shape) > 2:
        raise NotRepresentable(f"arrays of rank {len(shape)} (shape {shape}) have no CasADi form (2-D at most)")
    return (1, 1) if not shape else (shape[0], 1) if len(shape) == 1 else shape


def _flat(x, shape: tuple):
    """Row-major vector of an array (what numpy's ravel gives)."""
    return x.T.reshape((-1, 1)) if len(shape) == 2 else x


def _unflat(v, shape: tuple):
    """Inverse of `_flat`: a row-major vector back into `shape`."""
    if len(shape) == 2:
        return ca.reshape(v, shape[1], shape[0]).T
    return v


def _broadcast(x, shape: tuple, to: tuple):
    """numpy broadcasting of an array of `shape` to `to` (both rank <= 2)."""
    if shape == to or len(to) <= 1 or int(np.prod(shape)) == 1:
        return x  # CasADi applies 1×1 operands elementwise itself
    if len(shape) == 1:  # (n,) against (m, n): the vector is a row
        x, shape = x.T, (1, shape[0])
    reps = (to[0] if shape[0] == 1 else 1, to[1] if shape[1] == 1 else 1)
    return ca.repmat(x, *reps) if reps != (1, 1) else x


def _elementwise(fn):
    def impl(node, a):
        to = node.shape
        return fn(*(_broadcast(x, arg.shape, to) for x, arg in zip(a, node.args)))
    return impl


def _axes(node) -> tuple | None:
    axis, nd = node.attrs.get("axis"), node.args[0].ndim
    if axis is None:
        return None
    axes = tuple(sorted({ax % nd for ax in ((axis,) if isinstance(axis, int) else axis)}))
    return None if len(axes) == nd else axes


def _reduce(total, along_rows, along_cols):
    """A reduction: `total` over every entry; `along_rows(x)` -> 1×n (numpy axis 0), `along_cols` -> m×1."""
    def impl(node, a):
        x, axes = a[0], _axes(node)
        if axes is None:
            return total(_flat(x, node.args[0].shape))
        return along_rows(x).T if axes == (0,) else along_cols(x)
    return impl


def _per_slice(fn):
    def rows(x):
        return ca.horzcat(*[fn(x[:, j]) for j in range(x.shape[1])])

    def cols(x):
        return ca.vertcat(*[fn(x[i, :].T) for i in range(x.shape[0])])
    return rows, cols


def _mmax(v): return ca.mmax(v)
def _mmin(v): return ca.mmin(v)
def _logsumexp(v):
    """log Σ exp(v), shifted by max(v) against overflow (the shift cancels in value and derivatives); written
    out because CasADi's LogSumExp node cannot be expanded to SX."""
    c = ca.mmax(v)
    return c + ca.log(ca.sum1(ca.exp(v - c)))


# --- ops ------------------------------------------------------------------------------------------------

def _sparse_constant(arg, value):
    """A dense constant matrix factor as a sparse DM when at most half its entries are nonzero: a product
    with a variable then has one graph node per nonzero (a tridiagonal N×N factor: 3N, not N²), and exact zeros
    add nothing to a matrix product."""
    if isinstance(arg, Constant) and not arg.sparse and isinstance(value, ca.DM) and value.numel() > 16 \
            and np.count_nonzero(np.asarray(arg.data)) <= value.numel() // 2:
        return ca.sparsify(value)
    return value


def _matmul(node, a):
    a = [_sparse_constant(arg, v) for arg, v in zip(node.args, a)]
    (x, y), (sa, sb) = a, (node.args[0].shape, node.args[1].shape)
    if len(sa) == 1:                      # (k,) @ (k,) or (k,) @ (k, n): a row times
        out = ca.mtimes(x.T, y)
        return out.T if len(sb) == 2 else out
    return ca.mtimes(x, y)


def _is_int(key) -> bool:
    return isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_))


def _index(node, a):
    shape, key = node.args[0].shape, node.attrs["key"]
    if isinstance(key, tuple) and len(key) == 1:
        key = key[0]
    if len(shape) == 1 and _is_int(key) and -shape[0] <= key < shape[0]:
        return a[0][int(key) % shape[0]]   # one entry of a vector (the common scalar-model case): no gather
    idx = np.arange(int(np.prod(shape)) if shape else 1).reshape(shape)[node.attrs["key"]]
    flat = _flat(a[0], shape)
    if np.ndim(idx) == 0:
        return flat[int(idx)]
    picked = flat[[int(i) for i in np.ravel(idx)]]
    if len(node.shape) > 2:
        raise NotRepresentable(f"an index with result shape {node.shape} has no CasADi form")
    return _unflat(picked, node.shape)


def _reshape(node, a):
    _dims(node.shape)
    return _unflat(_flat(a[0], node.args[0].shape), node.shape)


def _stack(node, a):
    shape, axis = node.args[0].shape, node.attrs["axis"]
    if not shape:
        return ca.vertcat(*a)
    if len(shape) == 1:
        cols = ca.horzcat(*a)          # n × k
        return cols.T if axis == 0 else cols
    raise NotRepresentable("stacking matrices gives a rank-3 array, which has no CasADi form")


def _concat(node, a):
    return ca.vertcat(*a) if node.attrs["axis"] == 0 else ca.horzcat(*a)


def _norm(node, a):
    v, p = _flat(a[0], node.args[0].shape), node.attrs["p"]
    if p == 1:
        return ca.sum1(ca.fabs(v))
    if p == np.inf:
        return ca.mmax(ca.fabs(v))
    return ca.norm_2(v)


def _power(node, a):
    p = node.attrs["p"]
    if p == 2:
        return a[0] * a[0]
    if p == 0.5:
        return ca.sqrt(a[0])
    return a[0] ** (int(p) if float(p).is_integer() else p)


def _quad_form(node, a):
    x, P = a
    return ca.mtimes(x.T, ca.mtimes(P, x))


def _opaque(what):
    def impl(node, a):
        name = node.attrs.get("fname")
        raise NotRepresentable(f"{what}{f'({name})' if name else ''} has no CasADi counterpart")
    return impl


CASADI: dict[str, Any] = {
    "add": _elementwise(lambda x, y: x + y),
    "sub": _elementwise(lambda x, y: x - y),
    "mul": _elementwise(lambda x, y: x * y),
    "div": _elementwise(lambda x, y: x / y),
    "maximum": _elementwise(ca.fmax),
    "minimum": _elementwise(ca.fmin),
    "neg": lambda n, a: -a[0],
    "power": _power,
    "matmul": _matmul,
    "sum": _reduce(ca.sum1, ca.sum1, ca.sum2),
    "mean": lambda n, a: _reduce(ca.sum1, ca.sum1, ca.sum2)(n, a) * (n.size / n.args[0].size),
    "max": _reduce(_mmax, *_per_slice(_mmax)),
    "min": _reduce(_mmin, *_per_slice(_mmin)),
    "logsumexp": _reduce(_logsumexp, *_per_slice(_logsumexp)),
    "transpose": lambda n, a: a[0].T if len(n.shape) == 2 else a[0],
    "reshape": _reshape,
    "index": _index,
    "stack": _stack,
    "concat": _concat,
    "exp": lambda n, a: ca.exp(a[0]),
    "log": lambda n, a: ca.log(a[0]),
    "sqrt": lambda n, a: ca.sqrt(a[0]),
    "square": lambda n, a: a[0] * a[0],
    "sin": lambda n, a: ca.sin(a[0]),
    "cos": lambda n, a: ca.cos(a[0]),
    "sigmoid": lambda n, a: 1 / (1 + ca.exp(-a[0])),
    "abs": lambda n, a: ca.fabs(a[0]),
    "relu": lambda n, a: ca.fmax(a[0], 0),
    "norm": _norm,
    "sum_squares": lambda n, a: ca.sumsqr(a[0]),
    "quad_form": _quad_form,
    "fn": _opaque("od.fn"),
    "blackbox": _opaque("od.blackbox"),
    "finite_sum": _opaque("od.mean(..., over=data)"),
    "max_over": _opaque("od.maximum_over (a min-max objective)"),
    "trace_expm": _opaque("od.trace_expm (the matrix exponential)"),
}


_OPAQUE = {"fn", "blackbox", "finite_sum", "max_over", "trace_expm"}


def dense_work(exprs) -> int:
    """Nonzero entries of dense constant matrices multiplied into the expressions (scalar SX graphs grow with
    them)."""
    return _op_stats(exprs)[2]


def entries_per_op(exprs) -> tuple[int, int]:
    """(Σ entries over the distinct op nodes, number of op nodes): a scalar SX graph has about the first many
    nodes, a matrix MX graph about the second many."""
    return _op_stats(exprs)[:2]


def _op_stats(exprs) -> tuple[int, int, int]:
    """(entries, op nodes, dense nonzeros) summed over `exprs`, each expression's kept on it (dispatch's size
    costs and the backend's graph choice ask about the same rows, and problems derived by rewrites share
    them). An op shared by two rows counts in each: these are size estimates for choosing a graph kind."""
    entries = ops = dense = 0
    for e in exprs:
        st = e._kept("_op_stats", _expr_op_stats)
        entries, ops, dense = entries + st[0], ops + st[1], dense + st[2]
    return entries, ops, dense


def _expr_op_stats(e) -> tuple[int, int, int]:
    entries = ops = dense = 0
    for node in e.nodes():
        if isinstance(node, Op):
            ops += 1
            entries += node.size
            if node.name in ("matmul", "quad_form"):   # zeros are dropped (`_sparse_constant`)
                dense += sum(int(np.count_nonzero(np.asarray(a.data))) for a in node.args
                             if isinstance(a, Constant) and not a.sparse)
    return entries, ops, dense


def unlowerable(expr: Expr) -> str | None:
    """Why `expr` cannot be lowered (naming the term), or None; a scan of op names and ranks, no CasADi work
    (kept on the expression: dispatch asks it of every problem a rewrite derives, which share their rows)."""
    return expr._kept("_casadi_unlowerable", _unlowerable)


def _unlowerable(expr: Expr) -> str | None:
    names = expr.op_names()
    if names & _OPAQUE or not names <= CASADI.keys():   # (rare: then find the node, in walk order, to name it)
        for node in expr.nodes():
            if isinstance(node, Op) and node.name in _OPAQUE:
                try:
                    CASADI[node.name](node, [])
                except NotRepresentable as e:
                    return str(e)
            if isinstance(node, Op) and node.name not in CASADI:
                return f"'{node.name}' has no CasADi lowering"
    for node in expr.nodes():
        if len(node.shape) > 2:
            return f"{node.label(40)!r} has shape {node.shape}; CasADi arrays are 2-D at most"
        if not isinstance(node, _LOWERABLE):
            return f"{type(node).__name__.lower()} {getattr(node, 'name', '')!r} needs a rewrite before CasADi"
    return None


_LOWERABLE = (Op, Variable, Parameter, Constant)


# --- the CVXPY atom set (issue 17) ----------------------------------------------------------------------

def _norm_axis(node, a):
    """Norms along an axis (`od.norm(X, axis=1)`); without an axis, the entrywise norm above."""
    if node.attrs.get("axis") is None:
        return _norm(node, a)
    p = node.attrs["p"]
    one = {1: lambda v: ca.sum1(ca.fabs(v)), np.inf: lambda v: ca.mmax(ca.fabs(v))}.get(p, ca.norm_2)
    return _reduce(one, *_per_slice(one))(node, a)


def _pnorm(node, a):
    p = node.attrs["p"]

    def one(v):
        return ca.sum1(ca.fabs(v) ** p) ** (1.0 / p)
    return _reduce(one, *_per_slice(one))(node, a)


def _diff(node, a):
    x, axis = a[0], node.attrs["axis"]
    for _ in range(node.attrs["k"]):
        x = x[1:, :] - x[:-1, :] if axis == 0 else x[:, 1:] - x[:, :-1]
    return x


def _cumsum(node, a):
    axis, shape = node.attrs.get("axis"), node.args[0].shape
    x = _flat(a[0], shape) if axis is None else a[0]
    if axis == 1:  # along each row
        return ca.horzcat(*[ca.sum2(x[:, :j + 1]) for j in range(x.shape[1])])
    return ca.vertcat(*[ca.sum1(x[:i + 1, :]) for i in range(x.shape[0])])


def _geo_mean(node, a):
    x, p = a[0], node.attrs.get("p")
    w = np.full(x.shape[0], 1.0 / x.shape[0]) if p is None else np.asarray(p) / np.sum(p)
    return ca.exp(sum(float(wi) * ca.log(x[i]) for i, wi in enumerate(w) if wi > 0))


def _matrix_frac(node, a):
    X, P = a
    return ca.trace(ca.mtimes(X.T, ca.solve(P, X)))


def _huber(node, a):
    x, M = a[0], node.attrs["M"]
    return ca.if_else(ca.fabs(x) <= M, x * x, 2 * M * ca.fabs(x) - M * M)


CASADI.update({
    "norm": _norm_axis,
    "huber": _huber,
    "entr": lambda n, a: -a[0] * ca.log(a[0]),
    "logistic": lambda n, a: ca.log(1 + ca.exp(a[0])),
    "inv_pos": lambda n, a: 1 / a[0],
    "kl_div": _elementwise(lambda x, y: x * ca.log(x / y) - x + y),
    "rel_entr": _elementwise(lambda x, y: x * ca.log(x / y)),
    "log_det": lambda n, a: ca.log(ca.det(a[0])),
    "trace": lambda n, a: ca.trace(a[0]),
    "diag": lambda n, a: ca.diag(a[0]),
    "diff": _diff,
    "cumsum": _cumsum,
    "pnorm": _pnorm,
    "geo_mean": _geo_mean,
    "quad_over_lin": lambda n, a: ca.sumsqr(a[0]) / a[1],
    "lambda_max": _opaque("od.lambda_max (an eigenvalue)"),
    "matrix_frac": _matrix_frac,
})


def _entry_key(node: Op):
    """A memo key shared by every ``v[i]`` (one integer index) of the same operand node, or None: scalar-written
    models index the same entry many times, and each CasADi indexing call costs microseconds."""
    if node.name != "index":
        return None
    key = node.attrs["key"]
    if isinstance(key, tuple) and len(key) == 1:
        key = key[0]
    return ("entry", id(node.args[0]), int(key)) if _is_int(key) else None


_SX = ca.SX
_RECURSION_DEPTH = 200   # `CasadiLowering.lower` recurses this deep, then walks with its own stack

# elementwise ops SX builds directly (`CasadiLowering._fast`)
_SX_BINARY = {"add": ca.OP_ADD, "sub": ca.OP_SUB, "mul": ca.OP_MUL, "div": ca.OP_DIV}
_SX_UNARY = {"neg": ca.OP_NEG, "exp": ca.OP_EXP, "log": ca.OP_LOG, "sqrt": ca.OP_SQRT, "square": ca.OP_SQ,
             "sin": ca.OP_SIN, "cos": ca.OP_COS, "abs": ca.OP_FABS}


class CasadiLowering:
    """Lowers expressions of one problem onto the shared symbols ``x`` (all variables, row-major, in the
    order given) and ``p`` (the given parameters, row-major, in order).
    """

    def __init__(self, variables, offsets, n: int, parameters=(), sym=ca.MX):
        self.sym = sym            # MX (matrix-valued graph nodes) or SX (scalar graphs: faster for small models)
        self.x = sym.sym("x", n)
        self.n = n
        self._offsets = dict(zip(variables, offsets))
        self.variables: dict = {}   # variable -> its slice of x, made on first use
        self.parameters = list(parameters)
        self.n_p = sum(prm.size for prm in self.parameters)
        self.p = sym.sym("p", self.n_p)
        self._pslices, o = {}, 0
        for prm in self.parameters:
            self._pslices[prm] = self._slice(self.p, o, prm.shape)
            o += prm.size

    @staticmethod
    def _slice(vec, o: int, shape: tuple):
        size = int(np.prod(shape)) if shape else 1
        return _unflat(vec[o:o + size], shape) if size else type(vec)(*_dims(shape))

    def leaf(self, leaf: Leaf):
        if isinstance(leaf, Variable):
            out = self.variables.get(leaf)
            if out is None:
                o = self._offsets.get(leaf)
                if o is None:
                    raise NotRepresentable(f"variable {leaf.name!r} is not one of the problem's variables")
                whole = o == 0 and leaf.size == self.n and len(leaf.shape) <= 1   # x itself: no slice
                out = self.variables[leaf] = self.x if whole else self._slice(self.x, o, leaf.shape)
            return out
        if isinstance(leaf, Parameter):
            try:
                return self._pslices[leaf]
            except KeyError:
                raise NotRepresentable(f"parameter {leaf.name!r} was not declared to the lowering") from None
        if isinstance(leaf, Constant):
            if leaf.sparse:
                M = leaf.data.tocsc()
                return ca.DM(ca.Sparsity(M.shape[0], M.shape[1], M.indptr.tolist(), M.indices.tolist()), M.data)
            _dims(leaf.shape)
            if self.sym is ca.SX and leaf.size == 1:   # a scalar: SX, so that ops on it take the fast path
                return _SX(float(leaf.data.item()))
            return ca.DM(np.asarray(leaf.data, float).reshape(_dims(leaf.shape)))
        raise NotRepresentable(f"{type(leaf).__name__.lower()} {leaf.name!r} needs a rewrite before CasADi")

    def _fast(self, node: Op, args: list):
        """The node through ``SX.binary`` / ``SX.unary`` when it is an elementwise op on SX operands that need no
        broadcasting, else None: the same graph as CasADi's operators (its simplifications included), without
        their Python overload resolution (2 µs a node instead of 13-20; most of a scalar model's lowering)."""
        name = node.name
        code = _SX_BINARY.get(name)
        if code is not None:
            a, b = args
            if type(a) is _SX and type(b) is _SX:
                sa, sb = node.args
                if len(node.shape) <= 1 or sa.shape == sb.shape or sa.size == 1 or sb.size == 1:
                    return _SX.binary(code, a, b)
            return None
        if len(args) != 1 or type(args[0]) is not _SX:
            return None
        code = _SX_UNARY.get(name)
        if code is not None:
            return _SX.unary(code, args[0])
        if name == "power":
            p = float(node.attrs["p"])
            return (_SX.unary(ca.OP_SQ, args[0]) if p == 2 else _SX.unary(ca.OP_SQRT, args[0]) if p == 0.5
                    else _SX.binary(ca.OP_POW, args[0], _SX(p)))
        return None

    def lower(self, expr: Expr, memo: dict | None = None):
        """The CasADi expression of `expr` (post-order, shared sub-expressions lowered once; recursive near the
        root, iterative below `_RECURSION_DEPTH` so that deep loop-built expressions never hit Python's limit)."""
        memo = {} if memo is None else memo
        out = self._lower(expr, memo, 0)
        return out if isinstance(out, self.sym) else self.sym(out)

    def _lower(self, node: Expr, memo: dict, depth: int):
        out = memo.get(id(node))   # (CasADi objects are never None)
        if out is not None:
            return out
        if depth > _RECURSION_DEPTH:
            return self._lower_iterative(node, memo)
        if isinstance(node, Leaf):
            out = self.leaf(node)
        else:
            out = self._node(node, [self._lower(a, memo, depth + 1) for a in node.args], memo)
        memo[id(node)] = out
        return out

    def _lower_iterative(self, expr: Expr, memo: dict):
        stack = [(expr, False)]
        while stack:
            node, ready = stack.pop()
            key = id(node)
            if key in memo:
                continue
            if isinstance(node, Leaf):
                memo[key] = self.leaf(node)
            elif ready:
                memo[key] = self._node(node, [memo[id(a)] for a in node.args], memo)
            else:
                stack.append((node, True))
                stack.extend((a, False) for a in node.args if id(a) not in memo)
        return memo[id(expr)]

    def _node(self, node: Op, args: list, memo: dict):
        """One op on its lowered operands; every ``v[i]`` of one operand and entry shares one lowered entry."""
        if self.sym is _SX and node.name != "index":
            fast = self._fast(node, args)
            if fast is not None:
                return fast
        elif node.name == "index":
            same = _entry_key(node)
            if same is not None:
                if same not in memo:
                    memo[same] = self._apply(node, args)
                return memo[same]
        return self._apply(node, args)

    def _apply(self, node: Op, args: list):
        impl = CASADI.get(node.name)
        if impl is None:
            raise NotRepresentable(f"'{node.name}' has no CasADi lowering")
        _dims(node.shape)
        try:
            return impl(node, args)
        except NotRepresentable:
            raise
        except RecursionError:
            raise
        except (RuntimeError, ValueError, TypeError, IndexError) as e:  # CasADi refused a construct
            raise NotRepresentable(f"'{node.name}' on shapes {[a.shape for a in node.args]}: {e}") from None

    def parameter_values(self) -> np.ndarray:
        """The current values of the parameters, stacked as ``p`` (row-major)."""
        if not self.parameters:
            return np.zeros(0)
        return np.concatenate([np.asarray(prm.value, float).ravel() for prm in self.parameters])
