"""Levels: follower problems inside a model (bilevel and deeper).

``inner = m.level("inner")`` opens a follower whose variables are chosen by ``inner.minimize(...)``
given the leader's (and every outer level's) variables; ``inner.level("deeper")`` nests a third level;
``inner.module(net)`` makes a torch network's parameters (some of) the follower's variables.
Declarations only: passes and backends (``optdsl.solvers.bilevel``) give them meaning.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .errors import ModelError, ShapeError
from .expr.node import Constraint, Expr, Variable, as_expr
from .problem import ConstraintItem


class Level:
    def __init__(self, model, name: str, parent: Optional["Level"] = None):
        self.model, self.name, self.parent = model, name, parent
        self.variables: list[Variable] = []
        self.objective: Optional[Expr] = None
        self.sense = "min"
        self.constraints: list[ConstraintItem] = []
        self.children: list[Level] = []
        self.modules: list[tuple[str, Any]] = []

    @property
    def depth(self) -> int:
        return 1 if self.parent is None else self.parent.depth + 1

    def variable(self, shape: Any = (), **kw) -> Variable:
        v = self.model.variable(shape, **kw)
        v.level = self
        self.variables.append(v)
        return v

    def minimize(self, expr: Any) -> None:
        self._objective(expr, "min")

    def maximize(self, expr: Any) -> None:
        self._objective(expr, "max")

    def _objective(self, expr: Any, sense: str) -> None:
        expr = as_expr(expr)
        if expr.size != 1:
            raise ShapeError(f"the objective of level {self.name!r} must be a scalar; {expr.label()!r} has shape {expr.shape}")
        self.model._check_owned(expr, f"the objective of level {self.name!r}")
        self.objective = expr if expr.shape == () else expr.reshape(())
        self.sense = sense
        self.model._touch()

    def subject_to(self, constraint: Constraint, name: Optional[str] = None, *, penalty: Optional[float] = None,
                   penalty_kind: str = "l1") -> Constraint:
        """A constraint of this follower (it restricts the follower's choice, given the leader's).
        ``penalty=ρ`` makes it soft, as in `Model.subject_to`: the follower pays ρ·violation instead."""
        if not isinstance(constraint, Constraint):
            raise ModelError(f"level {self.name!r}: subject_to expects a constraint built with ==, <= or >=")
        if penalty is not None and not (np.isscalar(penalty) and np.isfinite(penalty) and penalty > 0):
            raise ModelError(f"level {self.name!r}: penalty for constraint {name!r} must be a positive number, got {penalty!r}")
        if penalty_kind not in ("l1", "l2"):
            raise ModelError(f"level {self.name!r}: penalty_kind must be 'l1' or 'l2', got {penalty_kind!r}")
        name = name or f"{self.name}.c{len(self.constraints)}"
        self.model._register_constraint_name(name, constraint, f"level {self.name!r}")
        self.constraints.append(ConstraintItem(name, constraint.kind, constraint.expr,
                                               None if penalty is None else float(penalty), penalty_kind))
        self.model._touch()
        return constraint

    def module(self, net: Any, name: Optional[str] = None) -> Any:
        """Train a torch ``nn.Module`` as this follower (with or without level variables): its trainable
        parameters are the follower's variables, chosen by ``minimize`` given the leader's, and updated in place by
        the solve. Write the terms that run the network with ``od.fn`` closing over `net` (``f.minimize(
        od.fn(lambda lam: loss(net(X), t) + lam * penalty(net))(lam))``); a leader term may read it the same
        way. The bilevel solve runs in float64 by default: give the network that dtype (``net.double()``)."""
        import torch
        label = name or type(net).__name__
        if not isinstance(net, torch.nn.Module):
            raise ModelError(f"level {self.name!r}: module expects a torch.nn.Module, got {type(net).__name__}")
        if not any(p.requires_grad for p in net.parameters()):
            raise ModelError(f"level {self.name!r}: module {label!r} has no trainable parameters")
        if any(net is other for _, other in self.modules):
            raise ModelError(f"level {self.name!r}: module {label!r} is declared twice")
        self.modules.append((label, net))
        self.model._touch()
        return net

    def level(self, name: str) -> "Level":
        child = self.model._new_level(name, parent=self)
        self.children.append(child)
        return child

    def __repr__(self) -> str:
        return f"Level({self.name!r}, depth={self.depth}, variables={[v.name for v in self.variables]})"


@dataclass(frozen=True)
class LevelSpec:
    """A follower as the Problem sees it (immutable snapshot of a `Level`)."""

    name: str
    parent: Optional[str]
    variables: tuple
    objective: Expr
    sense: str
    constraints: tuple = field(default_factory=tuple)
    modules: tuple = field(default_factory=tuple)   # (name, nn.Module): parameters trained as follower variables


def snapshot(levels: list[Level]) -> tuple[LevelSpec, ...]:
    out = []
    for lv in levels:
        if lv.objective is None:
            raise ModelError(f"level {lv.name!r} has no objective: call {lv.name}.minimize(...)")
        if not lv.variables and not lv.modules:
            raise ModelError(f"level {lv.name!r} has no variables of its own (declare some, or {lv.name}.module(net))")
        out.append(LevelSpec(lv.name, None if lv.parent is None else lv.parent.name, tuple(lv.variables),
                             lv.objective, lv.sense, tuple(lv.constraints), tuple(lv.modules)))
    return tuple(out)
