"""Deterministic robust counterparts of constraints affine in the uncertainty.

A constraint g(x) + Q(x)ᵀu ≤ h(x) for all u ∈ U, with Q affine in x, holds iff

    g(x) + σ_U(Q(x)) ≤ h(x),        σ_U(v) = max_{u∈U} vᵀu,

and the special case (ā + P u)ᵀx ≤ b ∀u∈U has Q(x) = Pᵀx, g = āᵀx. With the sets of `sets.py`:
for U = {c + R z : z ∈ Z}: box → āᵀx + cᵀPᵀx + ‖RᵀPᵀx‖₁ ≤ b (an LP after cvxpy's ℓ₁ epigraph),
ellipsoid → āᵀx + cᵀPᵀx + ρ‖RᵀPᵀx‖₂ ≤ b (a second-order cone),
budget → an LP with the Bertsimas–Sim dual variables, polyhedron {Du ≤ d} → ∃λ ≥ 0: Dᵀλ = Q(x), dᵀλ + g ≤ h.
References: Ben-Tal, El Ghaoui & Nemirovski, *Robust Optimization* (2009), ch. 1-2; Bertsimas & Sim,
"The price of robustness", Oper. Res. 52 (2004). An uncertain objective min max_u f(x, u) with f affine in u is
the same rule applied to the epigraph, or `worst_case_expression` put directly in the objective.
"""
from __future__ import annotations

import numpy as np

from ..lazy import lazy_module
from .sets import UncertaintySet

cp = lazy_module("cvxpy")   # imported on first use: ~0.7 s that models without a convex step skip

__all__ = ["robust_counterpart", "robust_counterpart_rows", "robust_linear", "worst_case_expression"]


def _check_set(uset) -> None:
    if not isinstance(uset, UncertaintySet):
        raise TypeError(f"uset must be an optdsl.solvers.robust.sets UncertaintySet (Box, Ellipsoid, Budget, "
                        f"Polyhedron), got {type(uset).__name__}")


def _scalar(name: str, e):
    e = e if isinstance(e, cp.Expression) else cp.Constant(np.asarray(e, dtype=float))
    if e.size != 1:
        raise ValueError(f"{name} must be a scalar expression, got shape {e.shape}")
    return cp.reshape(e, (), order="F") if e.shape != () else e


def worst_case_expression(g, Q, uset: UncertaintySet):
    """max_{u∈U} g + Qᵀu as (cvxpy expression, extra constraints); convex in x when g is convex, Q affine.

    ``Q`` is a cvxpy expression (or numpy vector) of shape (uset.dim,). The extra constraints (dual variables
    of the budget/polyhedron support function) must be added to the problem wherever the expression is used;
    the expression may only be used where it is minimised / bounded above.
    """
    _check_set(uset)
    g = _scalar("g", g)
    if isinstance(Q, cp.Expression) and not Q.is_affine():
        raise ValueError("Q(x) must be affine in the decision variables (got a non-affine cvxpy expression)")
    sigma, cons = uset.support(Q)
    return g + sigma, cons


def robust_counterpart_rows(g, Q, h, uset: UncertaintySet) -> list:
    """Row-wise counterpart of g_i(x) + Q_i(x)ᵀu ≤ h_i(x) ∀u ∈ U, i = 1..m (each row has its own worst case).

    ``Q`` is a (m, uset.dim) cvxpy expression affine in x (or numpy matrix); ``g`` and ``h`` are (m,)
    expressions or scalars. One vectorised constraint (first element) plus auxiliary constraints; this is
    what a lowering of A(u) x ≤ b with many rows should call (constant compile cost in m).
    """
    _check_set(uset)
    if isinstance(Q, cp.Expression) and not Q.is_affine():
        raise ValueError("Q(x) must be affine in the decision variables (got a non-affine cvxpy expression)")
    sigma, cons = uset.support_rows(Q)
    m = sigma.shape[0]
    g = g if isinstance(g, cp.Expression) else cp.Constant(np.asarray(g, dtype=float))
    h = h if isinstance(h, cp.Expression) else cp.Constant(np.asarray(h, dtype=float))
    for name, e in (("g", g), ("h", h)):
        if e.shape not in ((), (m,)):
            raise ValueError(f"{name} must be a scalar or have shape ({m},) (rows of Q), got {e.shape}")
    return [g + sigma <= h] + cons


def robust_counterpart(g, Q, h, uset: UncertaintySet) -> list:
    """cvxpy constraints equivalent to g(x) + Q(x)ᵀu ≤ h(x) for every u ∈ U.

    Args:
        g: scalar cvxpy expression convex in x (or a number).
        Q: cvxpy expression affine in x (or numpy vector) of shape (uset.dim,): the coefficient of u.
        h: scalar cvxpy expression concave in x (or a number).
        uset: the uncertainty set.
    Returns:
        A list whose FIRST element is the robust constraint itself (its dual value is the multiplier of the
        user's constraint), followed by auxiliary constraints (dual variables of the support function).
    """
    expr, cons = worst_case_expression(g, Q, uset)
    return [expr <= _scalar("h", h)] + cons


def robust_linear(a_bar, P, b, x: cp.Expression, uset: UncertaintySet) -> list:
    """Counterpart of (ā + P u)ᵀx ≤ b for all u ∈ U, i.e. āᵀx + σ_U(Pᵀx) ≤ b.

    Args:
        a_bar: nominal coefficients, shape (n,), n = x.size.
        P: (n, uset.dim) matrix mapping the uncertainty into the coefficients (None means identity, needing
           uset.dim == n).
        b: right-hand side (number or scalar cvxpy expression).
        x: cvxpy vector of shape (n,).
    """
    _check_set(uset)
    if not isinstance(x, cp.Expression) or x.ndim != 1:
        raise TypeError(f"x must be a 1-D cvxpy expression, got {type(x).__name__} "
                        f"with shape {getattr(x, 'shape', None)}")
    n = x.shape[0]
    a_bar = np.array(a_bar, dtype=float, copy=True)
    if a_bar.shape != (n,):
        raise ValueError(f"a_bar must have shape ({n},) to match x, got {a_bar.shape}")
    P = np.eye(n) if P is None else np.array(P, dtype=float, copy=True)
    if P.shape != (n, uset.dim):
        raise ValueError(f"P must have shape ({n}, {uset.dim}) = (len(x), uset.dim), got {P.shape}")
    return robust_counterpart(a_bar @ x, P.T @ x, b, uset)
