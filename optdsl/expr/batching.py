"""Batching of loop-built constraints: N scalar constraints of one form become one vector constraint.

A model written step by step (``for k in range(N): m.subject_to(pos[k + 1] == pos[k] + dt * speed[k])``)
has N scalar constraints whose expression trees are the same up to the integer index keys (``pos[k]``)
and scalar constants. Lowering each one separately costs N times the per-constraint overhead of the
target (cvxpy canonicalization, DCP analysis); lowering their vectorised form ``pos[ks + 1] == pos[ks] +
dt * speed[ks]`` (ks an index array) costs about one.

`batch_constraints(items)` groups scalar constraints of one kind whose trees have one *signature*
(ops, attrs, leaves and sharing identical; index keys and scalar constants free) and rebuilds each
group's tree once, with index arrays for the keys and constant vectors for the constants that differ
between members. This is exact when every op on a path from a differing slot to the root is elementwise
on scalar operands (the vectorised op then computes each member's value in its own entry); groups that
do not satisfy it stay as single constraints. Entry i of a batch is member i, so duals split back by name.
"""
from __future__ import annotations

import numbers
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .node import Constant, Expr, Leaf, Op, op

# ops that act entrywise (with broadcasting) on their operands
ELEMENTWISE = frozenset({
    "add", "sub", "mul", "div", "neg", "power", "exp", "log", "sqrt", "square", "sin", "cos", "sigmoid", "abs",
    "relu", "maximum", "minimum", "huber", "entr", "logistic", "inv_pos", "kl_div", "rel_entr",
})
MIN_BATCH = 4  # fewer members are not worth a rebuild


@dataclass
class Batch:
    """Constraints `items` (all of `kind`) as one expression `expr` of shape (len(items),), or one item as is."""
    items: list
    kind: str
    expr: Expr

    @property
    def batched(self) -> bool:
        return len(self.items) > 1


def _int_key(key: Any):
    """The key as a tuple of Python ints when it is an int or a tuple of ints (a scalar entry), else None."""
    parts = key if isinstance(key, tuple) else (key,)
    if all(isinstance(k, numbers.Integral) and not isinstance(k, bool) for k in parts):
        return tuple(int(k) for k in parts)
    return None


def _hashable(v):
    """Index keys may hold slices and arrays (W[:, j], W[rows, cols]): a hashable token for each part."""
    if isinstance(v, slice):
        return ("slice", v.start, v.stop, v.step)
    if isinstance(v, np.ndarray):
        return ("array", v.shape, v.tobytes())
    if isinstance(v, (tuple, list)):
        return tuple(_hashable(e) for e in v)
    return v


def _attrs_token(attrs: dict) -> tuple:
    out = []
    for k in sorted(attrs):
        v = attrs[k]
        if isinstance(v, np.ndarray):
            v = ("array", v.shape, v.tobytes())
        elif isinstance(v, tuple):
            v = _hashable(v)
        elif not isinstance(v, (numbers.Number, str, tuple, type(None), bool)):
            v = ("object", id(v))
        out.append((k, v))
    return tuple(out)


def signature(expr: Expr) -> tuple[tuple, list, list]:
    """(structure, slot values, slot nodes): the tree in pre-order with shared nodes as back references;
    the slots are the integer index keys and scalar constants, in the same order."""
    tokens: list = []
    values: list = []
    nodes: list = []
    seen: dict[int, int] = {}
    stack = [expr]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            tokens.append(("ref", seen[id(n)]))
            continue
        seen[id(n)] = len(seen)
        if isinstance(n, Constant):
            if n.shape == () and not n.sparse:
                tokens.append(("c",))
                values.append(float(n.data))
                nodes.append(n)
            else:
                tokens.append(("C", n.sparse, n.shape, hash(n.data.tobytes()) if not n.sparse else id(n.data)))
            continue
        if isinstance(n, Leaf):
            tokens.append(("leaf", id(n)))
            continue
        assert isinstance(n, Op)
        key = _int_key(n.attrs["key"]) if n.name == "index" else None
        if key is not None:
            tokens.append(("index", len(key), n.args[0].shape))
            values.append(key)
            nodes.append(n)
        else:
            tokens.append((n.name, len(n.args), _attrs_token(n.attrs)))
        stack.extend(reversed(n.args))
    return tuple(tokens), values, nodes


def _vectorise(first: Expr, nodes: list, columns: list, k: int) -> Expr | None:
    """Rebuild `first` with the varying slots replaced by their columns; None when not exact."""
    slot = {id(n): j for j, n in enumerate(nodes)}
    varying = [any(v != col[0] for v in col) for col in columns]
    memo: dict[int, Expr] = {}
    stack = [(first, False)]
    while stack:
        n, ready = stack.pop()
        if id(n) in memo:
            continue
        j = slot.get(id(n))
        if isinstance(n, Leaf):
            memo[id(n)] = Constant(np.array(columns[j], dtype=float)) if j is not None and varying[j] else n
            continue
        if not ready:
            stack.append((n, True))
            stack.extend((a, False) for a in n.args if id(a) not in memo)
            continue
        args = [memo[id(a)] for a in n.args]
        changed = any(new is not old for new, old in zip(args, n.args))
        if j is not None and varying[j]:  # an index whose key differs between members
            if changed:
                return None  # the indexed expression itself varies: not a gather from one array
            keys = np.array(columns[j], dtype=np.int64)  # (k, rank)
            key = keys[:, 0] if keys.shape[1] == 1 else tuple(keys[:, i] for i in range(keys.shape[1]))
            memo[id(n)] = op("index", n.args[0], key=key)
        elif not changed:
            memo[id(n)] = n
        elif n.name in ELEMENTWISE and all(a.shape == () for a in n.args):
            memo[id(n)] = op(n.name, *args, **dict(n.attrs))
        else:
            return None
    out = memo[id(first)]
    if out.shape == ():
        out = op("add", out, np.zeros(k))  # identical members: one value, k rows
    return out if out.shape == (k,) else None


_CACHE: "OrderedDict[tuple, tuple]" = OrderedDict()  # (id of items, min_batch) -> (items, batches)


def batch_constraints(items: Sequence, min_batch: int = MIN_BATCH) -> list[Batch]:
    """Group scalar constraints (items with ``.kind``, ``.expr``, ``.name``) of one form into batches,
    keeping the order of first appearance; every other item becomes a single-item Batch.

    Problems rewritten by passes share their constraint tuple, so the result is cached per tuple (a
    few recent ones): dispatch, the lowering and the certificates group once per model."""
    key = (id(items), min_batch)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is items:
        return hit[1]
    out = _batch(items, min_batch)
    if isinstance(items, tuple):
        _CACHE[key] = (items, out)
        while len(_CACHE) > 16:
            _CACHE.popitem(last=False)
    return out


def _batch(items: Sequence, min_batch: int) -> list[Batch]:
    if sum(1 for it in items if it.expr.shape == ()) < min_batch:   # no group can be large enough: no signatures
        return [Batch([it], it.kind, it.expr) for it in items]
    groups: dict[tuple, list] = {}
    order: list = []
    sigs: dict[int, tuple] = {}
    for it in items:
        if it.expr.shape != () or getattr(it, "soft", False) or it.kind not in ("eq", "ineq"):
            order.append(("single", it))
            continue
        sig = getattr(it.expr, "_batch_signature", None)  # expressions are immutable: computed once
        if sig is None:
            sig = signature(it.expr)
            try:
                it.expr._batch_signature = sig
            except AttributeError:  # pragma: no cover - a leaf type with __slots__
                pass
        tokens, values, nodes = sig
        key = (it.kind, tokens)
        sigs[id(it)] = (values, nodes)
        if key not in groups:
            groups[key] = []
            order.append(("group", key))
        groups[key].append(it)
    out: list[Batch] = []
    for tag, ref in order:
        if tag == "single":
            out.append(Batch([ref], ref.kind, ref.expr))
            continue
        members = groups[ref]
        expr = None
        if len(members) >= min_batch:
            values0, nodes0 = sigs[id(members[0])]
            columns = [[sigs[id(m)][0][j] for m in members] for j in range(len(values0))]
            expr = _vectorise(members[0].expr, nodes0, columns, len(members))
        if expr is None:
            out.extend(Batch([m], m.kind, m.expr) for m in members)
        else:
            out.append(Batch(list(members), ref[0], expr))
    return out
