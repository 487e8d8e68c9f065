"""Halpern / EAG / extragradient on problems with known answers (refs Part 2.5)."""
import numpy as np
import pytest
import torch

from optdsl.solvers.common import Status
from optdsl.solvers.halpern import (Ball, Box, ForwardBackward, LinearResolvent, Simplex, bilinear_gap_fn, eag,
                                    halpern, solve_inclusion, solve_saddle)
from optdsl.solvers.halpern.testing import (bilinear_game, matching_pennies, matrix_game, matrix_game_lp,
                                            rock_paper_scissors)

D64 = torch.float64


@pytest.fixture(scope="module")
def game():
    return bilinear_game(20, kappa=10.0, seed=0)


@pytest.mark.parametrize("method,kw", [("halpern", {}), ("halpern", {"operator": "resolvent"}),
                                       ("eag", {}), ("eag", {"variant": "eag-c"}), ("eg", {})])
def test_bilinear_residual_1e6(game, method, kw):
    out = solve_inclusion(game.F, torch.zeros(40, dtype=D64), method=method, tol=1e-6, max_iter=50_000, **kw)
    assert out.status == Status.OPTIMAL
    tol = out.extras["tol_residual"]                                  # tol × L (relative tolerance), L ≈ 1 here
    assert 1e-6 <= tol <= 1.2e-6 and out.certificates["operator_residual"] <= tol
    assert float(game.F(out.x).norm()) <= tol * (1 + 1e-9)           # the certificate is the true ‖F‖
    assert float((out.x - game.z_star).norm()) <= tol * 10 * 1.01    # ‖z − z*‖ ≤ ‖F‖/σ_min, σ_min = 1/κ
    assert out.counts["operator"] > 0 and len(out.history) == out.iterations


def test_lieder_bound_exact_resolvent(game):
    """‖z_k − T z_k‖ ≤ 2‖z₀ − z*‖/(k + 1) at every k for T = (I + ηM)⁻¹ without restarts (Lieder 2021)."""
    z0 = torch.zeros(40, dtype=D64)
    T = LinearResolvent(game.M, game.q, eta=1.0)
    out = halpern(T, z0, restart=False, max_iter=300, tol=0.0)
    d0 = float((z0 - game.z_star).norm())
    fp = np.array([h["fixed_point_residual"] for h in out.history])
    k = np.array([h["iteration"] for h in out.history])
    assert len(fp) == 300 and (fp <= 2 * d0 / (k + 1) + 1e-12).all()
    assert fp[-1] < 0.05 * fp[0]


def test_restarts_accelerate(game):
    z0 = torch.zeros(40, dtype=D64)
    T = LinearResolvent(game.M, game.q, eta=10.0)
    plain = halpern(T, z0, restart=False, max_iter=400, tol=1e-8)
    rest = halpern(T, z0, restart=True, max_iter=400, tol=1e-8)
    assert rest.status == Status.OPTIMAL and rest.extras["restarts"] >= 5 and rest.iterations < 100
    assert plain.status == Status.ITERATION_LIMIT and plain.certificates["operator_residual"] > 1e-3


def test_nearest_fixed_point_singular():
    """Rank-deficient A: solutions ker(Aᵀ) × ker(A); Halpern converges to the projection of z₀ onto it."""
    rng = np.random.default_rng(3)
    U, _, Vt = np.linalg.svd(rng.standard_normal((8, 8)))
    s = np.r_[np.linspace(1, 0.3, 5), 0, 0, 0]
    A = torch.tensor(U @ np.diag(s) @ Vt)
    M = torch.cat([torch.cat([torch.zeros(8, 8, dtype=D64), A], 1), torch.cat([-A.T, torch.zeros(8, 8, dtype=D64)], 1)])
    z0 = torch.tensor(rng.standard_normal(16))
    out = halpern(LinearResolvent(M, eta=10.0), z0, restart=False, max_iter=2000, tol=0.0)
    Nx, Ny = torch.tensor(U[:, 5:]), torch.tensor(Vt[5:].T)        # bases of ker(Aᵀ) and ker(A)
    target = torch.cat([Nx @ (Nx.T @ z0[:8]), Ny @ (Ny.T @ z0[8:])])
    # O(1/k) approach to the projection of z0 (measured 4.5/k here); any other solution is ≥ 0.5 away
    assert float((out.x - target).norm()) < 3e-3
    assert out.certificates["fixed_point_residual"] < 3e-3


def test_cocoercive_forward_backward_bound():
    """F = Qz − q (Q PSD): Halpern on T = I − (2/L)F gives ‖F(z_k)‖ ≤ L‖z₀ − z*‖/(k+1) at every k."""
    rng = np.random.default_rng(4)
    B = rng.standard_normal((10, 10))
    Q = torch.tensor(B @ B.T / 10)
    q = torch.tensor(rng.standard_normal(10))
    Lq = float(torch.linalg.eigvalsh(Q).max())
    zs = torch.linalg.solve(Q, q)
    z0 = torch.zeros(10, dtype=D64)
    out = halpern(ForwardBackward(lambda z: Q @ z - q, 2.0 / Lq), z0, restart=False, max_iter=500, tol=0.0)
    res = np.array([h["residual"] for h in out.history])
    k = np.arange(len(res))
    assert (res <= Lq * float((z0 - zs).norm()) / (k + 1) + 1e-12).all()


def test_feg_rate_bound(game):
    """FEG without restarts: ‖F(z_k)‖ ≤ 2L‖z₀ − z*‖/k (Lee & Kim 2021), L = ‖A‖ = 1."""
    z0 = torch.zeros(40, dtype=D64)
    out = eag(game.F, z0, L=1.0, restart=False, adaptive=False, max_iter=500, tol=0.0)
    res = np.array([h["residual"] for h in out.history])[1:]
    k = np.arange(1, len(res) + 1)
    assert (res <= 2 * float(game.z_star.norm()) / k + 1e-12).all()


@pytest.mark.parametrize("method", ["halpern", "eag"])
def test_matrix_game_vs_lp(method):
    A = matrix_game(20, 25, seed=1)
    val, _, _ = matrix_game_lp(A)
    x0, y0 = torch.full((20,), 1 / 20, dtype=D64), torch.full((25,), 1 / 25, dtype=D64)
    out = solve_saddle(lambda x, y: x @ A @ y, x0, y0, method=method, project_x=Simplex(), project_y=Simplex(),
                       gap_fn=bilinear_gap_fn(A, Simplex(), Simplex()), tol=1e-8, max_iter=60_000)
    x, y = out.x
    assert out.status == Status.OPTIMAL
    assert out.certificates["operator_residual"] <= 1e-6
    assert abs(out.objective - val) <= 1e-6
    assert 0 <= out.certificates["duality_gap"] <= 1e-6
    assert abs(float(x.sum()) - 1) < 1e-12 and float(x.min()) >= 0 and float(y.min()) >= 0


@pytest.mark.parametrize("A", [rock_paper_scissors(), matching_pennies()])
def test_classic_games_uniform(A):
    m = A.shape[0]
    x0 = torch.tensor([1.0] + [0.0] * (m - 1), dtype=D64)
    out = solve_saddle(lambda x, y: x @ A @ y, x0, x0.clone(), project_x=Simplex(), project_y=Simplex(),
                       gap_fn=bilinear_gap_fn(A, Simplex(), Simplex()), tol=1e-9)
    x, y = out.x
    assert torch.allclose(x, torch.full((m,), 1 / m, dtype=D64), atol=1e-8)
    assert torch.allclose(y, torch.full((m,), 1 / m, dtype=D64), atol=1e-8)
    assert abs(out.objective) < 1e-9 and out.certificates["duality_gap"] < 1e-8


def test_gap_stopping_and_box_ball_game():
    """min over a box, max over a ball of xᵀAy + bᵀx: gap-based stop and agreement with cvxpy."""
    import cvxpy as cp
    rng = np.random.default_rng(5)
    A, b = rng.standard_normal((6, 5)), rng.standard_normal(6)
    # max_{‖y‖≤1} xᵀAy = ‖Aᵀx‖ → min_{x∈[-1,1]} ‖Aᵀx‖ + bᵀx
    xv = cp.Variable(6)
    ref = cp.Problem(cp.Minimize(cp.norm(A.T @ xv) + b @ xv), [xv >= -1, xv <= 1]).solve(solver=cp.CLARABEL)
    At, bt = torch.tensor(A), torch.tensor(b)
    out = solve_saddle(lambda x, y: x @ At @ y + bt @ x, torch.zeros(6, dtype=D64), torch.zeros(5, dtype=D64),
                       method="eag", project_x=Box(-1, 1), project_y=Ball(1.0),
                       gap_fn=bilinear_gap_fn(At, Box(-1, 1), Ball(1.0), b=bt), gap_tol=1e-7, tol=0.0)
    assert out.status == Status.OPTIMAL and "duality gap" in out.message
    assert out.certificates["duality_gap"] <= 1e-7
    assert abs(out.objective - ref) < 1e-5


def test_float32_and_device_argument(game):
    out = solve_inclusion(game.F, torch.zeros(40), method="eag", tol=1e-4, dtype="float64", device="cpu")
    assert out.x.dtype == torch.float64 and out.status == Status.OPTIMAL
    F32 = lambda z: game.F(z.double()).float()  # noqa: E731
    out32 = solve_inclusion(F32, torch.zeros(40), method="halpern", L=1.0, tol=1e-4)
    assert out32.x.dtype == torch.float32 and out32.certificates["operator_residual"] <= 1e-4


def test_resolvent_picard_path(game):
    """ηL < 1: the resolvent's inner loop is a Picard contraction; still reaches 1e-6."""
    out = solve_inclusion(game.F, torch.zeros(40, dtype=D64), operator="resolvent", L=1.0, eta=0.5, tol=1e-6)
    assert out.status == Status.OPTIMAL and float(game.F(out.x).norm()) <= 1e-6
    assert out.extras["inner_iterations"] > out.iterations


def test_forward_backward_box_qp_vs_cvxpy():
    """Cocoercive F = ∇(½zᵀQz − qᵀz) on a box: Halpern-FB solution equals the QP solution from cvxpy."""
    import cvxpy as cp
    rng = np.random.default_rng(6)
    B = rng.standard_normal((8, 8))
    Q, q = B @ B.T / 8 + 0.3 * np.eye(8), rng.standard_normal(8) * 2
    zv = cp.Variable(8)
    cp.Problem(cp.Minimize(0.5 * cp.quad_form(zv, Q) - q @ zv), [zv >= -0.5, zv <= 0.5]).solve(solver=cp.CLARABEL)
    Qt, qt = torch.tensor(Q), torch.tensor(q)
    out = solve_inclusion(lambda z: Qt @ z - qt, torch.zeros(8, dtype=D64), operator="forward_backward",
                          projection=Box(-0.5, 0.5), tol=1e-9, max_iter=100_000)
    assert out.status == Status.OPTIMAL
    assert np.abs(out.x.numpy() - zv.value).max() < 1e-6
