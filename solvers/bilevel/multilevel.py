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

Exact for three levels (`stationarity_reduction`, the default ``method="auto"``): when the bottom level is
strongly convex in u_3, u_3*(u_1, u_2) is the unique root of grad_{u_3} f_3 = 0, so the middle level is
min_{u_2, u_3} f_2 s.t. grad_{u_3} f_3(u_1, u_2, u_3) = 0 — a two-level problem with an equality-constrained
follower, which `hyper` solves through the follower's KKT system (no sigma, no bias). Where that does not
apply (a bottom or middle level not strongly convex, more levels) the nested penalties run.
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


def stationarity_reduction(levels: Sequence[Callable]):
    """Three levels [f_1, f_2, f_3] -> (f, g, e) on (x = u_1, w = (u_2, u_3)): f(x, w) = f_1, g(x, w) = f_2 and
    the middle level's equality e(x, w) = grad_{u_3} f_3(u_1, u_2, u_3) = 0 (differentiable: create_graph)."""
    if len(levels) != 3:
        raise ValueError(f"the stationarity reduction takes three levels, got {len(levels)}")
    f1, f2, f3 = levels

    def e(x, w):
        u2, u3 = w
        with torch.enable_grad():
            z = u3 if u3.requires_grad else u3.detach().requires_grad_(True)
            val = f3(x, u2, z)
            (gz,) = torch.autograd.grad(val, z, create_graph=True)
        return gz.reshape(-1)
    return (lambda x, w: f1(x, *w)), (lambda x, w: f2(x, *w)), e


# nested penalties need gentle steps (the tested settings of the three-level toy)
NESTED_DEFAULTS = {"sigma": 0.02, "lr_x": 0.3, "lr_y": 0.01, "inner_steps": 20, "max_iter": 200}


def solve_multilevel(levels: Sequence[Callable], starts: Sequence[torch.Tensor], *, sigmas=None,
                     inner_sigma_steps: int = 500, inner_lr: float = 0.1, method: str = "penalty", **kw):
    """Solve an L-level problem (L >= 3). ``method="auto"``: three levels by `stationarity_reduction` and
    `hyper` (exact), falling back to nested penalties (`NESTED_DEFAULTS`) when a level is not strongly
    convex; ``"hyper"``: the reduction only; any other method: nesting — the top level calls `solve` with the
    follower objective `penalize_levels` (..). Returns the SolverOutput of the top solve with
    ``x = (u_1, (u_2, ..., u_L))``. ``sigmas`` default to 1e-2 for every inner pair; ``kw`` goes to `solve`
    (sigma, lr_x, lr_y, ...)."""
    from . import COMMON, solve
    from .hyper import NotStronglyConvex, hyper
    L = len(levels)
    if method in ("auto", "hyper"):
        extra = sorted(set(kw) - COMMON)
        if extra:
            raise ValueError(f"method={method!r} chooses its own settings; options {extra} belong to "
                             f"method='penalty' (nested penalties)")
        why = "more than three levels"
        if L == 3:
            f, g, e = stationarity_reduction(levels)
            try:
                return hyper(f, g, starts[0], tuple(starts[1:]), lower_equalities=e, **kw)
            except NotStronglyConvex as err:
                if method == "hyper":
                    raise
                why = str(err)
        elif method == "hyper":
            raise ValueError(f"method='hyper' solves three levels exactly; this chain has {L}: use method='penalty'")
        kw = {**NESTED_DEFAULTS, **kw}
        sigmas = sigmas if sigmas is not None else [kw["sigma"]] * (L - 2)
        out = solve_multilevel(levels, starts, sigmas=sigmas, inner_sigma_steps=inner_sigma_steps,
                               inner_lr=1.0, method="penalty", **kw)
        out.extras["fallback"] = why
        return out
    sigmas = [1e-2] * (L - 2) if sigmas is None else list(sigmas)
    G = penalize_levels(levels, starts, sigmas, inner_steps=inner_sigma_steps, inner_lr=inner_lr)
    f1 = levels[0]
    return solve(lambda x, w: f1(x, *w), lambda x, w: G(x, *w), starts[0], tuple(starts[1:]), method=method, **kw)
