"""The expression IR: leaves, one generic Op node, shape rules and atoms."""
from .atoms import (abs, acyclic, maximum_over, trace_expm, blackbox, concatenate, cos, exp, fn, hstack, log, logsumexp, matmul, max, maximum,
                    mean, min, minimum, norm, norm1, norm_inf, pos, quad_form, relu, reshape, sigmoid, sin,
                    sqrt, square, stack, sum, sum_squares, transpose, vstack)
from .atoms import (cumsum, diag, diff, entr, geo_mean, huber, inv_pos, kl_div, lambda_max, log_det, logistic,
                    matrix_frac, multiply, pnorm, psd, quad_over_lin, rel_entr, trace, between)
from .node import (Constant, Constraint, Expr, Leaf, Op, Parameter, PSDConstraint, StructuralConstraint, Uncertain, Variable,
                   as_expr)

__all__ = ["trace_expm", "acyclic", "maximum_over", "StructuralConstraint", "Uncertain", "Constant", "Constraint", "Expr", "Leaf", "Op", "Parameter", "Variable", "as_expr", "abs",
           "blackbox", "concatenate", "cos", "exp", "fn", "hstack", "log", "logsumexp", "matmul", "max",
           "maximum", "mean", "min", "minimum", "norm", "norm1", "norm_inf", "pos", "quad_form", "relu",
           "reshape", "sigmoid", "sin", "sqrt", "square", "stack", "sum", "sum_squares", "transpose", "vstack"] + [
    "cumsum", "diag", "diff", "entr", "geo_mean", "huber", "inv_pos", "kl_div", "lambda_max", "log_det", "logistic",
    "matrix_frac", "multiply", "pnorm", "psd", "PSDConstraint", "quad_over_lin", "rel_entr", "trace",
    "between"]
