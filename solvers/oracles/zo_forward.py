"""Forward gradient ("ZO with a JVP"): an unbiased gradient estimate from forward-mode AD only.

    v ~ N(0, I),   (f(θ), ∇f(θ)ᵀv) = jvp(f, θ, v),   ĝ = (∇f(θ)ᵀv) · v,   E[ĝ] = ∇f(θ)

(Baydin et al., 2022, "Gradients without backpropagation"; a strong baseline in ZO-Bench, Zhang et al.,
ICML 2024). No ε bias, no backward pass; memory is about two inference passes (primal + tangent) plus one
parameter-sized v. Uses ``torch.func.jvp``, so f must be written in differentiable torch ops.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from .zo_noise import derive_seed
from .zo_twopoint import ZOEstimate, ZOEvalError, check_q, direction, to_scalar


def forward_gradient(f: Callable[..., torch.Tensor], params: Sequence[torch.Tensor], *, seed: int, q: int = 1,
                     kind: str = "gaussian", where: str = "") -> ZOEstimate:
    """Directional derivatives of ``f(*params)`` along q seeded directions, as a seed-form ZOEstimate.

    ``f`` takes the parameter tensors as positional arguments (use ``torch.func.functional_call`` for a
    module) and returns a scalar tensor. ``projs[i]`` is the exact ∇fᵀz_i; ``f0`` is f(θ).
    """
    q = check_q(q)
    params = tuple(p.detach() for p in params)
    est = ZOEstimate(seeds=[], projs=[])
    for i in range(q):
        s = derive_seed(seed, i)
        v = tuple(direction(params, s, kind))
        try:
            val, dval = torch.func.jvp(f, params, v)
        except Exception as exc:
            raise ZOEvalError(f"objective raised {type(exc).__name__}: {exc} at {where} (jvp, query {i})") from exc
        est.f0 = to_scalar(val, f"{where} (jvp, query {i})")
        est.projs.append(to_scalar(dval, f"{where} (directional derivative, query {i})"))
        est.seeds.append(s)
        est.n_evals += 1
    return est
