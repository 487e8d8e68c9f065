"""Adversarial cutting planes: agreement with exact counterparts, a convex-in-u case, robust least squares."""
import cvxpy as cp
import numpy as np
import pytest
import torch

from optdsl.solvers.common import Status
from optdsl.solvers.robust import Box, Ellipsoid, robust_linear
from optdsl.solvers.robust.cutting_plane import cutting_plane, maximize_over_set
from optdsl.solvers.robust.testing import robust_least_squares, robust_lp_2d


def _lp_parts(kind):
    U, a, P, b, opt = robust_lp_2d(kind)

    def master(scen):
        x = cp.Variable(2, nonneg=True)
        return cp.Problem(cp.Maximize(cp.sum(x)), [(a + P @ u) @ x <= b for u in scen]), x

    def g(x, u):
        return (torch.as_tensor(a) + torch.as_tensor(P) @ u) @ torch.as_tensor(x) - b
    return U, a, P, b, opt, master, g


@pytest.mark.parametrize("kind", ["box", "ellipsoid", "budget", "polyhedron"])
@pytest.mark.parametrize("oracle", ["pga", "exact"])
def test_affine_case_matches_exact_counterpart(kind, oracle):
    U, a, P, b, opt, master, g = _lp_parts(kind)
    x = cp.Variable(2, nonneg=True)
    exact = cp.Problem(cp.Maximize(cp.sum(x)), robust_linear(a, P, b, x, U))
    exact.solve(solver="CLARABEL")
    out = cutting_plane(master, g, U, oracle=oracle, g_cvx=lambda xv, u: (a + P @ u) @ xv - b,
                        tol=1e-7, max_iter=100)
    assert out.status is (Status.OPTIMAL if oracle == "exact" else Status.LOCALLY_OPTIMAL)
    assert out.objective == pytest.approx(exact.value, abs=1e-5)
    assert out.certificates["feasibility"] <= 1e-7
    viol = [h["violation"] for h in out.history]
    assert viol[-1] <= 1e-7 and (len(viol) == 1 or viol[0] > 1e-3)  # the first master point was not robust


def test_convex_in_u_vertices_oracle_vs_closed_form():
    # max 1ᵀx s.t. ‖(1 + u)∘x‖² ≤ 1 ∀ |u_i| ≤ 0.3, x ≥ 0: worst u = +0.3, optimum √3 / 1.3.
    U = Box(np.zeros(3), radius=0.3)

    def master(scen):
        x = cp.Variable(3, nonneg=True)
        return cp.Problem(cp.Maximize(cp.sum(x)),
                          [cp.sum_squares(cp.multiply(1 + u, x)) <= 1 for u in scen]), x

    def g(x, u):
        return torch.sum(((1 + u) * torch.as_tensor(x)) ** 2) - 1
    for oracle in ["vertices", "pga"]:
        out = cutting_plane(master, g, U, oracle=oracle, tol=1e-7)
        assert out.objective == pytest.approx(np.sqrt(3) / 1.3, abs=1e-6), oracle
        np.testing.assert_allclose(out.extras["worst_case_u"], 0.3, atol=1e-6)


def test_robust_least_squares_against_el_ghaoui_lebret():
    """min_x max_{‖Δ‖_F ≤ ρ} ‖(A+Δ)x − b‖ = min ‖Ax − b‖ + ρ‖x‖ (worst Δ is rank one)."""
    A, b, rho = robust_least_squares(m=8, n=3, rho=0.5, seed=0)
    m, n = A.shape
    x = cp.Variable(n)
    ref = cp.Problem(cp.Minimize(cp.norm(A @ x - b) + rho * cp.norm(x)))
    ref.solve(solver="CLARABEL")
    U = Ellipsoid(np.zeros(m * n), rho=rho)

    def master(scen):
        z, t = cp.Variable(n + 1), None
        t = z[n]
        cons = [cp.norm((A + u.reshape(m, n)) @ z[:n] - b) <= t for u in scen]
        return cp.Problem(cp.Minimize(t), cons), z

    def g(z, u):
        zt = torch.as_tensor(z)
        return torch.linalg.norm((torch.as_tensor(A) + u.reshape(m, n)) @ zt[:n] - torch.as_tensor(b)) - zt[n]
    out = cutting_plane(master, g, U, oracle="pga", tol=1e-5, max_iter=60, restarts=2, steps=60)
    assert out.objective == pytest.approx(ref.value, rel=2e-4)
    xs = out.x[:n]
    worst = np.linalg.norm(A @ xs - b) + rho * np.linalg.norm(xs)  # closed-form worst case at the returned x
    assert worst <= out.x[n] + 1e-4 and worst == pytest.approx(ref.value, rel=2e-4)


def test_maximize_over_set_finds_global_max_of_concave():
    U = Box(np.array([1.0, -1.0]), radius=[2.0, 0.5])
    target = torch.tensor([2.5, 0.0], dtype=torch.float64)
    u, val, _ = maximize_over_set(lambda u: -torch.sum((u - target) ** 2), U)
    np.testing.assert_allclose(u, [2.5, -0.5], atol=1e-6)
    assert val == pytest.approx(-0.25, abs=1e-9)


def test_statuses_and_bad_input():
    U, a, P, b, opt, master, g = _lp_parts("box")
    out = cutting_plane(master, g, U, oracle="vertices", max_iter=1)
    assert out.status is Status.ITERATION_LIMIT and out.certificates["feasibility"] > 0.1

    def infeasible(scen):
        x = cp.Variable(2)
        return cp.Problem(cp.Minimize(cp.sum(x)), [x >= 1, x <= 0]), x
    assert cutting_plane(infeasible, g, U).status is Status.INFEASIBLE
    assert cutting_plane(master, g, U, callback=lambda info: False).status is Status.INTERRUPTED
    with pytest.raises(ValueError, match="oracle"):
        cutting_plane(master, g, U, oracle="newton")
    with pytest.raises(ValueError, match="g_cvx"):
        cutting_plane(master, g, U, oracle="exact")
    with pytest.raises(TypeError, match="UncertaintySet"):
        cutting_plane(master, g, [0.5, 0.5])
