"""Synthetic generators: acyclicity, sizes, seeds, weights, noise types."""
import networkx as nx
import numpy as np
import pytest

from optdsl.solvers.dag import data


@pytest.mark.parametrize("gt,s0", [("ER", 40), ("SF", 80)])
def test_graphs_are_dags_of_the_requested_density(gt, s0):
    B = data.simulate_dag(20, s0, gt, seed=3)
    assert nx.is_directed_acyclic_graph(nx.DiGraph(B))
    assert np.all(np.diag(B) == 0)
    assert 0.6 * s0 <= B.sum() <= 1.3 * s0
    assert np.array_equal(B, data.simulate_dag(20, s0, gt, seed=3))          # fixed seed
    assert not np.array_equal(B, data.simulate_dag(20, s0, gt, seed=4))
    if gt == "SF":   # hubs: the max in-degree far above the mean
        assert B.sum(0).max() >= 3 * B.sum(0).mean()


def test_weights_and_linear_sem_moments():
    B = data.simulate_dag(10, 20, "ER", seed=0)
    W = data.simulate_parameter(B, seed=0)
    nz = np.abs(W[B != 0])
    assert np.all((nz >= 0.5) & (nz <= 2.0)) and np.all(W[B == 0] == 0)
    X = data.simulate_linear_sem(W, 20000, "gauss", seed=1)
    # residuals of the true SEM are the noise: unit variance for every node
    assert np.allclose((X - X @ W).var(0), 1.0, atol=0.05)
    Xu = data.simulate_linear_sem(W, 20000, "gauss", equal_variances=False, seed=1)
    v = (Xu - Xu @ W).var(0)
    assert v.max() / v.min() > 1.3 and np.all((v > 0.2) & (v < 2.4))
    Xe = data.simulate_linear_sem(W, 20000, "exp", seed=1)
    assert np.all((Xe - Xe @ W).min(0) >= 0)                                  # exponential noise >= 0
    Xg = data.simulate_linear_sem(W, 20000, "gumbel", seed=1)
    assert np.allclose((Xg - Xg @ W).mean(0), 0.5772, atol=0.05)              # Euler–Mascheroni mean


def test_logistic_mlp_and_gallery_cases():
    X, W = data.make_problem("logistic_d10", n=500, seed=0)
    assert set(np.unique(X)) <= {0.0, 1.0} and X.shape == (500, 10)
    X, B = data.make_problem("mlp_d5", n=200, seed=0)
    assert X.shape == (200, 5) and nx.is_directed_acyclic_graph(nx.DiGraph(B))
    for name, d in (("er2_d10", 10), ("er2_d20", 20), ("sf4_d20", 20)):
        X, W = data.make_problem(name, seed=0)
        assert X.shape == (1000, d) and W.shape == (d, d)
    with pytest.raises(ValueError, match="unknown problem"):
        data.make_problem("nope")
    with pytest.raises(ValueError, match="sem_type"):
        data.simulate_linear_sem(W, 10, "cauchy")


def _bench_module():
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "bench_dag.py"
    spec = importlib.util.spec_from_file_location("bench_dag", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _big_result(X):
    return np.ones((X.shape[1], X.shape[1]))


def _sleeper(X):
    import time
    time.sleep(30)


def test_benchmark_harness_returns_large_results_and_caps_slow_ones():
    # regression: the harness joined the child before reading its queue, which deadlocks once the result
    # exceeds the pipe buffer (a d = 100 float64 matrix, 80 kB) -> every d = 100 run "timed out"
    bench = _bench_module()
    B, sec, err = bench.timed(_big_result, np.zeros((10, 100)), 20)
    assert err is None and B.shape == (100, 100)   # the deadlock showed as a 20 s "timeout" error
    B, sec, err = bench.timed(_sleeper, np.zeros((2, 2)), 1)
    assert B is None and "timeout" in err
