"""Post-order evaluation of an expression DAG with a table of op implementations (shared by lowerings)."""
from __future__ import annotations

from typing import Any, Callable

from ..expr.node import Expr, Leaf, Op


def lower(root: Expr, leaf: Callable[[Leaf], Any], table: dict, memo: dict | None = None) -> Any:
    """Evaluate `root` bottom-up: leaves through `leaf`, ops through `table[name](args, attrs)`.

    Iterative (no recursion limit on deep expressions) and memoized on node identity, so shared
    sub-expressions are lowered once.
    """
    memo = {} if memo is None else memo
    stack = [(root, False)]
    while stack:
        node, ready = stack.pop()
        key = id(node)
        if key in memo:
            continue
        if isinstance(node, Leaf):
            memo[key] = leaf(node)
        elif ready:
            assert isinstance(node, Op)
            memo[key] = table[node.name]([memo[id(a)] for a in node.args], node.attrs)
        else:
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if id(a) not in memo)
    return memo[id(root)]
