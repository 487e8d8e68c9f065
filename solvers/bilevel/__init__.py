"""Bilevel (and multilevel) optimization on tensors: min_x f(x, y*(x)), y*(x) in argmin_y g(x, y).

One functional entry point, `solve(f, g, x0, y0, method=...)`, over these method families (one module each):

* `penalty`    value-function penalty, first-order, stochastic mini-batches, sigma schedule (Kwon et al. 2024)
* `borep`      normalized momentum + lower-variable refinement/periodic updates (Hao, Gong, Liu 2024)
* `lvhba`      constrained lower level h(x, y) <= 0, Hessian-free single loop (Yao et al. 2024)
* `scalebio`   simplex-weighted data reweighting with block-sampled follower (Pan et al. 2024)
* `implicit`   implicit-differentiation baseline (CG / Neumann on Hessian-vector products); `hypergradient`
* `unrolled`   differentiate through K inner steps (baseline; memory grows with K)
* `gap`        lower-level optimality gap certificate g(x, y) - min_z g(x, z)
* `multilevel` three or more levels by nesting the penalty (`solve_multilevel`)
* `testing`    problem generators with known solutions

Variables ``x`` and ``y`` are tensors or tuples of tensors; ``f(x, y)`` and ``g(x, y)`` get them in the same
structure and return scalar tensors (with ``batches``: ``f(x, y, batch)``, ``g(x, y, batch)``).
"""
from __future__ import annotations

from .borep import borep
from .gap import GapResult, lower_level_gap
from .implicit import SingularHessian, hypergradient, implicit
from .lvhba import lvhba
from .multilevel import ValueFunction, penalize_levels, solve_multilevel
from .penalty import penalty, sigma_schedule
from .scalebio import scalebio
from .unrolled import unrolled

METHODS = {"penalty": penalty, "borep": borep, "lvhba": lvhba, "scalebio": scalebio, "implicit": implicit,
           "unrolled": unrolled}


def solve(f, g, x0, y0, *, method: str = "penalty", lower_constraints=None, **options):
    """Solve min_x f(x, y*(x)) with y*(x) in argmin_y {g(x, y) : lower_constraints(x, y) <= 0}.

    ``method``: "penalty" (default) | "borep" | "lvhba" | "scalebio" | "implicit" | "unrolled".
    ``lower_constraints`` needs method "lvhba" (it is chosen automatically when method is left "penalty").
    Common options: ``lr_x``, ``lr_y``, ``inner_steps``, ``proj_x``, ``proj_y``, ``batches``, ``eval_batch``,
    ``max_iter``, ``tol``, ``time_limit``, ``callback``, ``device``, ``dtype``; method options: ``sigma``
    (penalty), ``period``/``momentum`` (borep), ``lower_equalities``/``proj_xy``/``c0`` (lvhba),
    ``lam0``/``active_blocks`` (scalebio), ``linear_solver`` (implicit). Returns a `SolverOutput` with
    ``x = (x, y)`` and certificates ``stationarity`` and ``lower_level_gap``.
    """
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if lower_constraints is not None or "lower_equalities" in options:
        if method not in ("penalty", "lvhba"):
            raise ValueError(f"method={method!r} does not handle lower_constraints; use method='lvhba'")
        return lvhba(f, g, x0, y0, lower_constraints=lower_constraints, **options)
    if method == "lvhba":
        raise ValueError("method='lvhba' needs lower_constraints (h(x, y) <= 0) or lower_equalities")
    return METHODS[method](f, g, x0, y0, **options)


__all__ = ["solve", "penalty", "sigma_schedule", "borep", "lvhba", "scalebio", "implicit", "hypergradient",
           "unrolled", "lower_level_gap", "GapResult", "SingularHessian", "ValueFunction", "penalize_levels",
           "solve_multilevel", "METHODS"]
