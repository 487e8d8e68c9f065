"""End-to-end DAG learning: recovery (C3), smooth-method certificate, statuses, bad input, fit hook."""
import warnings

import numpy as np
import pytest
import torch

from optdsl.solvers import dag
from optdsl.solvers.common import Status
from optdsl.solvers.dag import data
from optdsl.solvers.dag import topo as topo_mod
from optdsl.solvers.dag.colide import ConcomitantLoss
from optdsl.solvers.dag.losses import L2Loss


@pytest.fixture(scope="module")
def er10():
    return {s: data.make_problem("er2_d10", seed=s) for s in (2, 4)}


# notears (11 s of CPU for two seeds), logdet (4.5 s a seed) and colide (5 s) also recover ER2 d=10 through
# m.solve() in the default run (test_dag_models.test_er2_d10_every_method_recovers_the_graph); here they run with
# -m slow
@pytest.mark.parametrize("method", ["topo", pytest.param("notears", marks=pytest.mark.slow),
                                    pytest.param("logdet", marks=pytest.mark.slow),
                                    pytest.param("colide", marks=pytest.mark.slow)])
def test_recovers_er2_d10(er10, method):
    for seed, (X, W) in er10.items():
        if method in ("colide", "logdet") and seed != 2:   # one seed keeps the suite fast (logdet: 3.5 s a seed;
            continue                                          # its seed 4 runs in the slow set, below)
        Xc = X.copy()
        out = dag.learn(X, method=method, B_true=W)
        assert np.array_equal(X, Xc)                               # input untouched
        assert out.status.is_success, out.message
        assert out.extras["metrics"]["shd"] <= 2, (seed, out.extras["metrics"])
        assert dag.is_dag(out.x) and out.certificates["h(W)"] == 0.0
        assert out.extras["edges"] and all(abs(w) >= 0.3 for _, _, w in out.extras["edges"])
        if method == "notears":                                    # the smooth method's own certificate
            assert out.certificates["h(W_raw)"] <= 1e-8


@pytest.mark.slow
def test_logdet_recovers_er2_d10_second_seed(er10):
    X, W = er10[4]
    out = dag.learn(X, method="logdet", B_true=W)
    assert out.status.is_success, out.message
    assert out.extras["metrics"]["shd"] <= 2 and dag.is_dag(out.x) and out.certificates["h(W)"] == 0.0


def test_topo_all_seeds_and_lower_score_than_notears(er10):
    shd = [dag.learn(*data.make_problem("er2_d10", seed=s)[:1], method="topo",
                     B_true=data.make_problem("er2_d10", seed=s)[1]).extras["metrics"]["shd"] for s in range(1, 6)]
    assert np.mean(shd) <= 1.0 and max(shd) <= 2
    X, W = er10[2]
    Q = L2Loss(torch.as_tensor(X))
    q_topo = float(Q(dag.learn(X, method="topo", lambda1=0.0, w_threshold=None).x)[0])
    q_notears = float(Q(dag.learn(X, method="notears", w_threshold=None).x)[0])
    assert q_topo <= q_notears


def test_two_node_weight_and_direction():
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=10000)
    X = np.stack([x1, 1.5 * x1 + rng.normal(size=10000)], 1)
    for method in ("topo", "notears"):
        out = dag.learn(X, method=method, lambda1=0.01)
        assert [(i, j) for i, j, _ in out.extras["edges"]] == [(0, 1)]
        assert float(out.x[0, 1]) == pytest.approx(1.5, abs=0.03)


def _bench_case(d, graph, k, seed=0):
    rng = np.random.default_rng(1000 * d + 10 * k + seed)     # the benchmark's data for (d, graph, seed)
    B = data.simulate_dag(d, k * d, graph, rng)
    return data.simulate_linear_sem(data.simulate_parameter(B, seed=rng), 1000, seed=rng), B


def test_topo_support_refit_removes_spurious_edges():
    # SF4, d = 100: the dense OLS fit for the found order leaves 3 spurious coefficients just above 0.3
    # (measured 0.30-0.35); thresholding then refitting OLS on the kept support removes all of them
    X, B = _bench_case(100, "SF", 4)
    out = topo_mod.topo(torch.as_tensor(X), w_threshold=0.3)
    dense = out.extras["W_order"].numpy().copy()
    dense[np.abs(dense) < 0.3] = 0
    assert dag.count_accuracy(B, dense)["extra"] == 3
    m = dag.count_accuracy(B, out.x.numpy())
    assert m["shd"] == 0 and m["tpr"] == 1.0 and out.counts["refit_rounds"] >= 1


@pytest.mark.parametrize("graph,k", [("ER", 2), ("SF", 4)])
def test_topo_d100_recovery_in_seconds(graph, k):
    X, B = _bench_case(100, graph, k)
    out = dag.learn(X, method="topo", B_true=B)
    assert out.extras["metrics"]["shd"] == 0      # measured: 0 on both, 0.3 s each (single thread)
    # the work, counted instead of timed (measured: 46 / 41 swaps, 5,281 / 6,481 score evaluations)
    assert out.counts["swaps"] <= 100 and out.counts["f"] <= 15_000 and dag.is_dag(out.x)


def test_swap_deltas_match_full_rescoring():
    X, _ = _bench_case(20, "ER", 2)
    Xc = torch.as_tensor(X - X.mean(0))
    C = Xc.T @ Xc / len(Xc)
    order = torch.as_tensor(np.random.default_rng(3).permutation(20))
    L = torch.linalg.cholesky(C[order][:, order])
    p, q = torch.triu_indices(20, 20, 1)
    cands = order.repeat(len(p), 1)
    ar = torch.arange(len(p))
    cands[ar, p], cands[ar, q] = order[q], order[p]
    full = topo_mod.order_scores(C, cands) - topo_mod.order_scores(C, order[None])[0]
    for elems in (1 << 22, 100):                  # one batch / many padded batches
        assert torch.allclose(topo_mod.swap_deltas(L, p, q, elems), full, atol=1e-10)


def test_topo_refine_and_sf_graph():
    X, W = data.make_problem("sf4_d20", seed=1)
    out = dag.learn(X, method="topo", B_true=W)
    assert out.extras["metrics"]["shd"] <= 2
    Xs, Ws = data.make_problem("er2_d10", seed=1)   # notears alone has SHD 2 here; TOPO refine fixes it
    ref = dag.learn(Xs, method="notears", refine=True, B_true=Ws)
    assert ref.extras["metrics"]["shd"] == 0 and "refined" in ref.message


def test_colide_sigma_closed_form_and_scale():
    X, W = data.make_problem("er2_d10", seed=2)
    Xt = torch.as_tensor(X)
    Wt = torch.as_tensor(W)
    loss = ConcomitantLoss(Xt, "equal")
    Xc = Xt - Xt.mean(0)
    sig = float(loss.sigma(Wt))
    assert sig == pytest.approx(float(torch.linalg.norm(Xc - Xc @ Wt) / (1000 * 10) ** 0.5), rel=1e-12)
    assert sig == pytest.approx(1.0, abs=0.05)                    # true noise scale is 1
    Q2 = float(((torch.eye(10) - Wt) * (loss.cov @ (torch.eye(10) - Wt))).sum())
    dS = -Q2 / (2 * sig ** 2) + 10 / 2                            # ∂S/∂σ at σ*: zero
    assert abs(dS) < 1e-10
    nv = ConcomitantLoss(Xt, "non-equal").sigma(Wt)
    assert nv.shape == (10,) and torch.allclose(nv, torch.ones(10, dtype=nv.dtype), atol=0.1)


def test_colide_support_is_invariant_to_noise_scale():
    B = data.simulate_dag(6, 6, "ER", seed=5)
    W = data.simulate_parameter(B, seed=5)
    X = data.simulate_linear_sem(W, 1000, seed=5)
    a = dag.learn(X, method="colide", B_true=B)
    b = dag.learn(10 * X, method="colide", B_true=B)
    assert a.extras["metrics"]["shd"] == 0
    assert np.array_equal(a.x.numpy() != 0, b.x.numpy() != 0)
    assert b.extras["sigma"] == pytest.approx(10 * np.array(a.extras["sigma"]), rel=1e-2)


def test_logistic_binary_data():
    X, W = data.make_problem("logistic_d10", seed=0)
    out = dag.learn(X, method="logdet", loss="logistic", B_true=W)
    assert out.extras["metrics"]["shd"] <= 1 and dag.is_dag(out.x)
    with pytest.raises(ValueError, match="binary"):
        dag.learn(X + 0.5, method="logdet", loss="logistic")


def test_statuses_budget_and_callback():
    X, W = data.make_problem("er2_d10", seed=2)
    out = dag.learn(X, method="notears", max_iter=1)
    assert out.status == Status.ITERATION_LIMIT and dag.is_dag(out.x) and out.iterations == 1
    seen = []
    out = dag.learn(X, method="logdet", callback=lambda info: seen.append(info["iteration"]) or False)
    assert out.status == Status.INTERRUPTED and seen == [0] and dag.is_dag(out.x)
    out = dag.learn(X, method="notears", time_limit=1e-3)
    assert out.status == Status.TIME_LIMIT and dag.is_dag(out.x)
    assert out.history and {"h", "rho", "objective"} <= set(out.history[0])


def test_float32_and_device_argument():
    X, W = data.make_problem("er2_d10", seed=2)
    out = dag.learn(torch.as_tensor(X), method="topo", dtype="float32", device="cpu", B_true=W)
    assert out.x.dtype == torch.float32 and out.extras["metrics"]["shd"] <= 2


def test_bad_input():
    X, _ = data.make_problem("er2_d10", seed=2)
    Xn = X.copy(); Xn[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        dag.learn(Xn)
    with pytest.raises(ValueError, match="2-D"):
        dag.learn(X[:, 0])
    with pytest.raises(ValueError, match="constant columns"):
        dag.learn(np.c_[X, np.ones(len(X))])
    with pytest.raises(ValueError, match="method must be"):
        dag.learn(X, method="pc")
    with pytest.raises(ValueError, match="least-squares"):
        dag.learn(X, method="topo", loss="logistic")
    with pytest.raises(TypeError, match="torch.Tensor or numpy"):
        dag.learn("data")
    with pytest.raises(ValueError, match=r"W0 must have shape \(3, 3\)"):
        dag.fit(lambda W: (W ** 2).sum(), 3, W0=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="square"):
        dag.threshold_dag(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="B_true"):
        dag.learn(X, B_true=np.zeros((3, 3)))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = dag.learn(X[:8], method="notears", max_iter=2)
    assert any("fewer samples" in str(m.message) for m in w) and dag.is_dag(out.x)


def test_fit_with_torch_loss_and_extra_params():
    B = data.simulate_dag(5, 5, "ER", seed=1)
    W = data.simulate_parameter(B, seed=1)
    X = torch.as_tensor(data.simulate_linear_sem(W, 2000, seed=1)) + 1.0     # non-zero means
    # intercept b as an extra parameter: the same model as the built-in l2 loss on centred data
    b0 = torch.zeros(5, dtype=torch.float64)
    loss = lambda Wm, b: 0.5 * ((X - X @ Wm - b) ** 2).sum() / X.shape[0]   # noqa: E731
    for acy in ("logdet",):
        out = dag.fit(loss, 5, params=[b0], lambda1=0.02, acyclicity=acy)
        assert dag.count_accuracy(B, out.x)["shd"] == 0 and dag.is_dag(out.x)
        assert torch.equal(b0, torch.zeros(5, dtype=torch.float64))            # not mutated
        b = out.extras["params"][0]
        assert torch.allclose(b, (X - X @ out.extras["W_raw"]).mean(0), atol=1e-2)
    Xc = X - X.mean(0)
    out = dag.fit(lambda Wm: 0.5 * ((Xc - Xc @ Wm) ** 2).sum() / 2000, 5, lambda1=0.02, acyclicity="expm")
    assert out.certificates["h(W_raw)"] <= 1e-8 and dag.count_accuracy(B, out.x)["shd"] == 0


def test_projected_lbfgs_ring_buffer_solves_a_bound_constrained_quadratic():
    # min ½xᵀHx − cᵀx, x_i ≥ 0 on the first half, x_0 fixed at 0; KKT checked directly. ~50 iterations:
    # the ring-buffered memory (10 pairs) wraps several times.
    from optdsl.solvers.dag._plbfgs import projected_lbfgs
    g = torch.Generator().manual_seed(0)
    A = torch.randn(60, 60, generator=g, dtype=torch.float64)
    H = A @ A.T / 60 + 0.05 * torch.eye(60, dtype=torch.float64)
    c = torch.randn(60, generator=g, dtype=torch.float64)
    nonneg = torch.arange(60) < 30
    fixed = torch.arange(60) == 0
    x, f, nfev, nit, msg = projected_lbfgs(lambda v: (0.5 * v @ H @ v - c @ v, H @ v - c),
                                           torch.ones(60, dtype=torch.float64), nonneg, fixed, gtol=1e-7, ftol=0)
    grad = H @ x - c
    assert "gtol" in msg and nit > 30 and float(x[0]) == 0.0
    assert bool((x[nonneg] >= 0).all())
    free = ~fixed & ~(nonneg & (x <= 0))
    assert float(grad[free].abs().max()) <= 1e-7                      # stationary on the free variables
    assert bool((grad[nonneg & (x <= 0) & ~fixed] >= -1e-7).all())    # multipliers of active bounds ≥ 0
    # DAGMA's windowed test stops much earlier on the same problem
    *_, nit_w, msg_w = projected_lbfgs(lambda v: (0.5 * v @ H @ v - c @ v, H @ v - c),
                                       torch.ones(60, dtype=torch.float64), nonneg, fixed, gtol=0, ftol=0,
                                       window=5, wtol=1e-3)
    assert "over 5 iterations" in msg_w and nit_w < nit


def test_refine_keeps_the_better_of_the_method_and_greedy_starts():
    X, W = data.make_problem("er2_d10", seed=1)
    out = dag.learn(X, method="notears", refine=True, B_true=W, max_iter=2)     # a poor, early-stopped start
    assert out.extras["refine_start"] in ("method", "greedy")
    direct = dag.learn(X, method="topo", B_true=W)
    assert out.extras["metrics"]["shd"] <= direct.extras["metrics"]["shd"] == 0
    assert out.counts["topo_f"] >= 2 and dag.is_dag(out.x)
