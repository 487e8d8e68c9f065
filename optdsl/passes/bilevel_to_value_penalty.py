"""Bilevel  ->  value-function penalty (Kwon, Kwon, Wright & Nowak, ICLR 2024).

Source: min_x f(x, y*(x)) with y*(x) ∈ argmin_y g(x, y) (one follower level, no follower constraints).
Target: the single-level penalty problem

    min_{x, y}  σ·f(x, y) + g(x, y) − v(x),      v(x) = min_z g(x, z),

whose stationary points approach the bilevel ones as σ → 0 (this is the solvers' convention: σ multiplies
f, so a small σ is a strong penalty; it is 1/σ in REFERENCES.md). The value function v is never formed:
the first-order method keeps a second follower copy z tracking argmin g(x, ·), so only gradients of f and
g are needed. A schedule σ_k = max(σ_min, σ₀/(k+1)^p) tightens the penalty over the run (option
``sigma_decay`` = p of the ``bilevel`` backend).

The rewrite is a declaration (an extension the bilevel backend reads): with ``method="penalty"`` the
backend runs this penalty; its default ``method="auto"`` first tries the exact hyper-objective method
(``hyper``: the follower solved by Newton, the implicit hypergradient, L-BFGS-B on the leader) and falls back
to this penalty, with σ driven to zero, only when the follower is not strongly convex.
The rewrite changes no variable: values and the follower's multipliers map back as they are. Followers
with constraints (LV-HBA's proximal-Lagrangian form) and chains of three or more levels (nested penalties)
are handled by the backend directly.
"""
from __future__ import annotations

from .base import Pass


class BilevelToValuePenalty(Pass):
    name = "bilevel_to_value_penalty"
    cost = 0.1

    @staticmethod
    def applies(problem) -> bool:
        levels = problem.extensions.get("bilevel") or ()
        return len(levels) == 1 and not levels[0].constraints and not problem.extensions.get("value_penalty")

    def accepts(self, problem, tags):
        return "bilevel" in tags.features and self.applies(problem)

    def apply(self, problem):
        (level,) = problem.extensions["bilevel"]
        spec = {"leader": problem.objective, "follower": level.objective, "level": level.name}
        ext = {**problem.extensions, "value_penalty": spec}
        return problem.with_(extensions=ext, payload={}, applied=problem.applied + (self.name,)), None


PASS = BilevelToValuePenalty()
