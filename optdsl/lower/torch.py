"""Torch lowering: evaluate expressions on tensors (autograd, any device/dtype)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import ModelError
from ..expr.node import Constant, Expr, Leaf, Parameter, Uncertain, Variable
from ._walk import lower


def _dims(axis):
    return tuple(axis) if isinstance(axis, (tuple, list)) else axis


def _reduce(fn_all, fn_axis):
    def impl(a, at):
        axis = at.get("axis")
        return fn_all(a[0]) if axis is None else fn_axis(a[0], _dims(axis))
    return impl


def _norm(a, at):
    x, p, axis = a[0], at["p"], at.get("axis")
    if axis is not None:
        return torch.linalg.vector_norm(x, ord=2 if p == "fro" else p, dim=_dims(axis))
    if p == 1:
        return x.abs().sum()
    if p == np.inf:
        return x.abs().max()
    return torch.linalg.vector_norm(x.reshape(-1))


def _pnorm(a, at):
    x, axis = a[0], at.get("axis")
    return torch.linalg.vector_norm(x.reshape(-1) if axis is None else x, ord=at["p"],
                                    dim=None if axis is None else _dims(axis))


def _huber(a, at):
    x, M = a[0], at["M"]
    ax = x.abs()
    return torch.where(ax <= M, x * x, 2 * M * ax - M * M)


def _log_det(a, at):
    """log det X; -inf where X is not positive definite (cvxpy's value there)."""
    sign, logabs = torch.linalg.slogdet(a[0])
    return torch.where(sign > 0, logabs, torch.full_like(logabs, -np.inf))


def _diag(a, at):
    x = a[0]
    return torch.diag_embed(x) if x.ndim == 1 else torch.diagonal(x)


def _cumsum(a, at):
    axis = at.get("axis")
    return a[0].reshape(-1).cumsum(0) if axis is None else a[0].cumsum(axis)


def _geo_mean(a, at):
    x, p = a[0], at.get("p")
    w = torch.full_like(x, 1.0 / x.numel()) if p is None else torch.as_tensor(p, dtype=x.dtype, device=x.device)
    w = w / w.sum()
    keep = w > 0  # zero weights drop their entry (0 * log 0 would be nan)
    return torch.exp((w[keep] * torch.log(x[keep])).sum())


def _lambda_max(a, at):
    X = a[0]
    return torch.linalg.eigvalsh((X + X.T) / 2)[-1]


def _matrix_frac(a, at):
    X, P = a
    return (X * torch.linalg.solve(P, X)).sum()


def _index(a, at):
    key = at["key"]
    if isinstance(key, np.ndarray) or (isinstance(key, tuple) and any(isinstance(k, np.ndarray) for k in key)):
        key = tuple(torch.as_tensor(k) if isinstance(k, np.ndarray) else k for k in (key if isinstance(key, tuple) else (key,)))
    return a[0][key]


def _transpose(a, at):
    x = a[0]
    return x.permute(*reversed(range(x.ndim))) if x.ndim > 1 else x


def _blackbox(a, at):
    args = [t.detach().cpu().numpy() for t in a]
    out = at["func"](*args)
    ref = a[0] if a else None
    return torch.as_tensor(np.asarray(out, dtype=float), dtype=ref.dtype if ref is not None else torch.float64,
                           device=ref.device if ref is not None else None)


def _fn(a, at):
    out = at["func"](*a)
    if not isinstance(out, torch.Tensor):
        out = torch.as_tensor(out, dtype=a[0].dtype, device=a[0].device)
    return out


def _finite_sum(a, at):
    """Full-data mean, computed in chunks of the declared batch size (so memory stays that of a batch)."""
    data, n, B = at["data"], at["n"], at.get("batch") or at["n"]
    total = None
    for start in range(0, n, B):
        idx = slice(start, min(n, start + B))
        batch = tuple(d[idx] for d in data) if isinstance(data, tuple) else data[idx]
        part = at["func"](batch, *a) * (idx.stop - idx.start)
        total = part if total is None else total + part
    return total / n


def _max_over(a, at):
    return a[0]  # evaluating max_y L(x, y) at the current (x, y) gives L: the saddle value at a solution


TORCH: dict[str, Any] = {
    "finite_sum": _finite_sum,
    "trace_expm": lambda a, at: torch.linalg.matrix_exp(a[0]).diagonal().sum(),
    "max_over": _max_over,
    "add": lambda a, at: a[0] + a[1],
    "sub": lambda a, at: a[0] - a[1],
    "mul": lambda a, at: a[0] * a[1],
    "div": lambda a, at: a[0] / a[1],
    "neg": lambda a, at: -a[0],
    "power": lambda a, at: a[0] ** at["p"],
    "matmul": lambda a, at: a[0] @ a[1],
    "sum": _reduce(torch.sum, lambda x, d: x.sum(dim=d)),
    "mean": _reduce(torch.mean, lambda x, d: x.mean(dim=d)),
    "max": _reduce(torch.max, lambda x, d: x.amax(dim=d)),
    "min": _reduce(torch.min, lambda x, d: x.amin(dim=d)),
    "logsumexp": _reduce(lambda x: torch.logsumexp(x.reshape(-1), 0), lambda x, d: torch.logsumexp(x, dim=d)),
    "transpose": _transpose,
    "reshape": lambda a, at: a[0].reshape(at["shape"]),
    "index": _index,
    "stack": lambda a, at: torch.stack(a, dim=at["axis"]),
    "concat": lambda a, at: torch.cat(a, dim=at["axis"]),
    "exp": lambda a, at: torch.exp(a[0]),
    "log": lambda a, at: torch.log(a[0]),
    "sqrt": lambda a, at: torch.sqrt(a[0]),
    "square": lambda a, at: a[0] * a[0],
    "sin": lambda a, at: torch.sin(a[0]),
    "cos": lambda a, at: torch.cos(a[0]),
    "sigmoid": lambda a, at: torch.sigmoid(a[0]),
    "abs": lambda a, at: torch.abs(a[0]),
    "relu": lambda a, at: torch.relu(a[0]),
    "maximum": lambda a, at: torch.maximum(*torch.broadcast_tensors(a[0], a[1])),
    "minimum": lambda a, at: torch.minimum(*torch.broadcast_tensors(a[0], a[1])),
    "norm": _norm,
    "sum_squares": lambda a, at: (a[0] * a[0]).sum(),
    "quad_form": lambda a, at: a[0] @ (a[1] @ a[0]),
    "fn": _fn,
    "blackbox": _blackbox,
    "huber": _huber,
    "entr": lambda a, at: torch.special.entr(a[0]),
    "logistic": lambda a, at: torch.nn.functional.softplus(a[0], beta=1.0, threshold=30.0),
    "inv_pos": lambda a, at: 1.0 / a[0],
    "kl_div": lambda a, at: torch.xlogy(a[0], a[0] / a[1]) - a[0] + a[1],
    "rel_entr": lambda a, at: torch.xlogy(a[0], a[0] / a[1]),
    "log_det": _log_det,
    "trace": lambda a, at: torch.diagonal(a[0]).sum(),
    "diag": _diag,
    "diff": lambda a, at: torch.diff(a[0], n=at["k"], dim=at["axis"]) if at["k"] else a[0],
    "cumsum": _cumsum,
    "pnorm": _pnorm,
    "geo_mean": _geo_mean,
    "quad_over_lin": lambda a, at: (a[0] * a[0]).sum() / a[1].reshape(()),
    "lambda_max": _lambda_max,
    "matrix_frac": _matrix_frac,
}


def _sparse_tensor(M, device, dtype) -> torch.Tensor:
    """scipy CSR -> torch sparse CSR (matmul and autograd through it work on CPU and CUDA)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta" / invariant-check notices
        return torch.sparse_csr_tensor(torch.as_tensor(M.indptr, dtype=torch.int64),
                                       torch.as_tensor(M.indices, dtype=torch.int64),
                                       torch.as_tensor(M.data), size=M.shape).to(device=device, dtype=dtype)


class TorchLowering:
    """Evaluates expressions given tensors for the variables. Constants are converted once per
    device/dtype; parameters are re-read when their `version` changes, so re-solves see new data."""

    def __init__(self, device: Any = "cpu", dtype: torch.dtype = torch.float64):
        self.device = torch.device(device)
        self.dtype = dtype
        self._const: dict[int, torch.Tensor] = {}
        self._param: dict[int, tuple[int, torch.Tensor]] = {}

    def tensor(self, leaf: Leaf, env: dict) -> torch.Tensor:
        if leaf in env:  # variables, or any leaf the caller pins (e.g. an uncertain value being maximized over)
            return env[leaf]
        if isinstance(leaf, Variable):
            try:
                return env[leaf]
            except KeyError:
                raise ModelError(f"variable {leaf.name!r} has no value to evaluate with") from None
        if isinstance(leaf, (Parameter, Uncertain)):
            if leaf.value is None:
                raise ModelError(f"parameter {leaf.name!r} has no value")
            cached = self._param.get(leaf.id)
            if cached is None or cached[0] != leaf.version:
                cached = (leaf.version, torch.as_tensor(leaf.value, dtype=self.dtype, device=self.device))
                self._param[leaf.id] = cached
            return cached[1]
        assert isinstance(leaf, Constant)
        t = self._const.get(leaf.id)
        if t is None:
            t = self._const[leaf.id] = (_sparse_tensor(leaf.data, self.device, self.dtype) if leaf.sparse else
                                        torch.as_tensor(leaf.data, dtype=self.dtype, device=self.device))
        return t

    def evaluate(self, expr: Expr, env: dict, memo: dict | None = None) -> torch.Tensor:
        return lower(expr, lambda leaf: self.tensor(leaf, env), TORCH, memo)


class Tape:
    """Expressions compiled once, for repeated evaluation on one flat vector ``x``.

    The DAG of ``exprs`` is put in post-order once (shared sub-expressions get one slot), constants are
    converted once, each variable becomes a slice ``x[o:o+size].reshape(shape)`` at its offset, and parameters
    are read through the lowering at every call (so a new value is seen). A call then runs one loop over the ops,
    with none of the walk's per-node stack, memo and type dispatch: the same tensors and the same autograd
    graph as `TorchLowering.evaluate`, at a fraction of the Python cost (what a small model pays per
    function evaluation in the torch backends).
    """

    def __init__(self, low: "TorchLowering", exprs: list, offsets: dict):
        """``offsets``: id(variable) -> its offset in x."""
        self.low = low
        slot: dict[int, int] = {}
        template: list = []
        self._vars: list = []     # (slot, offset, size, shape)
        self._leaves: list = []   # (slot, leaf) read at each call: parameters, variables without an offset
        self._ops: list = []      # (slot, impl, arg slots, attrs)
        for root in exprs:
            stack = [(root, False)]
            while stack:
                node, ready = stack.pop()
                if id(node) in slot:
                    continue
                if isinstance(node, Leaf):
                    k = slot[id(node)] = len(template)
                    template.append(None)
                    if isinstance(node, Variable) and id(node) in offsets:
                        self._vars.append((k, offsets[id(node)], node.size, node.shape))
                    elif isinstance(node, Constant):
                        template[k] = low.tensor(node, {})
                    else:
                        self._leaves.append((k, node))
                elif ready:
                    k = slot[id(node)] = len(template)
                    template.append(None)
                    self._ops.append((k, TORCH[node.name], tuple(slot[id(a)] for a in node.args), node.attrs))
                else:
                    stack.append((node, True))
                    stack.extend((a, False) for a in node.args if id(a) not in slot)
        self._template = template
        self._out = [slot[id(e)] for e in exprs]
        # an output that is a leaf itself is a view of x (or a cached constant): callers must not write into it
        self.leaf_output = any(isinstance(e, Leaf) for e in exprs)

    def __call__(self, x: torch.Tensor) -> list:
        vals = self._template.copy()
        for k, o, size, shape in self._vars:
            vals[k] = x[o:o + size].reshape(shape)
        for k, leaf in self._leaves:
            vals[k] = self.low.tensor(leaf, {})
        for k, impl, args, attrs in self._ops:
            vals[k] = impl([vals[i] for i in args], attrs)
        return [vals[k] for k in self._out]


def evaluate_numpy(expr: Expr, values: dict | None = None) -> np.ndarray | float:
    """Evaluate with numpy inputs (variables' `.value` unless given in `values`); returns numpy."""
    env = {}
    for v in expr.variables():
        val = (values or {}).get(v, v.value)
        if val is None:
            raise ModelError(f"variable {v.name!r} has no value; solve the model or set {v.name}.value")
        env[v] = torch.as_tensor(np.asarray(val, dtype=float))
    with torch.no_grad():
        out = TorchLowering().evaluate(expr, env).cpu().numpy()
    return float(out) if out.ndim == 0 else out
