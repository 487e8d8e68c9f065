"""SubGM robust matrix recovery (refs Part 4.4): exact recovery under 20% large outliers."""
import pytest
import torch

from optdsl.solvers.common import Status
from optdsl.solvers.robust.matrix_recovery import subgm


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny mat-vecs: intra-op threads only add contention on a shared 2-core machine (seen: 40x slower).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _data(d=20, r=2, m=400, p=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    Us = torch.randn(d, r, generator=g, dtype=torch.float64)
    X = Us @ Us.T
    G = torch.randn(m, d, d, generator=g, dtype=torch.float64)
    A = (G + G.transpose(1, 2)) / 2
    y = torch.einsum("mij,ij->m", A, X)
    out = torch.rand(m, generator=g) < p
    y = y + out * 10 * torch.randn(m, generator=g, dtype=torch.float64) * X.norm() / 3
    return A, y, X


def _iters_to(out, level=1e-3):
    return next((h["iteration"] for h in out.history if h["error"] < level), None)


def test_recovers_despite_outliers_and_is_overparameterization_agnostic():
    A, y, X = _data()
    A0, y0 = A.clone(), y.clone()
    exact = subgm(A, y, rank=2, max_iter=1300, X_true=X)
    over = subgm(A, y, rank=6, max_iter=1300, X_true=X)     # r' = 3r
    assert torch.equal(A, A0) and torch.equal(y, y0)
    assert exact.history[-1]["error"] < 1e-3 and over.history[-1]["error"] < 1e-3
    k_exact, k_over = _iters_to(exact), _iters_to(over)
    assert k_exact is not None and k_over is not None and max(k_exact, k_over) < 2 * min(k_exact, k_over)
    assert exact.status is Status.ITERATION_LIMIT
    # the ℓ₂ estimator (least squares over X) is ruined by the same outliers
    d = X.shape[0]
    sol = torch.linalg.lstsq(A.reshape(len(y), -1), y.unsqueeze(1)).solution.reshape(d, d)
    assert float(torch.linalg.norm((sol + sol.T) / 2 - X) / torch.linalg.norm(X)) > 0.1


def test_subgm_bad_input():
    A, y, X = _data(d=4, m=10)
    with pytest.raises(ValueError, match=r"y must be a tensor of shape \(10,\)"):
        subgm(A, y[:5], 2)
    with pytest.raises(ValueError, match=r"A must be a tensor of shape \(m, d, d\)"):
        subgm(A[:, :3], y, 2)
    with pytest.raises(ValueError, match="rank"):
        subgm(A, y, 0)
