"""maximize f(x)  ->  minimize -f(x).

Values map back unchanged; the objective value is negated back. Multipliers are those of the
minimization form (L = -f + λᵀh + μᵀg, μ ≥ 0), which is also CVXPY's convention for Maximize, so a
multiplier is the marginal gain in f per unit relaxation of its constraint.
"""
from __future__ import annotations

from dataclasses import replace

from .base import Pass


class MaximizeToMinimize(Pass):
    name = "maximize_to_minimize"
    normalizing = True
    cost = 0.01

    def accepts(self, problem, tags):
        return "maximize" in tags.features

    def apply(self, problem):
        return problem.with_(objective=-problem.objective, sense="min", payload={},
                             applied=problem.applied + (self.name,)), None

    def invert(self, solution, inverse_data):
        if solution.objective is not None:
            solution = replace(solution, objective=-solution.objective)
        if any("objective" in h for h in solution.history):  # per-iteration objectives: the user's sign too
            solution = replace(solution, history=[{**h, "objective": -h["objective"]} if "objective" in h else h
                                                  for h in solution.history])
        if "mip_bound" in solution.certificates:  # a mixed-integer solver's bound, on the user's objective
            solution.certificates["mip_bound"] = -solution.certificates["mip_bound"]
        return solution
PASS = MaximizeToMinimize()
