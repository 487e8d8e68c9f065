"""Extra-anchored gradient (EAG) and fast extragradient (FEG) for monotone Lipschitz operators.

With anchor z₀, β_k = 1/(k + 2) and step α:

    FEG (Lee & Kim, NeurIPS 2021), α = 1/L:
        z_{k+½} = z_k + β_k(z₀ − z_k) − (1 − β_k) α F(z_k)
        z_{k+1} = z_k + β_k(z₀ − z_k) − α F(z_{k+½})          ‖F(z_k)‖ ≤ 2L‖z₀ − z*‖/k
    EAG-C (Yoon & Ryu, ICML 2021), α = 1/(8L):
        z_{k+½} = z_k + β_k(z₀ − z_k) − α F(z_k)
        z_{k+1} = z_k + β_k(z₀ − z_k) − α F(z_{k+½})          ‖F(z_k)‖² ≤ 260 L²‖z₀ − z*‖²/(k + 1)²

Two F evaluations per iteration and the optimal O(1/k) last-iterate rate on ‖F‖ (plain EG: O(1/√k)).
With a constraint set Z both steps are projected onto Z (the usual constrained extension) and the natural
residual ‖z − P_Z(z − αF(z))‖/α is reported. Optional restarts (anchor reset when the residual halves) as in
`halpern`. When L is not given it is estimated at z₀ and, with ``adaptive=True``, doubled whenever a step
sees a larger local Lipschitz ratio ‖F(z_{k+½}) − F(z_k)‖/‖z_{k+½} − z_k‖ (that step is then redone).
"""
from __future__ import annotations

from typing import Callable, Optional

from ..common import SolverOutput
from ._core import CountedOperator, Run, check_positive, estimate_lipschitz, new_counts, norm, prepare_point
from .operators import natural_residual
from .projections import as_projection

__all__ = ["eag"]

_VARIANTS = ("feg", "eag-c")


def eag(F: Callable, z0, *, L: Optional[float] = None, variant: str = "feg", projection=None,
        restart: bool = True, restart_factor: float = 0.5, adaptive: bool = True,
        max_iter: Optional[int] = 10_000, tol: Optional[float] = 1e-6, time_limit: Optional[float] = None,
        callback: Optional[Callable] = None, device=None, dtype=None) -> SolverOutput:
    """Solve 0 ∈ F(z) + N_Z(z) by FEG (default) or EAG-C from anchor z0.

    F: callable z -> tensor of z's shape, monotone and L-Lipschitz. Returns SolverOutput with
    certificate ``operator_residual`` (natural residual with step α; = ‖F(z)‖ without constraints),
    counts["operator"] and extras ``L`` (the constant finally used) and ``restarts``.
    """
    if variant not in _VARIANTS:
        raise ValueError(f"variant must be one of {_VARIANTS}, got {variant!r}")
    if not (0.0 < restart_factor < 1.0):
        raise ValueError(f"restart_factor must lie in (0, 1), got {restart_factor}")
    L = check_positive(L, "L")
    P = as_projection(projection)
    z = P(prepare_point(z0, "z0", device, dtype))
    counts = new_counts()
    Fc = CountedOperator(F, counts)
    Fz = Fc(z)
    if L is None:
        L = 1.1 * estimate_lipschitz(F, z)
    run = Run(variant, max_iter, tol, time_limit, callback, counts)
    anchor, j, r_restart, restarts = z, 0, None, 0
    res, checked_res = float("nan"), None
    try:
        for k in run.budget:
            alpha = 1.0 / L if variant == "feg" else 1.0 / (8.0 * L)
            res = natural_residual(z, Fz, alpha, P)
            if run.check(k, z, res, L=L, restarts=restarts):
                checked_res = res
                break
            if restart and r_restart is not None and res <= restart_factor * r_restart:
                anchor, j, r_restart, restarts = z, 0, res, restarts + 1
            if r_restart is None:
                r_restart = res
            beta = 1.0 / (j + 2)
            a = z + beta * (anchor - z)
            zh = P(a - ((1.0 - beta) * alpha if variant == "feg" else alpha) * Fz)
            Fh = Fc(zh)
            if adaptive:
                d = norm(zh - z)
                if d > 0 and norm(Fh - Fz) > L * d:   # step was too long for the local Lipschitz constant
                    L = 2.0 * norm(Fh - Fz) / d
                    continue
            z = P(a - alpha * Fh)
            Fz = Fc(z)
            j += 1
    except KeyboardInterrupt:
        run.budget.interrupt()
    alpha = 1.0 / L if variant == "feg" else 1.0 / (8.0 * L)
    if checked_res is None:
        res = natural_residual(z, Fz, alpha, P)
    iters = run.budget.history[-1]["iteration"] + 1 if run.budget.history else 0
    return run.output(z, iters, {"operator_residual": res}, extras={"L": L, "restarts": restarts})
