"""Bilevel backends: known solutions, closed forms, agreement between methods (penalty, implicit, unrolled)."""
import math

import pytest
import torch

from optdsl.solvers import Status
from optdsl.solvers import bilevel as B
from optdsl.solvers.bilevel import testing as T

D = torch.float64


@pytest.fixture(scope="module")
def ridge():
    return T.ridge_tuning()


def test_ridge_hypergradient_cg_and_neumann_match_closed_form(ridge):
    t = 0.3
    w = torch.as_tensor(ridge.extras["w_of"](t))
    x = torch.tensor([t], dtype=D)
    exact = ridge.extras["dF"](t)
    hg, info = B.hypergradient(ridge.f, ridge.g, x, w, linear_solver="cg")
    assert abs(float(hg) - exact) <= 1e-8 * max(1.0, abs(exact))
    L = float(torch.linalg.eigvalsh(torch.as_tensor(ridge.extras["AtA"])).max()) + math.exp(t)
    hg2, info2 = B.hypergradient(ridge.f, ridge.g, x, w, linear_solver="neumann", max_linear_iter=50, eta=1 / L)
    assert abs(float(hg2) - exact) <= 1e-4 * max(1.0, abs(exact))
    assert info2["hvp"] >= 50
    # finite differences of the closed-form F agree with both
    F = ridge.extras["F"]
    assert abs((F(t + 1e-6) - F(t - 1e-6)) / 2e-6 - float(hg)) < 1e-5 * max(1.0, abs(exact))


def test_penalty_bias_matches_closed_form_and_is_linear_in_sigma():
    P = T.quadratic_toy()
    errs = []
    for s in (1.0, 0.1, 0.01):
        r = B.solve(P.f, P.g, P.x0, P.y0, method="penalty", sigma=s, lr_x=0.5, lr_y=0.9, inner_steps=10,
                    max_iter=3000, tol=1e-11)
        x, y = float(r.x[0]), float(r.x[1])
        assert r.status == Status.LOCALLY_OPTIMAL, r.message
        assert abs(x - P.extras["x_sigma"](s)) < 1e-8 and abs(y - P.extras["y_sigma"](s)) < 1e-8
        errs.append(abs(x - 1.5))
    # |x_sigma - x*| = sigma / (2 (2 + sigma)): ratio ~10 per decade of sigma
    assert 9.0 < errs[1] / errs[2] < 10.5 and errs[0] / errs[1] > 6.5


@pytest.mark.parametrize("method", ["penalty", "implicit", "unrolled"])
def test_scalar_ridge_lambda_star(method):
    P = T.ridge_scalar()
    kw = {"sigma": 1e-3} if method == "penalty" else {}
    r = B.solve(P.f, P.g, P.x0, P.y0, method=method, lr_x=2.0, lr_y=0.3, max_iter=2000, tol=1e-9, **kw)
    assert r.status.is_success, r.message
    assert abs(math.exp(float(r.x[0])) - 2 / 3) < 1e-4
    assert r.certificates["lower_level_gap"] < 1e-8
    assert r.certificates["stationarity"] <= 1e-9


def test_ridge_tuning_penalty_and_implicit_reach_golden_section_minimizer(ridge):
    L = float(torch.linalg.eigvalsh(torch.as_tensor(ridge.extras["AtA"])).max())
    t_star = float(ridge.x_star)
    out = {}
    for method, kw in (("implicit", {}), ("penalty", {"sigma": 1e-4})):
        r = B.solve(ridge.f, ridge.g, ridge.x0, ridge.y0, method=method, lr_x=0.1, lr_y=1 / L, inner_steps=10,
                    max_iter=300, tol=1e-8, **kw)
        assert r.status.is_success, r.message
        out[method] = float(r.x[0])
        assert abs(ridge.extras["F"](out[method]) - ridge.F_star) < 1e-6 * ridge.F_star
        assert r.certificates["lower_level_gap"] < 1e-6
    assert abs(out["implicit"] - t_star) < 1e-5
    assert abs(out["penalty"] - t_star) < 1e-3          # O(sigma) bias
    # the implicit hypergradient at the returned point is (near) zero in closed form
    assert abs(ridge.extras["dF"](out["implicit"])) < 1e-6


def test_nonsingleton_lower_level_penalty_works_implicit_reports_singular_hessian():
    P = T.nonsingleton_toy()
    # y2 enters only sigma*f, so its inner contraction is (1 - lr_y sigma): sigma = 1e-2 keeps this short
    r = B.solve(P.f, P.g, P.x0, P.y0, method="penalty", sigma=1e-2, lr_x=0.3, lr_y=0.9, inner_steps=5, max_iter=400, tol=1e-8)
    assert abs(float(r.x[0]) - 0.5) < 1e-2
    assert torch.allclose(r.x[1], P.y_star, atol=1e-2)
    assert 0 <= r.certificates["lower_level_gap"] < 1e-4     # O(sigma^2) for this toy
    r2 = B.solve(P.f, P.g, P.x0, P.y0, method="implicit", lr_x=0.3, lr_y=0.5, max_iter=100)
    assert r2.status == Status.NUMERICAL_ERROR
    assert "singular or indefinite lower-level Hessian" in r2.message and "iteration 0" in r2.message


def test_lower_level_gap_closed_form():
    P = T.quadratic_toy()
    res = B.lower_level_gap(P.g, torch.tensor([1.0], dtype=D), torch.tensor([3.0], dtype=D))
    assert abs(res.gap - 2.0) < 1e-10 and abs(float(res.z) - 1.0) < 1e-8
    # constrained: min (z-2)^2/2 s.t. x + z <= 2 at x = 1 -> z = 1, g = 0.5; gap at y = 0 is 2 - 0.5
    C = T.constrained_toy()
    res = B.lower_level_gap(C.g, torch.tensor([1.0], dtype=D), torch.tensor([0.0], dtype=D),
                            lower_constraints=C.lower_constraints)
    assert abs(res.gap - 1.5) < 1e-5 and abs(float(res.z) - 1.0) < 1e-5


def test_implicit_with_bandit_tuned_sor_matches_cg(ridge):
    """SOR as the linear solver of implicit differentiation: the follower-Hessian systems of successive leader
    steps form a sequence, on which one SequenceSolver learns its relaxation factor."""
    L = float(torch.linalg.eigvalsh(torch.as_tensor(ridge.extras["AtA"])).max())
    t = 0.3
    w = torch.as_tensor(ridge.extras["w_of"](t))
    from optdsl.solvers.linalg.bandit import SequenceSolver
    spd = SequenceSolver(tuner="smooth", tol=1e-12).as_spd_solver()
    hg, info = B.hypergradient(ridge.f, ridge.g, torch.tensor([t], dtype=D), w, linear_solver=spd)
    exact = ridge.extras["dF"](t)
    assert abs(float(hg) - exact) <= 1e-7 * max(1.0, abs(exact)) and "omega" in info
    runs = {ls: B.solve(ridge.f, ridge.g, ridge.x0, ridge.y0, method="implicit", linear_solver=ls, lr_x=0.1,
                        lr_y=1 / L, inner_steps=10, max_iter=300, tol=1e-8) for ls in ("cg", "sor")}
    assert runs["sor"].status.is_success, runs["sor"].message
    assert float(runs["sor"].x[0]) == pytest.approx(float(runs["cg"].x[0]), abs=1e-6)
    assert float(runs["sor"].x[0]) == pytest.approx(float(ridge.x_star), abs=1e-4)
