"""Gallery of robust instances with known or independently checkable answers (data generators only).

* `robust_lp_2d(kind)`: max x₁ + x₂ s.t. (1 + u₁)x₁ + (1 + u₂)x₂ ≤ 2, x ≥ 0 with box/ellipsoid/budget radius 0.5;
  hand-derived optima 4/3, 2/(1 + 0.5/√2) = 1.477592, 1.6 (refs Part 4.1).
* `robust_portfolio(n, seed)`: max_w min_{μ∈E} μᵀw, 1ᵀw = 1, w ≥ 0, E = {μ̄ + P z : ‖z‖₂ ≤ ρ}; counterpart
  μ̄ᵀw − ρ‖Pᵀw‖₂ (Ben-Tal & Nemirovski); for diagonal P the optimum has a water-filling closed form.
* `zeng_zhao_location()`: the robust location–transportation instance of Zeng & Zhao (2013) §5, optimum 33680.
* `random_location(n_fac, n_cust, gamma, seed)`: random two-stage location instances with budget demand sets.
* `robust_least_squares(m, n, rho, seed)`: min_x max_{‖Δ‖₂ ≤ ρ} ‖(A + Δ)x − b‖₂ = ‖Ax − b‖₂ + ρ‖x‖₂
  (El Ghaoui & Lebret, SIAM J. Matrix Anal. Appl. 18, 1997), worst Δ = ρ r xᵀ/(‖r‖‖x‖), r = Ax − b.
"""
from __future__ import annotations

import math

import numpy as np

from .ccg import TwoStageProblem
from .sets import Box, Budget, Ellipsoid, Polyhedron

__all__ = ["robust_lp_2d", "robust_portfolio", "portfolio_closed_form", "zeng_zhao_location",
           "random_location", "robust_least_squares"]


def robust_lp_2d(kind: str, gamma: float = 1.0):
    """(uset, a_bar, P, b, optimum of max x₁ + x₂) for the refs Part 4.1 example.

    ``kind`` is one of box, ellipsoid, budget (with ``gamma``), polyhedron (the box written as Au ≤ b).
    """
    z = np.zeros(2)
    sets = {"box": Box(z, radius=0.5), "ellipsoid": Ellipsoid(z, rho=0.5),
            "budget": Budget(z, radius=0.5, gamma=gamma),
            "polyhedron": Polyhedron(np.vstack([np.eye(2), -np.eye(2)]), 0.5 * np.ones(4))}
    if kind not in sets:
        raise ValueError(f"kind must be one of {sorted(sets)}, got {kind!r}")
    # Budget: x₁ + x₂ + 0.5·(sum of the ⌊Γ⌋ largest |x_j| + frac·next) ≤ 2 at x₁ = x₂ = s/2 → s(1 + 0.25·min(Γ, 2)) = 2
    opt = {"box": 4 / 3, "ellipsoid": 2 / (1 + 0.5 / math.sqrt(2)),
           "budget": 2 / (1 + 0.25 * min(gamma, 2.0)), "polyhedron": 4 / 3}[kind]
    return sets[kind], np.ones(2), np.eye(2), 2.0, opt


def robust_portfolio(n: int = 8, seed: int = 0, rho: float = 1.0):
    """(mu_bar, sigma, uset): returns μ = μ̄ + diag(σ) z, ‖z‖₂ ≤ ρ."""
    rng = np.random.default_rng(seed)
    mu = rng.uniform(0.02, 0.12, n)
    sigma = rng.uniform(0.02, 0.10, n)
    return mu, sigma, Ellipsoid(mu, P=np.diag(sigma), rho=rho)


def portfolio_closed_form(mu, sigma, rho: float, iters: int = 200):
    """max_w μ̄ᵀw − ρ‖σ∘w‖₂ on the simplex, by bisection on the KKT multiplier (independent of cvxpy).

    KKT: μ̄_i − ρσ_i² w_i / s − ν ≤ 0 with equality where w_i > 0, s = ‖σ∘w‖₂, so w_i ∝ (μ̄_i − ν)₊/σ_i²; the
    scale fixes s and ν solves s·Σ(μ̄_i − ν)₊/(ρσ_i²) = 1 with s = ‖(μ̄ − ν)₊/σ‖₂ · s/ρ, i.e. ‖(μ̄−ν)₊/σ‖₂ = ρ
    (when that ν is below max μ̄; otherwise all weight on argmax μ̄ - ρσ).
    """
    mu, sigma = np.asarray(mu, float), np.asarray(sigma, float)

    def wt(nu):
        return np.maximum(mu - nu, 0) / sigma ** 2

    def g(nu):
        return np.linalg.norm(np.maximum(mu - nu, 0) / sigma) - rho

    lo, hi = mu.min() - 10 * rho * sigma.max() - 1.0, mu.max()
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if g(mid) > 0 else (lo, mid)
    w = wt(lo)
    w = w / w.sum()
    return w, float(mu @ w - rho * np.linalg.norm(sigma * w))


def zeng_zhao_location() -> tuple[TwoStageProblem, float]:
    """Zeng & Zhao (2013) §5 location–transportation: x = (open₁..₃ ∈ {0,1}, cap₁..₃), y = shipments; opt 33680."""
    f, a = np.array([400, 414, 326.0]), np.array([18, 25, 20.0])
    C = np.array([[22, 33, 24], [33, 23, 30], [20, 25, 27.0]])
    dbar, g = np.array([206, 274, 220.0]), np.array([40, 40, 40.0])
    U = Polyhedron(np.vstack([np.eye(3), -np.eye(3), [[1, 1, 1], [1, 1, 0]]]),
                   np.r_[np.ones(3), np.zeros(3), 1.8, 1.2])
    return _location(f, a, C, dbar, g, U, cap=800.0, min_total=772.0), 33680.0


def _location(f, a, C, dbar, g, U, cap, min_total):
    nf, nc = C.shape
    n, p = 2 * nf, nf * nc
    # rows 0..nf-1: capacity  −Σ_j y_ij ≥ −z_i ;  rows nf..: demand Σ_i y_ij ≥ d̄_j + g_j u_j
    G = np.zeros((nf + nc, p))
    E = np.zeros((nf + nc, n))
    for i in range(nf):
        G[i, i * nc:(i + 1) * nc] = -1.0
        E[i, nf + i] = 1.0
    for j in range(nc):
        G[nf + j, j::nc] = 1.0
    h = np.r_[np.zeros(nf), dbar]
    M = np.vstack([np.zeros((nf, nc)), -np.diag(g)])
    A = np.vstack([np.hstack([cap * np.eye(nf), -np.eye(nf)]), np.r_[np.zeros(nf), np.ones(nf)][None, :]])
    b = np.r_[np.zeros(nf), min_total]
    return TwoStageProblem(c=np.r_[f, a], d=C.ravel(), G=G, h=h, E=E, M=M, uset=U, A=A, b=b,
                           lb=np.zeros(n), ub=np.r_[np.ones(nf), np.full(nf, cap)],
                           integer=np.r_[np.ones(nf, bool), np.zeros(nf, bool)])


def random_location(n_fac: int, n_cust: int, gamma: float = 2.0, seed: int = 0,
                    integer: bool = True) -> TwoStageProblem:
    """Random location–transportation instance; demand d̄ + ĝ∘z with z in the budget set ‖z‖∞ ≤ 1, ‖z‖₁ ≤ Γ."""
    rng = np.random.default_rng(seed)
    fac, cus = rng.uniform(0, 100, (n_fac, 2)), rng.uniform(0, 100, (n_cust, 2))
    C = np.round(np.linalg.norm(fac[:, None] - cus[None], axis=2) / 2 + 5)
    dbar = np.round(rng.uniform(50, 300, n_cust))
    g = np.round(0.2 * dbar)
    f = np.round(rng.uniform(300, 600, n_fac))
    a = np.round(rng.uniform(15, 30, n_fac))
    cap = float(np.ceil(1.5 * (dbar + g).sum() / max(1, n_fac - 1)))
    U = Budget(np.zeros(n_cust), radius=np.ones(n_cust), gamma=gamma)
    prob = _location(f, a, C, dbar, g, U, cap=cap, min_total=float((dbar + g).sum()))
    if not integer:
        prob.int_idx = np.zeros(0, dtype=int)
    return prob


def robust_least_squares(m: int = 20, n: int = 5, rho: float = 0.5, seed: int = 0):
    """(A, b, rho) for min_x max_{‖Δ‖₂≤ρ} ‖(A + Δ)x − b‖₂ (spectral-norm-bounded Δ)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n))
    b = A @ rng.standard_normal(n) + 0.5 * rng.standard_normal(m)
    return A, b, rho
