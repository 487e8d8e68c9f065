"""The pass protocol: ``accepts / apply / invert`` (after CVXPY's reductions and MOI's bridges).

Each pass states its source and target form in its docstring, can be tested alone, and maps values
*and* multipliers back in `invert`, so duals are reported on the user's own named constraints.
"""
from __future__ import annotations

from typing import Any

from ..graph import Tags
from ..problem import Problem, RawSolution


class Pass:
    name: str = "pass"
    cost: float = 0.1  # dispatch prefers chains with fewer/cheaper rewrites
    normalizing: bool = False  # a change of form only (max -> min, soft -> penalty), not of structure
    keeps_dcp: bool = False  # the output is DCP-convex exactly when the input is: dispatch carries the verdict over

    def accepts(self, problem: Problem, tags: Tags) -> bool:
        raise NotImplementedError

    def apply(self, problem: Problem) -> tuple[Problem, Any]:
        raise NotImplementedError

    def invert(self, solution: RawSolution, inverse_data: Any) -> RawSolution:
        return solution

    def why_not(self, problem: Problem, tags: Tags) -> str | None:
        """When the pass is relevant to the problem but cannot rewrite it: the reason, for error messages."""
        return None

    def __repr__(self) -> str:
        return self.name
