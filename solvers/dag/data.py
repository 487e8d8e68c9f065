"""Synthetic DAGs and structural equation models with fixed seeds (numpy), as in the NOTEARS utilities.

Graphs (B[i, j] = 1 means edge i → j; names "ERk"/"SFk" mean k·d expected edges):
* Erdős–Rényi: each pair of a random node order is joined with probability 2·s0/(d(d−1)), oriented
  along the order — acyclic by construction.
* scale-free: Barabási–Albert growth, each new node sends m = round(s0/d) edges to existing nodes chosen
  with probability ∝ degree (+1), then node labels are permuted (Zheng et al. 2018, utils.simulate_dag).
Weights: uniform on ±[0.5, 2]. SEMs: linear x_j = Σ_i W_ij x_i + z_j with Gaussian, exponential or Gumbel
noise (equal scale, or unequal scales drawn from U[0.5, 1.5]); logistic (binary) x_j ~ Bernoulli(σ(·));
nonlinear MLP x_j = MLP_j(x_pa(j)) + z_j with one sigmoid hidden layer of 100 units.
Written from the description, not byte-compatible with igraph's random streams.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from optdsl.solvers.lazy import lazy_module

nx = lazy_module("networkx")   # imported on first use (~0.15 s)


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _permute(B: np.ndarray, rng) -> np.ndarray:
    P = rng.permutation(B.shape[0])
    return B[np.ix_(P, P)]


def simulate_dag(d: int, s0: int, graph_type: str = "ER", seed=0) -> np.ndarray:
    """Binary adjacency (d, d) of a random DAG with about s0 edges; graph_type 'ER' or 'SF'."""
    if d < 2:
        raise ValueError(f"d must be >= 2, got {d}")
    rng = _rng(seed)
    if graph_type == "ER":
        p = min(1.0, 2.0 * s0 / (d * (d - 1)))
        B = np.tril((rng.random((d, d)) < p).astype(float), k=-1)
    elif graph_type == "SF":
        m = max(1, int(round(s0 / d)))
        B = np.zeros((d, d))
        deg = np.zeros(d)
        for v in range(1, d):
            k = min(m, v)
            prob = (deg[:v] + 1.0) / (deg[:v] + 1.0).sum()
            tgt = rng.choice(v, size=k, replace=False, p=prob)
            B[v, tgt] = 1.0          # new node -> older hubs (as igraph Barabasi, directed)
            deg[tgt] += 1
            deg[v] += k
    else:
        raise ValueError(f"graph_type must be 'ER' or 'SF', got {graph_type!r}")
    B = _permute(B, rng)
    assert nx.is_directed_acyclic_graph(nx.DiGraph(B))
    return B


def simulate_parameter(B: np.ndarray, w_ranges=((-2.0, -0.5), (0.5, 2.0)), seed=0) -> np.ndarray:
    """Weighted adjacency: each edge of B gets a weight uniform on the union of w_ranges."""
    rng = _rng(seed)
    W = np.zeros(B.shape)
    S = rng.integers(len(w_ranges), size=B.shape)
    for i, (lo, hi) in enumerate(w_ranges):
        W += B * (S == i) * rng.uniform(lo, hi, size=B.shape)
    return W


def _topo(W: np.ndarray) -> list:
    G = nx.DiGraph(W != 0)
    if not nx.is_directed_acyclic_graph(G):
        raise ValueError("W must be the weighted adjacency of a DAG")
    return list(nx.topological_sort(G))


def _noise(rng, sem_type: str, scale: np.ndarray, n: int) -> np.ndarray:
    d = scale.shape[0]
    if sem_type == "gauss":
        return rng.normal(scale=scale, size=(n, d))
    if sem_type == "exp":
        return rng.exponential(scale=scale, size=(n, d))
    if sem_type == "gumbel":
        return rng.gumbel(scale=scale, size=(n, d))
    raise ValueError(f"sem_type must be 'gauss', 'exp', 'gumbel' or 'logistic', got {sem_type!r}")


def simulate_linear_sem(W: np.ndarray, n: int, sem_type: str = "gauss", noise_scale=1.0,
                        equal_variances: bool = True, seed=0) -> np.ndarray:
    """Samples X (n, d) of the linear SEM X = XW + Z in topological order.

    sem_type: 'gauss' | 'exp' | 'gumbel' | 'logistic' (binary data). With equal_variances=False each node's
    noise scale is noise_scale · U[0.5, 1.5] (heteroscedastic, as CoLiDE-NV targets).
    """
    rng = _rng(seed)
    d = W.shape[0]
    order = _topo(W)
    scale = np.broadcast_to(np.asarray(noise_scale, float), (d,)).copy()
    if not equal_variances:
        scale = scale * rng.uniform(0.5, 1.5, size=d)
    X = np.zeros((n, d))
    if sem_type == "logistic":
        U = rng.random((n, d))
        for j in order:
            X[:, j] = (U[:, j] < 1.0 / (1.0 + np.exp(-(X @ W[:, j])))).astype(float)
        return X
    Z = _noise(rng, sem_type, scale, n)
    for j in order:
        X[:, j] = X @ W[:, j] + Z[:, j]
    return X


def simulate_mlp_sem(B: np.ndarray, n: int, hidden: int = 100, noise_scale=1.0, seed=0) -> np.ndarray:
    """Nonlinear SEM x_j = w2ᵀ σ(W1 x_pa(j)) + z_j with random ±U[0.5, 2] weights (NOTEARS-MLP data)."""
    rng = _rng(seed)
    d = B.shape[0]
    X = np.zeros((n, d))
    Z = rng.normal(scale=noise_scale, size=(n, d))
    for j in _topo(B):
        pa = np.flatnonzero(B[:, j])
        if len(pa) == 0:
            X[:, j] = Z[:, j]
            continue
        W1 = rng.uniform(0.5, 2.0, size=(len(pa), hidden)) * rng.choice([-1, 1], size=(len(pa), hidden))
        w2 = rng.uniform(0.5, 2.0, size=hidden) * rng.choice([-1, 1], size=hidden)
        X[:, j] = (1.0 / (1.0 + np.exp(-(X[:, pa] @ W1)))) @ w2 + Z[:, j]
    return X


def make_problem(name: str, n: Optional[int] = None, seed: int = 0):
    """Gallery cases: 'er2_d10', 'er2_d20', 'sf4_d20', 'logistic_d10', 'mlp_d5'. Returns (X, W_true)."""
    rng = np.random.default_rng(seed)
    cases = {"er2_d10": (10, 20, "ER", "gauss"), "er2_d20": (20, 40, "ER", "gauss"),
             "sf4_d20": (20, 80, "SF", "gauss"), "logistic_d10": (10, 10, "ER", "logistic")}
    if name == "mlp_d5":
        B = simulate_dag(5, 5, "ER", rng)
        return simulate_mlp_sem(B, n or 1000, seed=rng), B
    if name not in cases:
        raise ValueError(f"unknown problem {name!r}; expected one of {sorted(cases) + ['mlp_d5']}")
    d, s0, gt, sem = cases[name]
    B = simulate_dag(d, s0, gt, rng)
    W = simulate_parameter(B, seed=rng)
    default_n = 5000 if sem == "logistic" else 1000
    return simulate_linear_sem(W, n or default_n, sem, seed=rng), W
