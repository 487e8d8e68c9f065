"""A quadratic bilevel toy in R² x R² with a closed-form solution (leader x, follower y).

    follower:  y*(x) = argmin_y  g(x, y) = ½ yᵀQy − yᵀ(Bx + c)          ->  y*(x) = Q⁻¹(Bx + c)
    leader:    min_x  f(x, y*(x)),  f(x, y) = ½‖x − a‖² + ½‖y − b‖²

(the two-dimensional form of ``optdsl.solvers.bilevel.testing.quadratic_toy``; Q is positive definite, so the
follower's answer is unique). With M = Q⁻¹B and q = Q⁻¹c, F(x) = ½‖x − a‖² + ½‖Mx + q − b‖² is a strongly
convex quadratic and

    x* = (I + MᵀM)⁻¹ (a + Mᵀ(b − q)),   y* = M x* + q.

Known answer: EXPECTED is this closed form (numpy only, not optdsl), cross-checked below by the vanishing of
the implicit hypergradient ∇F = (x − a) + Mᵀ(y*(x) − b). A plain ``m.solve()`` (method "auto" -> "hyper":
L-BFGS-B on F with the follower solved by Newton) meets it to 1e-6 in a handful of leader iterations.

The value-function penalty (method="penalty", σ multiplies f) solves ψ_σ(x) = min_y f + (g − v)/σ instead;
for this quadratic its minimizer is also closed form (Danskin: ∇ψ_σ = x − a − Bᵀ(y_σ − y*)/σ with
y_σ = (σI + Q)⁻¹(σb + Bx + c)):

    x_σ = (I + BᵀR Q⁻¹B)⁻¹ (a + BᵀR b − BᵀR Q⁻¹c),   R = (σI + Q)⁻¹,

which tends to x* as σ -> 0 with |x_σ − x*| = O(σ); ``penalty_point(σ)`` returns it (used by the tests to
check the penalty method to 1e-6 and its bias separately).
"""
import numpy as np

import optdsl as od

Q = np.array([[2.0, 0.5],
              [0.5, 1.0]])
B = np.array([[1.0, 0.0],
              [0.5, 1.0]])
C = np.array([1.0, -1.0])
A_TARGET = np.array([1.0, 2.0])      # the leader's preferred x
B_TARGET = np.array([2.0, 0.0])      # the leader's preferred y


def build() -> od.Model:
    m = od.Model("bilevel_quadratic_toy")
    x = m.variable(2, name="x")
    follower = m.level("follower")
    y = follower.variable(2, name="y")
    follower.minimize(0.5 * od.quad_form(y, Q) - y @ (B @ x + C))
    m.minimize(0.5 * od.sum_squares(x - A_TARGET) + 0.5 * od.sum_squares(y - B_TARGET))
    return m


_M = np.linalg.solve(Q, B)
_q = np.linalg.solve(Q, C)
X_STAR = np.linalg.solve(np.eye(2) + _M.T @ _M, A_TARGET + _M.T @ (B_TARGET - _q))
Y_STAR = _M @ X_STAR + _q
F_STAR = float(0.5 * np.sum((X_STAR - A_TARGET) ** 2) + 0.5 * np.sum((Y_STAR - B_TARGET) ** 2))
# independent check: the implicit hypergradient vanishes at x*
assert np.allclose((X_STAR - A_TARGET) + _M.T @ (Y_STAR - B_TARGET), 0, atol=1e-12)


def penalty_point(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(x_σ, y_σ): the exact minimizer of the value-function penalty ψ_σ and the follower point y_σ(x_σ)."""
    R = np.linalg.inv(sigma * np.eye(2) + Q)
    Qi = np.linalg.inv(Q)
    x = np.linalg.solve(np.eye(2) + B.T @ R @ Qi @ B, A_TARGET + B.T @ R @ B_TARGET - B.T @ R @ Qi @ C)
    return x, R @ (sigma * B_TARGET + B @ x + C)


# plain m.solve() picks the exact hyper-objective method (the follower is strongly convex): x*, y* to 1e-6
EXPECTED = {"objective": F_STAR, "rtol": 1e-9, "values": {"x": X_STAR, "y": Y_STAR}, "atol_values": 1e-6}
# a non-default method, for comparison: the value-function penalty lands on the closed-form penalty point
# penalty_point(σ), O(σ) ≈ 4e-4 away from x* (tests/test_bilevel_models.py checks both)
PENALTY_OPTIONS = {"method": "penalty", "sigma": 1e-3, "lr_x": 0.3, "lr_y": 0.4, "inner_steps": 10,
                   "max_iter": 400, "tol": 1e-7}
SOLVERS = ["bilevel"]

if __name__ == "__main__":
    print(build().solve())
    print(build().solve(**PENALTY_OPTIONS), "penalty point", penalty_point(PENALTY_OPTIONS["sigma"])[0])
