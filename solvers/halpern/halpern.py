"""Halpern iteration for fixed points of a nonexpansive map, with adaptive restarts.

    z_{k+1} = β_k z₀ + (1 − β_k) T(z_k),      β_k = 1/(k + 2)

Halpern (1967); for nonexpansive T the last iterate satisfies ‖z_k − T z_k‖ ≤ 2‖z₀ − z*‖/(k + 1) for every
fixed point z* (Lieder 2021, tight), i.e. O(1/k) versus O(1/√k) for Krasnoselskii–Mann averaging, and z_k
converges to the fixed point nearest to the anchor z₀.

Restarts: when the residual has dropped to ``restart_factor`` (default 1/2) times its value at the last
restart, the anchor is reset to the current point and k to 0. Under sharpness / metric subregularity
(bilinear games, matrix games, strongly monotone problems) this turns the O(1/k) rate into a linear one
(cf. Applegate et al. 2023 on restarts for primal–dual methods; refs Part 2.2).

T is an object from `operators` (which also returns the natural residual of the underlying inclusion at no
extra cost) or any callable z -> T(z), for which the fixed-point residual ‖z − T z‖ is used.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from ..common import SolverOutput
from ._core import Run, new_counts, norm, prepare_point

__all__ = ["halpern"]


def _apply(T, z):
    if hasattr(T, "apply"):
        return T.apply(z)
    return T(z), None


def halpern(T, z0, *, restart: bool = True, restart_factor: float = 0.5, max_iter: Optional[int] = 10_000,
            tol: Optional[float] = 1e-6, time_limit: Optional[float] = None, callback: Optional[Callable] = None,
            device=None, dtype=None, counts: Optional[dict] = None) -> SolverOutput:
    """Run (restarted) Halpern iteration on a nonexpansive map T from anchor z0.

    Stops when the residual (the operator's natural residual if T provides one, else ‖z − T z‖) is <= tol.
    Returns a SolverOutput with x = the last checked iterate, certificates ``fixed_point_residual`` and
    (when T provides it) ``operator_residual``; ``extras["restarts"]`` counts anchor resets.
    ``counts`` may be a dict shared with T's counted operator (see `solve_inclusion`).
    """
    if not callable(T) and not hasattr(T, "apply"):
        raise TypeError(f"T must be callable z -> T(z) or an operator object, got {type(T).__name__}")
    if not (0.0 < restart_factor < 1.0):
        raise ValueError(f"restart_factor must lie in (0, 1), got {restart_factor}")
    z = prepare_point(z0, "z0", device, dtype)
    counts = counts if counts is not None else new_counts()
    run = Run("halpern", max_iter, tol, time_limit, callback, counts)
    anchor, j, r_restart, restarts = z, 0, None, 0
    checked = False
    res = fp = float("nan")
    try:
        for k in run.budget:
            Tz, r = _apply(T, z)
            if not isinstance(Tz, torch.Tensor) or Tz.shape != z.shape:
                raise ValueError(f"T(z) must be a tensor of shape {tuple(z.shape)}, got "
                                 f"{tuple(Tz.shape) if isinstance(Tz, torch.Tensor) else type(Tz).__name__}")
            fp = norm(z - Tz)
            res = fp if r is None else r
            checked = True
            if run.check(k, z, res, fixed_point_residual=fp, restarts=restarts):
                break
            if restart and r_restart is not None and res <= restart_factor * r_restart:
                anchor, j, r_restart, restarts = z, 0, res, restarts + 1
            if r_restart is None:
                r_restart = res
            beta = 1.0 / (j + 2)
            z = beta * anchor + (1.0 - beta) * Tz
            j += 1
            checked = False
    except KeyboardInterrupt:
        run.budget.interrupt()
    if not checked:  # the loop ended on a fresh iterate: certify it (one more T evaluation)
        Tz, r = _apply(T, z)
        fp = norm(z - Tz)
        res = fp if r is None else r
    certs = {"fixed_point_residual": fp}
    if hasattr(T, "apply"):
        certs["operator_residual"] = res
    return run.output(z, run.budget.history[-1]["iteration"] + 1 if run.budget.history else 0, certs,
                      extras={"restarts": restarts})
