"""Classic (projected) extragradient method — the baseline for the Halpern family.

    z̄_k = P_Z(z_k − ηF(z_k)),    z_{k+1} = P_Z(z_k − ηF(z̄_k))

Korpelevich (1976). Converges for monotone L-Lipschitz F with 0 < η < 1/L; the last iterate has only an
O(1/√k) rate on the natural residual (Gorbunov, Loizou & Gidel 2022), linear under strong monotonicity or for
bilinear games with nonsingular A (rate 1 − Θ(1/κ²)). Default η = 1/(√2·L), which minimises the worst
per-step contraction |1 − iηλ − η²λ²| of the bilinear case over λ ∈ [0, L].
"""
from __future__ import annotations

import math
from typing import Callable, Optional

from ..common import SolverOutput
from ._core import CountedOperator, Run, check_positive, estimate_lipschitz, new_counts, norm, prepare_point
from .operators import natural_residual
from .projections import as_projection

__all__ = ["extragradient"]


def extragradient(F: Callable, z0, *, L: Optional[float] = None, eta: Optional[float] = None, projection=None,
                  adaptive: bool = True, max_iter: Optional[int] = 10_000, tol: Optional[float] = 1e-6,
                  time_limit: Optional[float] = None, callback: Optional[Callable] = None,
                  device=None, dtype=None) -> SolverOutput:
    """Solve 0 ∈ F(z) + N_Z(z) by extragradient from z0.

    ``eta`` defaults to 1/(√2 L) (L estimated at z0 if not given; with ``adaptive`` halved whenever a step
    sees a local Lipschitz ratio above 1/η·0.9). Certificate ``operator_residual`` = ‖z − z̄‖/η at the
    returned point (= ‖F(z)‖ without constraints).
    """
    L = check_positive(L, "L")
    eta = check_positive(eta, "eta")
    P = as_projection(projection)
    z = P(prepare_point(z0, "z0", device, dtype))
    counts = new_counts()
    Fc = CountedOperator(F, counts)
    Fz = Fc(z)
    if eta is None:
        if L is None:
            L = 1.1 * estimate_lipschitz(F, z)
        eta = 1.0 / (math.sqrt(2.0) * L)
    run = Run("extragradient", max_iter, tol, time_limit, callback, counts)
    res, checked = float("nan"), False
    try:
        for k in run.budget:
            zb = P(z - eta * Fz)
            res = natural_residual(z, Fz, eta, P)
            if run.check(k, z, res, eta=eta):
                checked = True
                break
            Fb = Fc(zb)
            if adaptive:
                d = norm(zb - z)
                if d > 0 and eta * norm(Fb - Fz) > 0.9 * d:   # η ≥ 0.9/L_local: shrink and redo
                    eta *= 0.5
                    continue
            z = P(z - eta * Fb)
            Fz = Fc(z)
    except KeyboardInterrupt:
        run.budget.interrupt()
    if not checked:
        res = natural_residual(z, Fz, eta, P)
    iters = run.budget.history[-1]["iteration"] + 1 if run.budget.history else 0
    return run.output(z, iters, {"operator_residual": res}, extras={"eta": eta})
