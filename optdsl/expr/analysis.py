"""Structural analysis of expressions: which leaves an expression depends on, and affinity.

`is_affine(e, wrt)` decides whether ``e`` is affine in the leaves ``wrt`` (all other leaves treated as
constants) by the usual rules: linear ops of affine arguments, products and quotients with a factor
that does not depend on ``wrt``. It is exact for the IR (no numeric probing), so a robust constraint
"affine in u" or a "linear system" is recognised without solving anything.
"""
from __future__ import annotations

from typing import Iterable

from .node import Expr, Leaf, Op
from .ops import SPECS


def is_affine(e: Expr, wrt: Iterable | None = None) -> bool:
    if wrt is None:   # affine in its variables: asked of the same rows by tags, DCP and backends (kept)
        return e._kept("_affine", lambda x: _is_affine(x, set(x.variables())))
    return _is_affine(e, set(wrt))


def _is_affine(e: Expr, wrt: set) -> bool:
    memo: dict[int, tuple[bool, bool]] = {}  # id -> (depends, affine)
    stack = [(e, False)]   # iterative post-order: a loop-built sum of 10⁴ terms is that deep
    while stack:
        n, ready = stack.pop()
        if id(n) in memo:
            continue
        if isinstance(n, Leaf):
            memo[id(n)] = (n in wrt, True)
        elif ready:
            memo[id(n)] = _affinity(n, [memo[id(a)] for a in n.args])
        else:
            stack.append((n, True))
            stack.extend((a, False) for a in n.args if id(a) not in memo)
    return memo[id(e)][1]


def _affinity(n: Op, parts: list) -> tuple[bool, bool]:
    """(depends on `wrt`, affine in it) of op `n` from its operands'."""
    ndep, affine = 0, True
    for d, a in parts:
        ndep += d
        affine = affine and a
    if not ndep:
        return (False, True)
    if not affine:
        return (True, False)
    if SPECS[n.name].linear:
        return (True, True)
    if n.name in ("mul", "matmul"):
        return (True, ndep == 1)
    if n.name == "div":
        return (True, not parts[1][0])
    if n.name == "power":
        return (True, n.attrs["p"] == 1)
    return (True, False)
