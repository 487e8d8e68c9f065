"""Three and more levels by nesting the value-function penalty: the lower problem is itself a bilevel solve.

Levels ``[f_1, f_2, ..., f_L]`` over variables ``(u_1, ..., u_L)`` (each callable takes all of them):
level l chooses u_l in argmin f_l(u_1..u_{l-1}, u_l, u_{l+1}*(..), ...), i.e. it anticipates the levels below.
Following Kwon et al. (ICLR 2024), the bottom pair is replaced by its penalty, from the bottom up:

    G_L = f_L,     G_l(u_1..u_L) = f_l + (G_{l+1} - V_{l+1}(u_1..u_l)) / sigma_l,
    V_{l+1}(u_1..u_l) = min_{u_{l+1..L}} G_{l+1}(u_1..u_L)

so that minimizing G_2 over (u_2..u_L) *is* the penalty method for the (levels 2..L) multilevel problem, and
the top is an ordinary bilevel problem: min_{u_1} f_1 s.t. (u_2..u_L) in argmin G_2 — handed to `solve` with
any first-order method. V is evaluated by a warm-started inner gradient solve and differentiated by Danskin's
theorem: V(u) = G(u, w~) with w~ the (detached) inner minimizer, so autograd of `ValueFunction` gives
grad_u G(u, w~) without differentiating the inner solve.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch


class ValueFunction:
    """V(head) = min_tail G(head, tail) by ``steps`` gradient steps (warm-started across calls); calling it
    returns G(head, tail~.detach()), whose autograd gradient in ``head`` is Danskin's grad V."""

    def __init__(self, G: Callable, tail0: Sequence[torch.Tensor], *, steps: int = 500, lr: float = 0.1,
                 tol: float = 1e-10):
        self.G, self.steps, self.lr, self.tol = G, steps, lr, tol
        self.tail = [t.detach().clone() for t in tail0]
        self.calls = 0

    def argmin(self, head):
        head = [h.detach() for h in head]
        tail = [t.clone().requires_grad_(True) for t in self.tail]
        for _ in range(self.steps):
            with torch.enable_grad():
                gr = torch.autograd.grad(self.G(*head, *tail), tail, allow_unused=True)
            gr = [torch.zeros_like(t) if q is None else q for q, t in zip(gr, tail)]
            tail = [(t - self.lr * q).detach().requires_grad_(True) for t, q in zip(tail, gr)]
            if sum(float((q ** 2).sum()) for q in gr) ** 0.5 <= self.tol:
                break
        self.tail = [t.detach() for t in tail]
        self.calls += 1
        return self.tail

    def __call__(self, *head):
        return self.G(*head, *self.argmin(head))


def penalize_levels(levels: Sequence[Callable], starts: Sequence[torch.Tensor], sigmas: Sequence[float], *,
                    inner_steps: int = 500, inner_lr: float = 0.1) -> Callable:
    """G_2 for levels [f_1..f_L] (see module docstring): a callable G(u_1, ..., u_L) whose minimization over
    (u_2..u_L) is the nested penalty problem. ``sigmas``: one per penalized pair (L - 2 values)."""
    L = len(levels)
    if L < 3:
        raise ValueError(f"penalize_levels needs at least 3 levels, got {L}; use solve() for two")
    if len(sigmas) != L - 2 or len(starts) != L:
        raise ValueError(f"need {L} starts and {L - 2} sigmas for {L} levels, got {len(starts)} and {len(sigmas)}")
    G = levels[-1]
    for l in range(L - 2, 0, -1):           # build G_l for l = L-1 .. 2 (0-based index l)
        V = ValueFunction(G, starts[l + 1:], steps=inner_steps, lr=inner_lr)

        def G_l(*u, _f=levels[l], _G=G, _V=V, _s=sigmas[l - 1], _l=l):
            return _f(*u) + (_G(*u) - _V(*u[:_l + 1])) / _s
        G = G_l
    return G


def solve_multilevel(levels: Sequence[Callable], starts: Sequence[torch.Tensor], *, sigmas=None,
                     inner_sigma_steps: int = 500, inner_lr: float = 0.1, method: str = "penalty", **kw):
    """Solve an L-level problem (L >= 3) by nesting: the top level calls `solve` with the follower objective
    `penalize_levels` (..). Returns the SolverOutput of the top solve with ``x = (u_1, (u_2, ..., u_L))``.
    ``sigmas`` default to 1e-2 for every inner pair; ``kw`` goes to `solve` (sigma, lr_x, lr_y, ...)."""
    from . import solve
    L = len(levels)
    sigmas = [1e-2] * (L - 2) if sigmas is None else list(sigmas)
    G = penalize_levels(levels, starts, sigmas, inner_steps=inner_sigma_steps, inner_lr=inner_lr)
    f1 = levels[0]
    return solve(lambda x, w: f1(x, *w), lambda x, w: G(x, *w), starts[0], tuple(starts[1:]), method=method, **kw)
