"""Randomized sketch-and-project linear solver (solvers/linalg/sketch.py)."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from optdsl.solvers.common import Status
from optdsl.solvers.linalg import sketch


def _kkt(n=20, m=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    H = torch.randn(n, n, generator=g, dtype=torch.float64)
    H = H @ H.T / n + torch.eye(n, dtype=torch.float64)
    J = torch.randn(m, n, generator=g, dtype=torch.float64)
    K = torch.zeros(n + m, n + m, dtype=torch.float64)
    K[:n, :n], K[:n, n:], K[n:, :n] = H, J.T, J
    return K, torch.randn(n + m, generator=g, dtype=torch.float64)


def _spd(N=30, seed=1):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(N, N, generator=g, dtype=torch.float64)
    return A @ A.T / N + 0.5 * torch.eye(N, dtype=torch.float64), torch.randn(N, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("kind", ["rows", "gaussian"])
@pytest.mark.parametrize("system", ["spd", "kkt"])
def test_converges_to_direct_solution(kind, system):
    K, b = _spd() if system == "spd" else _kkt()
    out = sketch.solve(K, b, sketch=kind, sketch_size=10, tol=1e-10)
    assert out.status == Status.OPTIMAL
    assert float((K @ out.x - b).norm()) <= 1e-10 * float(b.norm())
    assert torch.allclose(out.x, torch.linalg.solve(K, b), atol=1e-7)
    assert out.counts["linear_iterations"] == out.iterations > 0


def test_indefinite_kkt_is_indefinite_and_kaczmarz_single_row_converges():
    K, b = _kkt(8, 4, seed=3)
    ev = torch.linalg.eigvalsh(K)
    assert ev.min() < 0 < ev.max()
    out = sketch.solve(K, b, sketch="rows", sketch_size=1, tol=1e-8, row_probs="uniform")
    assert out.status == Status.OPTIMAL and out.certificates["relative_residual"] <= 1e-8


def test_error_decreases_on_average_over_seeds():
    K, b = _kkt(20, 10)
    zs = torch.linalg.solve(K, b)
    errs = np.zeros((20, 4))
    for s in range(20):
        for j, it in enumerate([10, 40, 160, 640]):
            out = sketch.solve(K, b, sketch="gaussian", sketch_size=3, max_iter=it, tol=0.0, seed=s)
            errs[s, j] = float((out.x - zs).norm())
    mean = errs.mean(0)
    assert np.all(np.diff(mean) < 0) and mean[-1] < 1e-2 * mean[0]


@pytest.mark.parametrize("fmt", ["scipy", "torch_coo", "operator"])
def test_sparse_and_matrix_free_inputs(fmt):
    K, b = _kkt(15, 5, seed=2)
    if fmt == "scipy":
        A, kind = sp.csr_matrix(K.numpy()), "rows"
    elif fmt == "torch_coo":
        A, kind = K.to_sparse(), "rows"
    else:
        A, kind = sketch.SketchOperator(K.shape[0], matmat=lambda V: K @ V, symmetric=True), "gaussian"
    out = sketch.solve(A, b, sketch=kind, sketch_size=5, tol=1e-9)
    assert out.status == Status.OPTIMAL
    assert float((K @ out.x - b).norm()) <= 1e-9 * float(b.norm())


def test_stop_callback_and_iteration_limit_and_no_mutation():
    K, b = _kkt()
    x0 = torch.zeros_like(b)
    seen = []
    out = sketch.solve(K, b, x0=x0, stop=lambda r, j: (seen.append(r) or r <= 0.5 * float(b.norm())))
    assert out.status == Status.OPTIMAL and seen[-1] <= 0.5 * float(b.norm())
    assert torch.count_nonzero(x0) == 0
    lim = sketch.solve(K, b, max_iter=3, tol=1e-14)
    assert lim.status == Status.ITERATION_LIMIT and lim.iterations == 3


def test_float32_and_singular_consistent_system():
    K, b = _spd()
    out = sketch.solve(K.float(), b.float(), sketch="rows", sketch_size=10, tol=1e-5)
    assert out.x.dtype == torch.float32 and out.status == Status.OPTIMAL
    # singular but consistent: projections converge to a solution
    A = torch.diag(torch.tensor([2.0, 1.0, 0.0], dtype=torch.float64))
    out = sketch.solve(A, torch.tensor([2.0, 1.0, 0.0], dtype=torch.float64), sketch_size=2, tol=1e-12)
    assert out.status == Status.OPTIMAL and torch.allclose(out.x, torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64))


def test_bad_input_errors():
    K, b = _kkt()
    with pytest.raises(ValueError, match="square"):
        sketch.solve(torch.zeros(3, 4), torch.zeros(3))
    with pytest.raises(ValueError, match=r"b must have shape \(30,\)"):
        sketch.solve(K, torch.zeros(7, dtype=torch.float64))
    with pytest.raises(ValueError, match="sketch must be"):
        sketch.solve(K, b, sketch="bogus")
    with pytest.raises(ValueError, match="sketch_size"):
        sketch.solve(K, b, sketch_size=0)
    with pytest.raises(ValueError, match="row access"):
        sketch.solve(sketch.SketchOperator(30, matmat=lambda V: K @ V), b, sketch="rows")
    nan = K.clone()
    nan[0, 0] = float("nan")
    assert sketch.solve(nan, b).status == Status.NUMERICAL_ERROR


def _ill_conditioned(N=20, cond=1e4, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(N, N, generator=g, dtype=torch.float64))
    K = Q @ torch.diag(torch.logspace(0, -torch.log10(torch.tensor(cond)).item(), N, dtype=torch.float64)) @ Q.T
    return K, torch.randn(N, generator=g, dtype=torch.float64)


def test_block_growth_rescues_ill_conditioned_system_without_exact_projections():
    K, b = _ill_conditioned()
    fixed = sketch.solve(K, b, sketch="rows", sketch_size=2, tol=1e-8, max_iter=5000)
    assert fixed.status == Status.ITERATION_LIMIT  # 2-row Kaczmarz crawls at cond(K) = 1e4
    out = sketch.solve(K, b, sketch="rows", sketch_size=2, tol=1e-8, max_iter=5000, grow=True,
                       max_sketch_size=19)
    assert out.status == Status.OPTIMAL and float((K @ out.x - b).norm()) <= 1e-8 * float(b.norm())
    assert out.counts["sketch_growths"] >= 1 and 2 < out.extras["sketch_size"] <= 19
    assert out.counts["exact_projections"] == 0  # never a block spanning the whole system


def test_full_block_is_counted_as_exact_projection():
    K, b = _ill_conditioned(N=6, cond=1e3)
    out = sketch.solve(K, b, sketch="gaussian", sketch_size=6, tol=1e-8)
    assert out.status == Status.OPTIMAL and out.iterations <= 3 and out.counts["exact_projections"] == out.iterations


def test_stall_windows_stop_an_inconsistent_system():
    A = torch.ones(2, 2, dtype=torch.float64)  # singular, b not in the range: projections cannot converge
    out = sketch.solve(A, torch.tensor([1.0, 0.0], dtype=torch.float64), sketch_size=1, tol=1e-10, stall_windows=3)
    assert out.status == Status.SLOW_PROGRESS and out.iterations < 1000 and "stalled" in out.message
