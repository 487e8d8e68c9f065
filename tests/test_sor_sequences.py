"""Sequence generators: operators match independent constructions, are SPD, and carry their context."""
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from optdsl.solvers.linalg import sor
from optdsl.solvers.linalg.sequences import heat_equation_sequence, laplacian_2d, shifted_laplacian_sequence


def test_laplacian_matches_kronecker_sum():
    m, nx = 5, 7
    T = lambda k: sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(k, k))
    K = sp.kron(sp.identity(m), T(nx)) + sp.kron(T(m), sp.identity(nx))
    assert abs(laplacian_2d(m, nx) - K).max() == 0.0
    assert abs(laplacian_2d(m, nx, shift=0.3) - K - 0.3 * sp.identity(m * nx)).max() < 1e-15


def test_variable_coefficient_operator_is_spd_and_consistent():
    rng = np.random.default_rng(0)
    k = rng.uniform(0.5, 2.0, size=(6, 6))
    A = laplacian_2d(6, coeff=k)
    assert abs(A - A.T).max() < 1e-14
    assert np.linalg.eigvalsh(A.toarray()).min() > 0
    assert abs(laplacian_2d(6, coeff=2 * k) - 2 * A).max() < 1e-14   # linear in the coefficient
    with pytest.raises(ValueError, match="coeff must have shape"):
        laplacian_2d(6, coeff=np.ones((5, 6)))


def test_shifted_sequence_contexts_and_spd_guard():
    seq = shifted_laplacian_sequence(20, 6, shifts="linspace", low=0.0, high=0.5, seed=1)
    np.testing.assert_allclose([s.context for s in seq], np.linspace(0, 0.5, 20))
    s = seq[7]
    np.testing.assert_allclose(s.A.diagonal(), 4 + s.context)
    assert np.abs(s.b).max() <= 3.0 and s.b.shape == (36,)
    beta = shifted_laplacian_sequence(50, 6, seed=0, low=-0.15, high=0.45)
    c = np.array([x.context for x in beta])
    assert c.min() >= -0.15 and c.max() <= 0.45 and c.std() > 0.02
    with pytest.raises(ValueError, match="not SPD"):
        shifted_laplacian_sequence(5, 20, shifts=[-0.1] * 5)


def test_heat_sequence_steps_are_exact_and_best_omega_drifts():
    seq = heat_equation_sequence(12, 10, seed=0)
    r = np.array([s.context for s in seq])
    assert r.max() / r.min() > 100                       # mesh ratio swings by orders of magnitude
    for s0, s1 in zip(seq[:-1], seq[1:]):                 # b_{t+1} = exact u_{t+1} + dt * source
        u1 = spla.spsolve(s0.A.tocsc(), s0.b)
        np.testing.assert_allclose(s1.b, u1 + 1e-3, atol=1e-12)
    grid = np.round(np.arange(1.0, 1.96, 0.05), 2)
    best = []
    for s in (seq[3], seq[9]):                           # high- and low-diffusivity steps
        M = sor.SORMatrix(s.A)
        best.append(grid[np.argmin([sor.solve(M, s.b, omega=w).iterations for w in grid])])
    assert best[0] - best[1] >= 0.3
    rho = sor.jacobi_spectral_radius(seq[3].A)
    assert abs(best[0] - sor.omega_opt(rho)) <= 0.1
