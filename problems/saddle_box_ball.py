"""A game between a box player and a ball player:

    min_{x ∈ [−1, 1]⁵} max_{‖y‖₂ ≤ 1.5}  L(x, y) = xᵀAy + bᵀx + cᵀy + (μ/2)‖x‖²,   μ = 1.

L is strongly convex in x and linear in y; the box is read from the bounds of x, the ball from the
constraint ``od.norm(y) <= 1.5``.

Known answer (cvxpy, written directly): the inner maximum is the support function of the ball,
max_{‖y‖ ≤ r} (Aᵀx + c)ᵀy = r‖Aᵀx + c‖₂, so the value of the game is the optimum of the convex problem

    min_{−1 ≤ x ≤ 1}  r‖Aᵀx + c‖₂ + bᵀx + (μ/2)‖x‖²,

solved with cvxpy (Clarabel; x* then polished by Newton steps on the free coordinates and checked
against the KKT conditions). Its minimiser x* is unique (strong convexity); the max player's answer is
y* = r g/‖g‖ with g = Aᵀx* + c ≠ 0 (unique since g ≠ 0), and (x*, y*) is the saddle point (Sion). For this
data three of the five box bounds are active at x*.
"""
import cvxpy as cp
import numpy as np

import optdsl as od

NX, NY, R, MU = 5, 4, 1.5, 1.0
_rng = np.random.default_rng(7)
A = _rng.standard_normal((NX, NY))
B = 2.0 * _rng.standard_normal(NX)
C = _rng.standard_normal(NY)


def build() -> od.Model:
    m = od.Model("box_ball_game")
    x = m.variable(NX, lb=-1, ub=1, name="x")
    y = m.variable(NY, name="y")
    m.subject_to(od.norm(y) <= R, name="ball")
    m.saddle(x @ A @ y + B @ x + C @ y + 0.5 * MU * od.sum_squares(x), min_vars=[x], max_vars=[y])
    return m


_x = cp.Variable(NX)
_p = cp.Problem(cp.Minimize(R * cp.norm(A.T @ _x + C, 2) + B @ _x + 0.5 * MU * cp.sum_squares(_x)),
                [_x >= -1, _x <= 1])
_p.solve(solver=cp.CLARABEL)
assert _p.status == cp.OPTIMAL, _p.status


def _grad(x):
    g = A.T @ x + C
    return R * A @ g / np.linalg.norm(g) + B + MU * x, g


# polish the interior-point answer (accurate in x only to ~sqrt(tol)): keep cvxpy's active bounds and take
# Newton steps on the free coordinates of the smooth objective, then verify the KKT sign conditions
X_STAR = np.clip(_x.value, -1.0, 1.0)
_free = np.abs(X_STAR) < 1 - 1e-6
X_STAR[~_free] = np.sign(X_STAR[~_free])
for _ in range(20):
    _gr, _g = _grad(X_STAR)
    _ng = np.linalg.norm(_g)
    _Af = A[_free]
    _H = R * _Af @ (np.eye(NY) / _ng - np.outer(_g, _g) / _ng ** 3) @ _Af.T + MU * np.eye(_free.sum())
    X_STAR[_free] -= np.linalg.solve(_H, _gr[_free])
_gr, _g = _grad(X_STAR)
assert np.abs(_gr[_free]).max() < 1e-12 and np.all(np.abs(X_STAR[_free]) < 1)
assert np.all(_gr[X_STAR == 1] < 0) and np.all(_gr[X_STAR == -1] > 0)     # active bounds: strict KKT
assert np.linalg.norm(_g) > 1e-3
Y_STAR = R * _g / np.linalg.norm(_g)
VALUE = float(R * np.linalg.norm(_g) + B @ X_STAR + 0.5 * MU * X_STAR @ X_STAR)
assert abs(VALUE - _p.value) < 1e-7 * max(1.0, abs(VALUE))
# the saddle value at (x*, y*) equals the convex problem's optimum
assert abs(float(X_STAR @ A @ Y_STAR + B @ X_STAR + C @ Y_STAR + 0.5 * MU * X_STAR @ X_STAR) - VALUE) < 1e-12

EXPECTED = {"objective": VALUE, "rtol": 1e-6, "values": {"x": X_STAR, "y": Y_STAR}, "status": "OPTIMAL"}
SOLVERS = ["halpern"]

if __name__ == "__main__":
    print(build().solve())
