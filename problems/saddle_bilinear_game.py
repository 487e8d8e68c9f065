"""An unconstrained bilinear game  min_x max_y  L(x, y) = xᵀAy + bᵀx + cᵀy,  x, y ∈ R³.

The saddle point is chosen first and the linear terms derived from it: b = −A y*, c = −Aᵀx*, so that
F(z) = (∇ₓL, −∇ᵧL) = (A y + b, −Aᵀx − c) vanishes exactly at (x*, y*). A is nonsingular, hence the saddle point
is unique (F(z) = 0 is a nonsingular linear system), and the value is

    L(x*, y*) = x*ᵀAy* − y*ᵀAᵀx* − x*ᵀAy* = −x*ᵀA y*.

Known answer: EXPECTED is this closed form (numpy only, not optdsl); cross-checked below by solving the
stationarity system F(z) = 0 with np.linalg.solve.

``build(box=R)`` adds the non-binding bounds |x|, |y| ≤ R (the saddle point lies well inside), which makes both
players' sets bounded so that the duality gap max_y L(x̄, y) − min_x L(x, ȳ) is finite; without bounds the
exact gap of an unconstrained bilinear game is +inf at every point other than the saddle point itself.
"""
import numpy as np

import optdsl as od

A = np.array([[2.0, 1.0, 0.0],
              [-1.0, 1.5, 0.5],
              [0.5, 0.0, 1.0]])
X_STAR = np.array([1.0, -0.5, 0.25])
Y_STAR = np.array([-0.75, 0.5, 1.0])
B = -A @ Y_STAR
C = -A.T @ X_STAR


def build(box: float | None = None) -> od.Model:
    m = od.Model("bilinear_game")
    lb, ub = (None, None) if box is None else (-box, box)
    x = m.variable(3, lb=lb, ub=ub, name="x")
    y = m.variable(3, lb=lb, ub=ub, name="y")
    m.saddle(x @ A @ y + B @ x + C @ y, min_vars=[x], max_vars=[y])
    return m


# independent check: F(z) = M z + q = 0 with M = [[0, A], [−Aᵀ, 0]], q = (b, −c)
_M = np.block([[np.zeros((3, 3)), A], [-A.T, np.zeros((3, 3))]])
_z = np.linalg.solve(_M, -np.r_[B, -C])
assert np.allclose(_z, np.r_[X_STAR, Y_STAR], atol=1e-12)
_value = float(-X_STAR @ A @ Y_STAR)
assert abs(_value - float(X_STAR @ A @ Y_STAR + B @ X_STAR + C @ Y_STAR)) < 1e-12

EXPECTED = {"objective": _value, "rtol": 1e-6, "values": {"x": X_STAR, "y": Y_STAR}, "status": "OPTIMAL"}
SOLVERS = ["halpern"]

if __name__ == "__main__":
    print(build().solve())
