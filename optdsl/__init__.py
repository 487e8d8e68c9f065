"""optdsl: declarative optimization models in Python, compiled to torch/cvxpy backends.

    import optdsl as od
    m = od.Model("demo")
    x = m.variable(3, lb=0, name="x")
    m.minimize(od.sum_squares(x - 1))
    m.subject_to(x.sum() == 1, name="budget")
    res = m.solve()

Names are loaded on first use (PEP 562 module ``__getattr__``): ``import optdsl`` and ``optdsl --help`` do not
pay for torch, cvxpy, sympy or scipy until a model needs them. To export a new name, add it to ``_EXPORTS``
under the submodule that defines it; ``od.<name>``, ``from optdsl import <name>`` and ``__all__`` follow.
"""
from __future__ import annotations

import importlib

from .errors import ModelError, NotSolvableError, OptdslError, ShapeError, SolverError

__version__ = "0.1.0"

# submodule (relative to this package) -> the public names it provides
_EXPORTS: dict[str, tuple[str, ...]] = {
    ".model": ("Model", "explain"),
    ".result": ("Result", "TerminationStatus", "PrimalStatus"),
    ".expr": (
        "Expr", "Variable", "Parameter", "Constant", "Constraint", "Uncertain",
        "acyclic", "maximum_over", "trace_expm",
        "abs", "blackbox", "concatenate", "cos", "exp", "fn", "hstack", "log", "logsumexp", "matmul", "max",
        "maximum", "mean", "min", "minimum", "norm", "norm1", "norm_inf", "pos", "quad_form", "relu", "reshape",
        "sigmoid", "sin", "sqrt", "square", "stack", "sum", "sum_squares", "transpose", "vstack",
        "cumsum", "diag", "diff", "entr", "geo_mean", "huber", "inv_pos", "kl_div", "lambda_max", "log_det",
        "logistic", "matrix_frac", "multiply", "pnorm", "psd", "quad_over_lin", "rel_entr", "trace", "between",
    ),
    ".dag": ("sem_loss", "forbid", "require", "tiers"),
    ".solvers.robust.sets": ("Box", "Ellipsoid", "Budget", "Polyhedron"),
}
_ERRORS = ("OptdslError", "ModelError", "ShapeError", "SolverError", "NotSolvableError")
_SOURCE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [*_ERRORS, *_SOURCE]


def __getattr__(name: str):
    module = _SOURCE.get(name)
    if module is None:
        raise AttributeError(f"module 'optdsl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SOURCE))
