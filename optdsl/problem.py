"""`Problem`: the normalized form passes rewrite and backends consume, and `RawSolution`, what flows back.

A Problem is immutable in spirit: a pass returns a new one (`Problem.with_`) plus the data it
needs to map a solution back (`invert`). Constraints are stored normalized, ``expr (== | <=) 0``, each
under the user's name, so multipliers can be reported by name after inversion.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Optional

import numpy as np

from .expr.node import Expr, Variable
from .solvers.common import Status


@dataclass(frozen=True)
class ConstraintItem:
    name: str
    kind: str                      # "eq" | "ineq"
    expr: Expr                     # expr == 0  or  expr <= 0
    penalty: Optional[float] = None
    penalty_kind: str = "l1"       # soft constraints: "l1" (exact penalty) or "l2" (quadratic)

    @property
    def soft(self) -> bool:
        return self.penalty is not None


@dataclass(frozen=True)
class Problem:
    objective: Expr
    sense: str = "min"                                   # "min" | "max"
    constraints: tuple[ConstraintItem, ...] = ()
    variables: tuple[Variable, ...] = ()
    bounds: bool = True                                  # variable bounds still to be honoured by the backend
    payload: dict = field(default_factory=dict)          # what passes attach (e.g. a cvxpy problem)
    extensions: dict = field(default_factory=dict)       # declared structure: "bilevel", "minmax", "robust", ...
    applied: tuple[str, ...] = ()                        # names of the passes applied so far

    def with_(self, **changes: Any) -> "Problem":
        """A copy with `changes` (`dataclasses.replace`, without its per-field Python loop through __init__: a
        pass runs this for every problem dispatch walks)."""
        unknown = changes.keys() - _PROBLEM_FIELDS
        if unknown:
            raise TypeError(f"Problem has no field {sorted(unknown)[0]!r}")
        new = object.__new__(type(self))
        d = self.__dict__
        new.__dict__.update({f: changes[f] if f in changes else d[f] for f in _PROBLEM_FIELDS})
        return new

    @property
    def hard_constraints(self) -> tuple[ConstraintItem, ...]:
        return tuple(c for c in self.constraints if not c.soft)

    def has_bounds(self) -> bool:
        return self.bounds and any(v.lb is not None or v.ub is not None for v in self.variables)


_PROBLEM_FIELDS = frozenset(f.name for f in fields(Problem))


@dataclass
class RawSolution:
    """A backend's answer in terms of the Problem it was given; passes invert it step by step."""

    status: Status
    values: dict[Variable, np.ndarray] = field(default_factory=dict)
    duals: dict[str, np.ndarray] = field(default_factory=dict)
    objective: Optional[float] = None
    iterations: int = 0
    message: str = ""
    certificates: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
