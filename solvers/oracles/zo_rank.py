"""Rank-based ZO estimator (ZO-RankSGD; Tang, Rybin & Chang, ICLR 2024).

Only a ranking oracle is needed: at x draw ξ_1..ξ_m ~ N(0, I), ask which of the candidates x + μξ_i are
better, and build the comparison set E = {(i, j): candidate i ranked worse than candidate j}. Then

    g = (1/|E|) Σ_{(i, j) ∈ E} (ξ_i − ξ_j)

points uphill in expectation (∝ ∇f(x)), and x ← x − η g descends. With an (m, k)-ranking only the k best
are ordered: each ranked candidate beats every candidate ranked after it and every unranked one. Because
only the order is used, iterates are invariant under monotone transformations of f (tested).
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch

from .zo_noise import derive_seed, noise_like
from .zo_twopoint import ZOEvalError, check_eps, safe_eval


def rank_direction(x: torch.Tensor, *, seed: int, mu: float = 1e-2, m: int = 2, k: Optional[int] = None,
                   f: Optional[Callable[[torch.Tensor], object]] = None,
                   rank: Optional[Callable[[list], Sequence[int]]] = None, kind: str = "gaussian",
                   where: str = ""):
    """ZO-RankSGD direction at flat ``x``; returns ``(g, n_queries, best_value_or_None)``.

    Give either ``f`` (values are compared; ranking by value) or ``rank(candidates) -> indices best first``
    (at least k of them). ``k`` defaults to m (full ranking). Candidate i is x + mu·ξ_i, ξ_i from seed
    ``derive_seed(seed, i)``.
    """
    mu = check_eps(mu, "mu")
    if m < 2:
        raise ValueError(f"m (candidates per ranking) must be >= 2, got {m}")
    k = m if k is None else k
    if not 1 <= k <= m:
        raise ValueError(f"k must be in [1, m={m}], got {k}")
    if (f is None) == (rank is None):
        raise ValueError("give exactly one of f (value oracle) or rank (ranking oracle)")
    xis = [noise_like(x, derive_seed(seed, i), kind) for i in range(m)]
    cands = [x + mu * xi for xi in xis]
    best = None
    if f is not None:
        vals = [safe_eval(f, f"{where} (candidate {i})", c) for i, c in enumerate(cands)]
        order = sorted(range(m), key=lambda i: vals[i])[:k]
        best = min(vals)
    else:
        try:
            order = [int(i) for i in rank(cands)][:k]
        except Exception as exc:
            raise ZOEvalError(f"ranking oracle raised {type(exc).__name__}: {exc} at {where}") from exc
        if len(order) < k or len(set(order)) != len(order) or not all(0 <= i < m for i in order):
            raise ZOEvalError(f"ranking oracle returned {order} at {where}; expected {k} distinct indices in [0, {m})")
    g = torch.zeros_like(x)
    n_pairs = 0
    ranked = set()
    for r, j in enumerate(order):      # j beats everything ranked after it and everything unranked
        ranked.add(j)
        for i in range(m):
            if i not in ranked:
                g.add_(xis[i] - xis[j])
                n_pairs += 1
    return g / max(n_pairs, 1), m, best
