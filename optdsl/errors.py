"""The error hierarchy. Every error names the user's own objects (variables, constraints, shapes)."""


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
