"""Final thresholding and the acyclicity guarantee of the returned graph.

Continuous methods end with h(W) small but not exactly 0, so (as NOTEARS/DAGMA/TOPO do) entries with
|W_ij| < w_threshold (default 0.3) are set to 0. That usually leaves a DAG; when it does not, the weakest
edge of a remaining cycle is dropped (networkx.find_cycle) until networkx.is_directed_acyclic_graph
holds. Every edge removed this way is reported, so the user sees when the guarantee had to intervene.
"""
from __future__ import annotations

import numpy as np
import torch

from optdsl.solvers.lazy import lazy_module

nx = lazy_module("networkx")   # imported on first use (~0.15 s)


def is_dag(W) -> bool:
    """True when the graph with an edge i → j for every W_ij ≠ 0 is acyclic (self-loops are cycles)."""
    Wn = W.detach().cpu().numpy() if isinstance(W, torch.Tensor) else np.asarray(W)
    return nx.is_directed_acyclic_graph(nx.DiGraph(Wn != 0))


def threshold_dag(W: torch.Tensor, w_threshold: float = 0.3):
    """Return (W_dag, dropped): |W| < w_threshold zeroed, then weakest cycle edges removed until acyclic.

    W is not modified. ``dropped`` lists (i, j, weight) of the cycle edges removed after thresholding.
    """
    if not isinstance(W, torch.Tensor):
        raise TypeError(f"W must be a torch.Tensor, got {type(W).__name__}")
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"W must be a square (d, d) matrix, got shape {tuple(W.shape)}")
    if w_threshold < 0:
        raise ValueError(f"w_threshold must be >= 0, got {w_threshold}")
    Wn = W.detach().cpu().numpy().astype(np.float64, copy=True)
    Wn[np.abs(Wn) < w_threshold] = 0.0
    np.fill_diagonal(Wn, 0.0)                      # a self-loop is never part of a DAG
    Wn[~np.isfinite(Wn)] = 0.0
    G = nx.DiGraph()
    G.add_nodes_from(range(Wn.shape[0]))
    ii, jj = np.nonzero(Wn)
    G.add_edges_from(zip(ii.tolist(), jj.tolist()))
    dropped = []
    while True:
        try:
            cycle = nx.find_cycle(G)
        except nx.NetworkXNoCycle:
            break
        i, j = min(((u, v) for u, v in cycle), key=lambda e: abs(Wn[e[0], e[1]]))
        dropped.append((int(i), int(j), float(Wn[i, j])))
        Wn[i, j] = 0.0
        G.remove_edge(i, j)
    return torch.as_tensor(Wn, dtype=W.dtype, device=W.device), dropped
