"""SOR / SSOR solver: correctness against independent implementations, statuses, orderings, inputs."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from optdsl.solvers.common import Status
from optdsl.solvers.linalg import sor
from optdsl.solvers.linalg.sequences import laplacian_2d


def naive_sor(A, b, omega, sweeps, x0=None, symmetric=False):
    """Textbook component-wise SOR (Saad §4.1), written independently of the tensor code."""
    A = np.asarray(A.todense() if sp.issparse(A) else A, dtype=np.float64)
    n = len(b)
    x = np.zeros(n) if x0 is None else np.array(x0, dtype=np.float64)
    for _ in range(sweeps):
        orders = [range(n), range(n - 1, -1, -1)] if symmetric else [range(n)]
        for order in orders:
            for i in order:
                sigma = A[i] @ x - A[i, i] * x[i]
                x[i] = (1 - omega) * x[i] + omega * (b[i] - sigma) / A[i, i]
    return x


@pytest.fixture
def system():
    rng = np.random.default_rng(1)
    A = laplacian_2d(6) + 0.1 * sp.identity(36)
    return A.tocsr(), rng.standard_normal(36)


@pytest.mark.parametrize("kind", ["scipy", "dense", "torch_coo", "torch_csr"])
def test_omega_one_is_gauss_seidel(system, kind):
    A, b = system
    As = {"scipy": A, "dense": torch.tensor(A.toarray()), "torch_coo": torch.tensor(A.toarray()).to_sparse(),
          "torch_csr": torch.tensor(A.toarray()).to_sparse_csr()}[kind]
    out = sor.solve(As, b, omega=1.0, max_iter=7)
    assert out.status is Status.ITERATION_LIMIT and out.iterations == 7
    np.testing.assert_allclose(out.x.numpy(), naive_sor(A, b, 1.0, 7), rtol=0, atol=1e-12)


@pytest.mark.parametrize("omega,symmetric", [(1.4, False), (0.7, False), (1.3, True)])
def test_sor_and_ssor_match_componentwise_sweeps(system, omega, symmetric):
    A, b = system
    x0 = np.linspace(-1, 1, 36)
    out = sor.solve(A, b, omega=omega, x0=x0, max_iter=5, symmetric=symmetric)
    np.testing.assert_allclose(out.x.numpy(), naive_sor(A, b, omega, 5, x0, symmetric), atol=1e-12)
    assert out.counts["sweeps"] == (10 if symmetric else 5)
    dense = sor.solve(torch.tensor(A.toarray()), b, omega=omega, x0=x0, max_iter=5, symmetric=symmetric)
    np.testing.assert_allclose(dense.x.numpy(), out.x.numpy(), atol=1e-12)


@pytest.mark.parametrize("omega", [0.3, 1.0, 1.5, 1.9])
@pytest.mark.parametrize("ordering", ["natural", "redblack"])
def test_converges_for_spd_in_open_interval(system, omega, ordering):
    A, b = system
    out = sor.solve(A, b, omega=omega, tol=1e-10, ordering=ordering, max_iter=5000)
    assert out.status is Status.OPTIMAL
    assert out.certificates["residual"] <= 1e-10
    resid = np.linalg.norm(b - A @ out.x.numpy()) / np.linalg.norm(b)
    assert resid == pytest.approx(out.certificates["residual"], rel=1e-6)   # reported residual is honest
    np.testing.assert_allclose(out.x.numpy(), spla.spsolve(A.tocsc(), b), atol=1e-8)
    assert out.history[-1]["residual"] <= 1e-10 and len(out.history) == out.iterations


@pytest.mark.parametrize("omega", [0.0, -0.5, 2.0, 2.5, float("nan")])
def test_omega_outside_open_interval_is_rejected(system, omega):
    A, b = system
    with pytest.raises(ValueError, match="omega must lie in"):
        sor.solve(A, b, omega=omega)


def test_divergence_becomes_numerical_error_status():
    A = laplacian_2d(6) - 2.0 * sp.identity(36)       # indefinite: SOR blows up
    b = np.ones(36)
    out = sor.solve(A, b, omega=1.5, max_iter=5000)
    assert out.status is Status.NUMERICAL_ERROR
    assert "diverged at iteration" in out.message and out.iterations < 5000
    assert torch.isfinite(out.x).all() or out.iterations > 0


def test_iteration_limit_and_callback_interrupt(system):
    A, b = system
    out = sor.solve(A, b, omega=1.0, max_iter=3)
    assert out.status is Status.ITERATION_LIMIT and out.iterations == 3
    seen = []
    out = sor.solve(A, b, omega=1.2, callback=lambda info: seen.append(info["residual"]) or info["iteration"] < 4)
    assert out.status is Status.INTERRUPTED and out.iterations == 4 and len(seen) == 4
    assert seen[-1] < seen[0]


def test_redblack_equals_natural_on_permuted_matrix_and_same_fixed_point():
    m = 7
    A = laplacian_2d(m) + 0.05 * sp.identity(m * m)
    b = np.random.default_rng(3).standard_normal(m * m)
    red = sor.redblack_colors(A)
    i, j = np.divmod(np.arange(m * m), m)
    parity = (i + j) % 2 == 0
    assert np.array_equal(red, parity) or np.array_equal(red, ~parity)   # the checkerboard
    perm = np.concatenate([np.flatnonzero(red), np.flatnonzero(~red)])
    P = A[perm][:, perm]
    for symmetric in (False, True):
        rb = sor.solve(A, b, omega=1.6, ordering="redblack", max_iter=6, symmetric=symmetric)
        nat = sor.solve(P, b[perm], omega=1.6, ordering="natural", max_iter=6, symmetric=symmetric)
        np.testing.assert_allclose(rb.x.numpy()[perm], nat.x.numpy(), atol=1e-12)
    x_rb = sor.solve(A, b, omega=1.6, ordering="redblack", tol=1e-11).x
    x_nat = sor.solve(A, b, omega=1.6, ordering="natural", tol=1e-11).x
    np.testing.assert_allclose(x_rb.numpy(), x_nat.numpy(), atol=1e-9)


def test_redblack_rejects_non_bipartite_and_bad_colors():
    A = sp.csr_matrix(np.array([[4., -1, -1], [-1, 4, -1], [-1, -1, 4]]))   # a triangle: odd cycle
    with pytest.raises(ValueError, match="2-colourable"):
        sor.solve(A, np.ones(3), ordering="redblack")
    B = laplacian_2d(3)
    with pytest.raises(ValueError, match="not a valid red-black"):
        sor.SORMatrix(B, ordering="redblack", colors=np.ones(9, dtype=bool))


def test_bad_inputs_raise_clear_errors(system):
    A, b = system
    with pytest.raises(ValueError, match=r"b must have shape \(36,\)"):
        sor.solve(A, b[:5])
    with pytest.raises(ValueError, match="square"):
        sor.solve(sp.random(4, 5, density=0.5, format="csr"), np.ones(4))
    Z = A.tolil()
    Z[3, 3] = 0.0
    with pytest.raises(ValueError, match="zero diagonal entry at row 3"):
        sor.solve(Z.tocsr(), b)
    with pytest.raises(ValueError, match="ordering"):
        sor.solve(A, b, ordering="zigzag")
    with pytest.raises(TypeError, match="b must be"):
        sor.solve(A, "b")
    with pytest.raises(ValueError, match="tol"):
        sor.solve(A, b, tol=0)


def test_inputs_not_mutated_and_dtype_device(system):
    A, b = system
    At, bt, x0 = torch.tensor(A.toarray()), torch.tensor(b), torch.zeros(36, dtype=torch.float64)
    copies = (At.clone(), bt.clone(), x0.clone())
    out = sor.solve(At, bt, omega=1.5, x0=x0, tol=1e-9)
    for orig, cp in zip((At, bt, x0), copies):
        assert torch.equal(orig, cp)
    assert out.x.data_ptr() != x0.data_ptr()
    out32 = sor.solve(A, b, omega=1.5, dtype="float32", tol=1e-5)
    assert out32.x.dtype == torch.float32 and out32.status is Status.OPTIMAL
    assert out32.x.device.type == "cpu"


def test_zero_rhs_and_exact_start(system):
    A, b = system
    out = sor.solve(A, np.zeros(36))
    assert out.status is Status.OPTIMAL and out.iterations == 0 and float(out.x.abs().max()) == 0.0
    xs = spla.spsolve(A.tocsc(), b)
    assert sor.solve(A, b, x0=xs).iterations == 0


def test_jacobi_radius_and_closed_form_optimal_omega():
    m, c = 12, 0.1
    A = laplacian_2d(m) + c * sp.identity(m * m)
    rho = 4 * math.cos(math.pi / (m + 1)) / (4 + c)
    assert sor.jacobi_spectral_radius(A) == pytest.approx(rho, abs=2e-3)
    grid = np.round(np.arange(1.0, 1.96, 0.05), 2)
    b = np.random.default_rng(0).standard_normal(m * m)
    M = sor.SORMatrix(A)
    costs = [sor.solve(M, b, omega=w).iterations for w in grid]
    w_star = sor.omega_opt(rho)
    assert abs(grid[int(np.argmin(costs))] - w_star) <= 0.05 + 1e-9
    assert costs[0] >= 2 * min(costs)   # Gauss–Seidel is much slower


def test_solve_spd_callback_signature(system):
    A, b = system
    x, info = sor.solve_spd(A, b, tol=1e-9)
    assert info["converged"] and info["iterations"] > 0 and 1.0 <= info["omega"] < 2.0
    np.testing.assert_allclose(x.numpy(), spla.spsolve(A.tocsc(), b), atol=1e-7)
    gs = sor.solve(A, b, omega=1.0, tol=1e-9).iterations
    assert info["iterations"] < gs
