"""optdsl.solvers: tensor-level optimization backends.

Everything here works on torch tensors and plain Python callables and never imports the modeling layer
(`optdsl.model`, `optdsl.expr`, ...), so any backend can be embedded in another library::

    from optdsl.solvers import common
    from optdsl.solvers.linalg import sor

Shared vocabulary (statuses, the output record, callbacks and budgets) lives in `optdsl.solvers.common`.
"""
from .common import Budget, SolverOutput, Status

__all__ = ["Budget", "SolverOutput", "Status"]
