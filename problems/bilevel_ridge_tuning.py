"""Ridge regularization tuned on a validation split (leader t = log λ, follower w = the ridge weights).

    follower:  w*(t) = argmin_w  ½‖A_tr w − b_tr‖² + ½ eᵗ‖w‖²  = (A_trᵀA_tr + eᵗI)⁻¹ A_trᵀb_tr
    leader:    min_t  F(t) = ½‖A_val w*(t) − b_val‖²

The data are those of ``optdsl.solvers.bilevel.testing.ridge_tuning(seed=0)`` (40 training and 40 validation
rows, d = 10, the same numpy recipe, regenerated here). F and its hypergradient are closed form:

    F'(t) = −λ (A_valᵀ r)ᵀ (A_trᵀA_tr + λI)⁻¹ w*(t),   λ = eᵗ,  r = A_val w*(t) − b_val.

Known answer: EXPECTED is computed below with numpy/scipy only (not optdsl): a fine grid over t ∈ [−8, 8]
(step 0.01) brackets the minimizer, a bounded scalar search refines it, and F'(t*) ≈ 0 is checked. Result:
t* ≈ 1.55417 (λ* ≈ 4.731), F* ≈ 7.13278.

A plain ``m.solve()`` (method "auto" -> "hyper") meets t* to 1e-6. The penalty method (σ = 1e-3) stops at the minimizer t_σ of ψ_σ, O(σ) away: for a quadratic follower
ψ_σ is closed form too (``penalty_value``), t_σ ≈ 1.55357, |t_σ − t*| ≈ 6e-4.
"""
import math

import numpy as np
from scipy.optimize import minimize_scalar

import optdsl as od

N_TRAIN, N_VAL, D, NOISE = 40, 40, 10, 0.5
_rng = np.random.default_rng(0)
_w_true = _rng.normal(size=D)
A_TR, A_VAL = _rng.normal(size=(N_TRAIN, D)), _rng.normal(size=(N_VAL, D))
B_TR = A_TR @ _w_true + NOISE * _rng.normal(size=N_TRAIN) * 3
B_VAL = A_VAL @ _w_true + NOISE * _rng.normal(size=N_VAL)
_AtA, _Atb = A_TR.T @ A_TR, A_TR.T @ B_TR


def build() -> od.Model:
    m = od.Model("bilevel_ridge_tuning")
    t = m.variable(name="t")                   # log of the regularization weight
    fit = m.level("fit")
    w = fit.variable(D, name="w")
    fit.minimize(0.5 * od.sum_squares(A_TR @ w - B_TR) + 0.5 * od.exp(t) * od.sum_squares(w))
    m.minimize(0.5 * od.sum_squares(A_VAL @ w - B_VAL))
    return m


def w_of(t: float) -> np.ndarray:
    return np.linalg.solve(_AtA + math.exp(t) * np.eye(D), _Atb)


def F(t: float) -> float:
    r = A_VAL @ w_of(t) - B_VAL
    return 0.5 * float(r @ r)


def dF(t: float) -> float:
    lam, w = math.exp(t), w_of(t)
    r = A_VAL @ w - B_VAL
    return -lam * float((A_VAL.T @ r) @ np.linalg.solve(_AtA + lam * np.eye(D), w))


def penalty_value(t: float, sigma: float) -> float:
    """ψ_σ(t) = min_w f + (g − v)/σ in closed form (w_σ = argmin σf + g is a linear solve)."""
    lam = math.exp(t)
    g = lambda w: 0.5 * float(np.sum((A_TR @ w - B_TR) ** 2)) + 0.5 * lam * float(w @ w)  # noqa: E731
    ws = np.linalg.solve(sigma * A_VAL.T @ A_VAL + _AtA + lam * np.eye(D), sigma * A_VAL.T @ B_VAL + _Atb)
    return 0.5 * float(np.sum((A_VAL @ ws - B_VAL) ** 2)) + (g(ws) - g(w_of(t))) / sigma


def _argmin(fun) -> float:
    grid = np.arange(-8.0, 8.0 + 1e-9, 0.01)
    t0 = grid[int(np.argmin([fun(t) for t in grid]))]
    return float(minimize_scalar(fun, bounds=(t0 - 0.01, t0 + 0.01), method="bounded",
                                 options={"xatol": 1e-10}).x)


T_STAR = _argmin(F)
F_STAR = F(T_STAR)
assert abs(dF(T_STAR)) < 1e-6 and -7.9 < T_STAR < 7.9   # an interior stationary point of F

# plain m.solve(): the exact hyper-objective method (the follower is strongly convex): t* and w* to 1e-6
EXPECTED = {"objective": F_STAR, "rtol": 1e-9, "values": {"t": T_STAR, "w": w_of(T_STAR)}, "atol_values": 1e-6}
# a non-default method, for comparison: the value-function penalty stops at t_σ (|t_σ − t*| ≈ 6e-4)
PENALTY_OPTIONS = {"method": "penalty", "sigma": 1e-3, "lr_x": 0.3, "lr_y": 0.01, "inner_steps": 10,
                   "max_iter": 300, "tol": 1e-6}
SOLVERS = ["bilevel"]

if __name__ == "__main__":
    print(build().solve())
