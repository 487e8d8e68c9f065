"""Bilevel (and multilevel) optimization on tensors: min_x f(x, y*(x)), y*(x) in argmin_y g(x, y).

One functional entry point, `solve(f, g, x0, y0, method=...)`, over these method families (one module each):

* `penalty`    value-function penalty, first-order, stochastic mini-batches, sigma schedule (Kwon et al. 2024)
* `borep`      normalized momentum + lower-variable refinement/periodic updates (Hao, Gong, Liu 2024)
* `lvhba`      constrained lower level h(x, y) <= 0, Hessian-free single loop (Yao et al. 2024)
* `scalebio`   simplex-weighted data reweighting with block-sampled follower (Pan et al. 2024)
* `hyper`      exact: L-BFGS-B on the hyper-objective f(x, y*(x)), Newton follower (`newton_follower`) or KKT
               follower (`kkt_follower`), implicit hypergradient
* `auto`       by structure: hyper for a smooth strongly convex follower (with constraints: small ones), else
               penalty (sigma driven to 0) or lvhba (constrained), penalty for stochastic oracles (`auto` here)
* `implicit`   implicit-differentiation baseline (CG / Neumann on Hessian-vector products); `hypergradient`
* `unrolled`   differentiate through K inner steps (baseline; memory grows with K)
* `zo_outer`   a black-box leader: zeroth-order steps (`optdsl.solvers.zo`) on f(x, y*(x)), the follower solved
               by Newton or SLSQP at each evaluation (`hyper_zo`; not in `solve`'s methods: it takes no gradients)
* `gap`        lower-level optimality gap certificate g(x, y) - min_z g(x, z)
* `multilevel` three levels exactly (stationarity reduction + hyper), more by nesting the penalty
* `testing`    problem generators with known solutions

Variables ``x`` and ``y`` are tensors or tuples of tensors; ``f(x, y)`` and ``g(x, y)`` get them in the same
structure and return scalar tensors (with ``batches``: ``f(x, y, batch)``, ``g(x, y, batch)``).
"""
from __future__ import annotations

from .borep import borep
from .gap import GapResult, lower_level_gap
from .hyper import NotStronglyConvex, hyper
from .implicit import SingularHessian, hypergradient, implicit
from .lvhba import lvhba
from .multilevel import ValueFunction, penalize_levels, solve_multilevel, stationarity_reduction
from .penalty import penalty, sigma_schedule
from .scalebio import scalebio
from .unrolled import unrolled
from .zo_outer import hyper_zo

METHODS = {"penalty": penalty, "borep": borep, "lvhba": lvhba, "scalebio": scalebio, "implicit": implicit,
           "unrolled": unrolled, "hyper": hyper}
# options every method takes; `auto` accepts only these (it picks the method, so it picks the method's settings)
COMMON = frozenset({"proj_x", "proj_y", "batches", "eval_batch", "max_iter", "tol", "time_limit", "callback",
                    "device", "dtype", "certify_gap", "bounds_x", "lower_equalities"})


def solve(f, g, x0, y0, *, method: str = "auto", lower_constraints=None, **options):
    """Solve min_x f(x, y*(x)) with y*(x) in argmin_y {g(x, y) : lower_constraints(x, y) <= 0}.

    ``method``: "auto" (default: chosen by structure, see `auto`) | "hyper" | "penalty" | "borep" | "lvhba" |
    "scalebio" | "implicit" | "unrolled". A method named is the method that runs: ``lower_constraints`` (or
    ``lower_equalities``) need "lvhba", "hyper" or "auto", and any other name raises. Common options: ``proj_x``,
    ``proj_y``, ``batches``, ``eval_batch``, ``max_iter``, ``tol``, ``time_limit``, ``callback``, ``device``,
    ``dtype``; ``bounds_x = (lo, hi)`` (the leader's box, for "hyper"/"auto"); method options: ``lr_x``,
    ``lr_y``, ``inner_steps``, ``sigma`` (penalty), ``period``/``momentum`` (borep),
    ``lower_equalities``/``proj_xy``/``c0`` (lvhba), ``lam0``/``active_blocks`` (scalebio), ``linear_solver``
    (implicit). Returns a `SolverOutput` with ``x = (x, y)`` and certificates ``stationarity`` and
    ``lower_level_gap``.
    """
    if not isinstance(method, str) or (method not in METHODS and method != "auto"):
        raise ValueError(f"method must be 'auto' or one of {sorted(METHODS)}, got {method!r}")
    if method == "auto":
        return auto(f, g, x0, y0, lower_constraints=lower_constraints, **options)
    constrained = lower_constraints is not None or options.get("lower_equalities") is not None
    if method == "hyper":
        return hyper(f, g, x0, y0, lower_constraints=lower_constraints, **options)
    if constrained and method != "lvhba":
        raise ValueError(f"method={method!r} handles followers without constraints; this follower has "
                         f"constraints (lower_constraints/lower_equalities): use method='lvhba', 'hyper' or 'auto'")
    if method == "lvhba":
        if not constrained:
            raise ValueError("method='lvhba' needs lower_constraints (h(x, y) <= 0) or lower_equalities")
        return lvhba(f, g, x0, y0, lower_constraints=lower_constraints, **options)
    if "bounds_x" in options:
        bounds = options.pop("bounds_x")
        if method == "hyper":
            options["bounds_x"] = bounds
    return METHODS[method](f, g, x0, y0, **options)


def auto(f, g, x0, y0, *, lower_constraints=None, **options):
    """The method chosen by structure; the result's ``extras["method"]`` names what ran.

    * follower constraints: `hyper` through the follower's KKT system when the follower is small and its
      Hessian positive definite on the active constraints, else LV-HBA;
    * stochastic oracles (``batches``) or follower bounds (``proj_y``): the penalty method with sigma driven
      to zero (`penalty` with its scale-free defaults);
    * otherwise the exact hyper-objective method (`hyper`); when the follower turns out not to be strongly
      convex (`NotStronglyConvex`) the penalty method takes over from the start point.
    """
    extra = sorted(set(options) - COMMON)
    if extra:
        raise ValueError(f"method='auto' chooses the method and its settings; options {extra} belong to a "
                         f"named method: pass method=... with them")
    bounds = options.pop("bounds_x", None)
    if lower_constraints is not None or options.get("lower_equalities") is not None:
        if options.get("batches") is None and options.get("proj_y") is None:
            try:   # a small smooth follower: exact, through its KKT system
                return hyper(f, g, x0, y0, bounds_x=bounds, lower_constraints=lower_constraints, **options)
            except (NotStronglyConvex, ValueError) as e:
                why = str(e)
        else:
            why = "stochastic oracles or follower bounds"
        out = lvhba(f, g, x0, y0, lower_constraints=lower_constraints, **options)
        out.extras["fallback"] = why
        return out
    if options.get("batches") is None and options.get("proj_y") is None:
        try:
            return hyper(f, g, x0, y0, bounds_x=bounds, **options)
        except NotStronglyConvex as e:
            out = penalty(f, g, x0, y0, **options)
            out.extras["fallback"] = str(e)
            return out
    return penalty(f, g, x0, y0, **options)


__all__ = ["solve", "auto", "hyper", "NotStronglyConvex", "penalty", "sigma_schedule", "borep", "lvhba", "scalebio",
           "implicit", "hypergradient",
           "unrolled", "lower_level_gap", "GapResult", "SingularHessian", "ValueFunction", "penalize_levels",
           "solve_multilevel", "stationarity_reduction", "METHODS", "hyper_zo"]
