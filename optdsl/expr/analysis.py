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
    if wrt is None:   # affine in its variables: asked of the same rows by tags, DCP and backends (kept on the node)
        cached = e.__dict__.get("_affine")
        if cached is None:
            cached = e._affine = _is_affine(e, set(e.variables()))
        return cached
    return _is_affine(e, set(wrt))


def _is_affine(e: Expr, wrt: set) -> bool:
    memo: dict[int, tuple[bool, bool]] = {}  # id -> (depends, affine)

    def visit(n: Expr) -> tuple[bool, bool]:
        key = id(n)
        if key in memo:
            return memo[key]
        if isinstance(n, Leaf):
            r = (n in wrt, True)
        else:
            assert isinstance(n, Op)
            parts = [visit(a) for a in n.args]
            dep = any(d for d, _ in parts)
            if not dep:
                r = (False, True)
            elif not all(a for _, a in parts):
                r = (True, False)
            elif SPECS[n.name].linear:
                r = (True, True)
            elif n.name in ("mul", "matmul"):
                r = (True, sum(d for d, _ in parts) == 1)
            elif n.name == "div":
                r = (True, not parts[1][0])
            elif n.name == "power":
                r = (True, n.attrs["p"] == 1)
            else:
                r = (True, False)
        memo[key] = r
        return r

    return visit(e)[1]
