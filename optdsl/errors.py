"""The error hierarchy. Every error names the user's own objects (variables, constraints, shapes)."""

# appended to a NaN/inf status met at the start point (log(0), sqrt'(0) at the default start of 0)
DOMAIN_HINT = "start the variables inside the functions' domain (value=...) or bound them away from its edge (lb=/ub=)"


class OptdslError(Exception):
    """Base class of every error optdsl raises on purpose."""


class ModelError(OptdslError, ValueError):
    """The model is malformed: a foreign variable, a bool constraint, no objective, non-finite data, ..."""


class ShapeError(ModelError):
    """Operands whose shapes do not fit; the message names both operands and shapes."""


class SolverError(OptdslError, ValueError):
    """An unknown solver, or a solver that cannot take this model (the message says why)."""


class NotSolvableError(SolverError):
    """No chain of passes ends in a backend that accepts the model; the message lists every rejection."""
