"""optdsl: declarative optimization models in Python, compiled to torch/cvxpy backends.

    import optdsl as od
    m = od.Model("demo")
    x = m.variable(3, lb=0, name="x")
    m.minimize(od.sum_squares(x - 1))
    m.subject_to(x.sum() == 1, name="budget")
    res = m.solve()
"""
from .errors import ModelError, NotSolvableError, OptdslError, ShapeError, SolverError
from .expr import (Constant, Constraint, Expr, Parameter, Uncertain, Variable, abs, acyclic, maximum_over, trace_expm, blackbox, concatenate, cos, exp, fn,
                   hstack, log, logsumexp, matmul, max, maximum, mean, min, minimum, norm, norm1, norm_inf, pos,
                   quad_form, relu, reshape, sigmoid, sin, sqrt, square, stack, sum, sum_squares, transpose,
                   vstack)
from .expr import (cumsum, diag, diff, entr, geo_mean, huber, inv_pos, kl_div, lambda_max, log_det, logistic,
                   matrix_frac, multiply, pnorm, psd, quad_over_lin, rel_entr, trace)
from .dag import sem_loss
from .model import Model, explain
from .solvers.robust.sets import Box, Budget, Ellipsoid, Polyhedron
from .result import PrimalStatus, Result, TerminationStatus

__version__ = "0.1.0"

__all__ = [
    "Model", "Result", "TerminationStatus", "PrimalStatus", "explain",
    "OptdslError", "ModelError", "ShapeError", "SolverError", "NotSolvableError",
    "Expr", "Variable", "Parameter", "Constant", "Constraint", "Uncertain", "acyclic", "maximum_over", "trace_expm",
    "Box", "Ellipsoid", "Budget", "Polyhedron", "sem_loss",
    "abs", "blackbox", "concatenate", "cos", "exp", "fn", "hstack", "log", "logsumexp", "matmul", "max", "maximum",
    "mean", "min", "minimum", "norm", "norm1", "norm_inf", "pos", "quad_form", "relu", "reshape", "sigmoid", "sin",
    "sqrt", "square", "stack", "sum", "sum_squares", "transpose", "vstack",
    "cumsum", "diag", "diff", "entr", "geo_mean", "huber", "inv_pos", "kl_div", "lambda_max", "log_det", "logistic",
    "matrix_frac", "multiply", "pnorm", "psd", "quad_over_lin", "rel_entr", "trace",
]
