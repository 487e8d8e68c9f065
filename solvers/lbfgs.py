"""L-BFGS(-B) for smooth unconstrained or bound-constrained problems on torch callables.

A thin front over `optdsl.solvers.nlp.minimize(method="l-bfgs-b")` (SciPy's L-BFGS-B with autograd
gradients), kept as its own entry point because it is the default for smooth models without
constraints. Same arguments, statuses and certificates as `nlp.minimize`.
"""
from __future__ import annotations

from .nlp import minimize as _nlp_minimize


def minimize(f, x0, *, lb=None, ub=None, max_iter: int = 1000, tol: float = 1e-8, **kw):
    """Minimize a smooth torch function ``f(x) -> scalar`` subject to optional bounds."""
    return _nlp_minimize(f, x0, lb=lb, ub=ub, method="l-bfgs-b", max_iter=max_iter, tol=tol, **kw)
