"""Three nested levels x -> y -> z (scalars): the toy of ``optdsl.solvers.bilevel.testing.three_level_toy``.

    bottom:  z*(x, y) = argmin_z ½(z − y)²                                    -> z* = y
    middle:  y*(x)    = argmin_y ½(y − x)² + ½(z*(x, y) − 1)²                  -> y* = (x + 1)/2
    top:     min_x  ½(x − 2)² + ½(z* − 3)²,   z* = y* = (x + 1)/2

Known answer (closed form, by substitution): F(x) = ½(x − 2)² + ½((x + 1)/2 − 3)², F'(x) = (x − 2) + ((x − 5)/2)/2,
so x* = 13/5 = 2.6, y* = z* = 1.8, F* = ½(0.36) + ½(1.44) = 0.9. A middle level that treated z as fixed
(ignoring that the bottom level answers) would choose y = x and give x* = 2.5: the toy tells the two apart.

A plain ``m.solve()`` reduces the chain to two levels — the bottom level is strongly convex in z, so its
answer is the root of ∂f₃/∂z = z − y = 0, an equality of the middle level — and solves that exactly
("hyper" through the middle level's KKT system): x*, y*, z* to 1e-6. The nested value-function penalties
(method "penalty", σ = 0.02 at both levels) stop O(σ) away: x ≈ 2.594, y ≈ 1.817, z ≈ 1.801 (measured).
"""
import numpy as np

import optdsl as od


def build() -> od.Model:
    m = od.Model("bilevel_three_level")
    x = m.variable(name="x")
    middle = m.level("middle")
    y = middle.variable(name="y")
    bottom = middle.level("bottom")
    z = bottom.variable(name="z")
    bottom.minimize(0.5 * (z - y) ** 2)
    middle.minimize(0.5 * (y - x) ** 2 + 0.5 * (z - 1) ** 2)
    m.minimize(0.5 * (x - 2) ** 2 + 0.5 * (z - 3) ** 2)
    return m


def F(x: float) -> float:
    z = (x + 1) / 2
    return 0.5 * (x - 2) ** 2 + 0.5 * (z - 3) ** 2


X_STAR, Y_STAR, Z_STAR, F_STAR = 2.6, 1.8, 1.8, 0.9
_grid = np.linspace(0, 5, 50001)
assert abs(_grid[int(np.argmin(F(_grid)))] - X_STAR) < 1e-4 and abs(F(X_STAR) - F_STAR) < 1e-12

# plain m.solve(): exact (the bottom level's stationarity z − y = 0 becomes the middle level's equality)
EXPECTED = {"objective": F_STAR, "rtol": 1e-9, "values": {"x": X_STAR, "y": Y_STAR, "z": Z_STAR},
            "atol_values": 1e-6}
# a non-default method: nested value-function penalties (σ = 0.02 at both levels), O(σ) off
PENALTY_OPTIONS = {"method": "penalty", "lr_x": 0.6, "max_iter": 200, "tol": 1e-6}
SOLVERS = ["bilevel"]

if __name__ == "__main__":
    print(build().solve())
