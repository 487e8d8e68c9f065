"""Rewrite passes, one per file. `PASSES` is the set dispatch searches over."""
from .base import Pass
from .bounds_to_constraints import BoundsToConstraints
from .convex_to_cvxpy import ConvexToCvxpy
from .maximize_to_minimize import MaximizeToMinimize
from .soft_to_penalty import SoftToPenalty

PASSES: list[Pass] = [MaximizeToMinimize(), SoftToPenalty(), BoundsToConstraints(), ConvexToCvxpy()]


def register_pass(p: Pass) -> None:
    """Add a pass to the search (later capabilities — levels, robust, acyclic — plug in here)."""
    if any(q.name == p.name for q in PASSES):
        raise ValueError(f"a pass named {p.name!r} is already registered")
    PASSES.append(p)


__all__ = ["PASSES", "Pass", "register_pass"]
