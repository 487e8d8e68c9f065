"""Robust counterparts vs hand-derived optima, vertex enumeration and sampled / worst-case checks."""
import cvxpy as cp
import numpy as np
import pytest

from optdsl.solvers.robust import (Box, Budget, Ellipsoid, Polyhedron, robust_counterpart,
                                     robust_counterpart_rows, robust_linear)
from optdsl.solvers.robust.testing import portfolio_closed_form, robust_lp_2d, robust_portfolio


def _solve_2d(U, a, P, b):
    x = cp.Variable(2, nonneg=True)
    cons = robust_linear(a, P, b, x, U)
    cp.Problem(cp.Maximize(cp.sum(x)), cons).solve(solver="CLARABEL")
    return x.value


@pytest.mark.parametrize("kind, expected", [("box", 1.333333), ("ellipsoid", 1.477592), ("budget", 1.6),
                                            ("polyhedron", 1.333333)])
def test_refs_numbers_sampled_and_worst_case(kind, expected):
    U, a, P, b, opt = robust_lp_2d(kind)
    assert opt == pytest.approx(expected, abs=1e-6)
    x = _solve_2d(U, a, P, b)
    assert x.sum() == pytest.approx(expected, abs=1e-6)
    lhs = (a + U.sample(4000, seed=5) @ P.T) @ x
    assert lhs.max() <= b + 1e-7                       # robust feasible for sampled u ...
    u_star = U.worst_case(P.T @ x)
    assert (a + P @ u_star) @ x == pytest.approx(b, abs=1e-6)   # ... and tight at the worst case
    if kind == "box":
        np.testing.assert_allclose(u_star, [0.5, 0.5])
    if kind == "ellipsoid":
        np.testing.assert_allclose(u_star, 0.5 * x / np.linalg.norm(x), atol=1e-7)


def test_budget_gamma_sweep():
    vals = []
    for gamma in [0, 0.5, 1, 1.5, 2, 3]:
        U, a, P, b, opt = robust_lp_2d("budget", gamma=gamma)
        vals.append(_solve_2d(U, a, P, b).sum())
        assert vals[-1] == pytest.approx(opt, abs=1e-6)
    assert vals[0] == pytest.approx(2.0, abs=1e-6) and vals[4] == pytest.approx(4 / 3, abs=1e-6)
    assert all(v1 >= v2 - 1e-9 for v1, v2 in zip(vals, vals[1:]))


@pytest.mark.parametrize("name", ["box", "budget", "polyhedron"])
def test_general_form_matches_vertex_enumeration(name):
    """g(x) + Q(x)ᵀu ≤ h(x) with Q(x) = Bx + q0 affine: counterpart LP == LP imposing every vertex."""
    rng = np.random.default_rng(7)
    n, k = 4, 3
    U = {"box": Box(rng.uniform(-0.2, 0.2, k), radius=rng.uniform(0.1, 0.5, k)),
         "budget": Budget(np.zeros(k), P=0.4 * rng.standard_normal((k, k)), gamma=1.3),
         "polyhedron": Polyhedron(np.vstack([np.eye(k), -np.eye(k), np.ones((1, k))]),
                                  np.r_[0.5 * np.ones(2 * k), 0.6])}[name]
    B, q0, cvec = rng.standard_normal((k, n)), rng.standard_normal(k), rng.uniform(1, 2, n)

    def solve(extra):
        x = cp.Variable(n)
        cons = [x >= -1, x <= 1] + extra(x)
        pr = cp.Problem(cp.Maximize(cvec @ x), cons)
        pr.solve(solver="CLARABEL")
        return pr.value, x.value

    val, x = solve(lambda x: robust_counterpart(cp.sum(x), B @ x + q0, 1.0 + 0.1 * x[0], U))
    brute, _ = solve(lambda x: [cp.sum(x) + (B @ x + q0) @ u <= 1.0 + 0.1 * x[0] for u in U.vertices()])
    assert val == pytest.approx(brute, abs=1e-6)
    assert x.sum() + U.support_value(B @ x + q0) <= 1.0 + 0.1 * x[0] + 1e-6


def test_robust_portfolio_against_closed_form():
    mu, sigma, U = robust_portfolio(n=8, seed=0, rho=1.0)
    w = cp.Variable(8, nonneg=True)
    t = cp.Variable()
    # max t s.t. μᵀw ≥ t ∀μ ∈ U  <=>  (−μ)ᵀw + t ≤ 0 ∀μ
    cons = [cp.sum(w) == 1] + robust_counterpart(t, -w, 0.0, U)
    cp.Problem(cp.Maximize(t), cons).solve(solver="CLARABEL")
    w_ref, v_ref = portfolio_closed_form(mu, sigma, 1.0)
    assert t.value == pytest.approx(v_ref, abs=1e-6)
    np.testing.assert_allclose(w.value, w_ref, atol=1e-4)
    assert t.value > (mu - 1.0 * sigma).max()  # diversification beats the best single asset's worst case


def test_counterpart_bad_input():
    U = Box(np.zeros(2))
    x = cp.Variable(3)
    with pytest.raises(ValueError, match=r"P must have shape \(3, 2\)"):
        robust_linear(np.ones(3), np.ones((3, 3)), 1.0, x, U)
    with pytest.raises(ValueError, match=r"a_bar must have shape \(3,\)"):
        robust_linear(np.ones(2), np.ones((3, 2)), 1.0, x, U)
    with pytest.raises(ValueError, match="shape"):
        robust_counterpart(0.0, x, 1.0, U)
    with pytest.raises(ValueError, match="affine"):
        robust_counterpart(0.0, cp.square(x[:2]), 1.0, U)
    with pytest.raises(TypeError, match="UncertaintySet"):
        robust_counterpart(0.0, x[:2], 1.0, "box")
    with pytest.raises(ValueError, match="scalar"):
        robust_counterpart(x, x[:2], 1.0, U)


@pytest.mark.parametrize("name", ["box", "ellipsoid", "budget", "polyhedron"])
def test_rows_version_equals_one_constraint_per_row(name):
    """(Ā + [P_i u]_i) x ≤ b row-wise: vectorised counterpart == loop of single-row counterparts."""
    rng = np.random.default_rng(11)
    m, n, k = 5, 4, 3
    U = {"box": Box(np.zeros(k), radius=0.3 * np.ones(k)), "ellipsoid": Ellipsoid(np.zeros(k), rho=0.3),
         "budget": Budget(np.zeros(k), radius=0.3 * np.ones(k), gamma=1.5),
         "polyhedron": Polyhedron(np.vstack([np.eye(k), -np.eye(k)]), 0.3 * np.ones(2 * k))}[name]
    Abar, Ps, b = rng.uniform(0.5, 1.5, (m, n)), rng.standard_normal((m, n, k)), np.ones(m)
    vals = []
    for rows in (True, False):
        x = cp.Variable(n, nonneg=True)
        if rows:
            Q = cp.vstack([Ps[i].T @ x for i in range(m)])
            cons = robust_counterpart_rows(Abar @ x, Q, b, U)
        else:
            cons = [c for i in range(m) for c in robust_linear(Abar[i], Ps[i], b[i], x, U)]
        cp.Problem(cp.Maximize(cp.sum(x)), cons).solve(solver="CLARABEL")
        vals.append(x.value.sum())
        worst = max(Abar[i] @ x.value + U.support_value(Ps[i].T @ x.value) - b[i] for i in range(m))
        assert worst <= 1e-6
    assert vals[0] == pytest.approx(vals[1], abs=1e-6)
