"""Modeling helpers for DAG-structured models: the linear-SEM scores and graph outputs.

``od.sem_loss(W, X)`` is the least-squares score (1/2n)‖X − XW‖²_F of a linear structural equation model
(``kind="logistic"`` gives the logistic score for binary data). Written with it, a model tells the DAG
backend where its data are, so data-based methods (TOPO swaps, CoLiDE) become available; any other smooth
objective (``od.fn`` over an MLP, ...) is fitted with the NOTEARS or log-det acyclicity constraint.
"""
from __future__ import annotations

import csv
from typing import Optional, Sequence

import numpy as np

from .errors import ModelError
from .solvers.io import atomic_write
from .expr.node import Constant, as_expr, op


def sem_loss(W, X, kind: str = "l2"):
    """Score of a linear SEM X = XW + noise: ``"l2"`` (1/2n)‖X − XW‖²_F, or ``"logistic"`` for binary X."""
    W = as_expr(W)
    X = np.asarray(X.detach().cpu().numpy() if hasattr(X, "detach") else X, dtype=float)
    if X.ndim != 2:
        raise ModelError(f"sem_loss: X must be an (n, d) data matrix, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ModelError("sem_loss: the data X contain NaN or inf")
    if W.shape != (X.shape[1], X.shape[1]):
        raise ModelError(f"sem_loss: W has shape {W.shape} but X has d = {X.shape[1]} columns")
    if kind not in ("l2", "logistic"):
        raise ModelError(f"sem_loss: kind must be 'l2' or 'logistic', got {kind!r}")
    if X.shape[0] < X.shape[1]:
        import warnings
        warnings.warn(f"sem_loss: fewer samples (n = {X.shape[0]}) than variables (d = {X.shape[1]}); "
                      "the graph is poorly identified", stacklevel=2)
    Xc = Constant(X, name="X")
    n = X.shape[0]
    if kind == "l2":
        e = (0.5 / n) * ((Xc - Xc @ W) ** 2).sum()
    else:
        M = Xc @ W
        e = (1.0 / n) * (op("logsumexp", op("stack", op("mul", 0.0, M), M, axis=0), axis=0) - Xc * M).sum()
    e.attrs["sem"] = {"X": X, "kind": kind}  # the DAG backend reads the data from here
    return e


def write_edges_csv(path: str, edges: Sequence, names: Optional[Sequence[str]] = None) -> None:
    atomic_write(path, lambda fh: _write_edges(fh, edges, names), binary=False)  # never a half-written file


def _write_edges(fh, edges: Sequence, names: Optional[Sequence[str]]) -> None:
    w = csv.writer(fh)
    w.writerow(["source", "target", "weight"])
    for i, j, wt in edges:
        w.writerow([names[i] if names is not None and isinstance(i, int) else i,
                    names[j] if names is not None and isinstance(j, int) else j, f"{wt:.6g}"])


def draw_graph_png(path: str, W: np.ndarray, names: Optional[Sequence[str]] = None) -> None:
    """A picture of the learned DAG (layered by topological generation)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx
    W = np.asarray(W)
    g = nx.DiGraph()
    labels = list(names) if names is not None else [str(i) for i in range(W.shape[0])]
    g.add_nodes_from(labels)
    for i, j in zip(*np.nonzero(W)):
        g.add_edge(labels[i], labels[j], weight=float(W[i, j]))
    for layer, nodes in enumerate(nx.topological_generations(g)):
        for node in nodes:
            g.nodes[node]["layer"] = layer
    pos = nx.multipartite_layout(g, subset_key="layer", align="horizontal")
    fig, ax = plt.subplots(figsize=(6, 5))
    colors = ["tab:blue" if g.edges[e]["weight"] > 0 else "tab:red" for e in g.edges]
    nx.draw_networkx(g, pos, ax=ax, node_color="white", edgecolors="black", edge_color=colors, arrows=True,
                     arrowsize=15)
    ax.set_axis_off()
    ax.set_title("learned DAG (blue: positive, red: negative weight)")
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)


# --- prior knowledge: forbidden / required edges, tiers -------------------------------------------------
def _edge_list(W, edges, what: str) -> list[tuple[int, int]]:
    d = W.shape[0]
    out = []
    for e in edges:
        try:
            i, j = (int(e[0]), int(e[1]))
        except (TypeError, ValueError, IndexError):
            raise ModelError(f"{what}: edges must be (i, j) pairs of node indices, got {e!r}") from None
        if not (0 <= i < d and 0 <= j < d) or i == j:
            raise ModelError(f"{what}: edge ({i}, {j}) is not an edge between two distinct nodes of "
                             f"{getattr(W, 'name', 'W')!r} (d = {d})")
        out.append((i, j))
    if not out:
        raise ModelError(f"{what}: no edges given")
    return out


def _zero_entries(W, pairs):
    rows, cols = (np.array(x) for x in zip(*pairs))
    return W[rows, cols] == 0


def forbid(W, edges):
    """Forbidden edges i → j: the constraint ``W[i, j] == 0`` for each pair (one vector constraint)."""
    W = as_expr(W)
    return _zero_entries(W, _edge_list(W, edges, "od.forbid"))


def require(W, edges):
    """Required edges i → j: j may not precede i (``W[j, i] == 0``), and the DAG backend keeps i → j in the
    learned graph whatever its weight (guaranteed by TOPO; other methods forbid the reverse edge only)."""
    W = as_expr(W)
    pairs = _edge_list(W, edges, "od.require")
    c = _zero_entries(W, [(j, i) for i, j in pairs])
    c.expr.attrs["required_edges"] = tuple(pairs)  # the DAG backend reads them here
    return c


def tiers(W, groups):
    """Tiers (a temporal/causal ordering of groups of nodes): no edge from a later tier into an earlier one,
    i.e. ``W[i, j] == 0`` whenever tier(i) > tier(j). Nodes in no group are unconstrained."""
    W = as_expr(W)
    d = W.shape[0]
    tier = {}
    for t, group in enumerate(groups):
        for k in group:
            k = int(k)
            if not 0 <= k < d:
                raise ModelError(f"od.tiers: node {k} is not a node of {getattr(W, 'name', 'W')!r} (d = {d})")
            if k in tier:
                raise ModelError(f"od.tiers: node {k} is in tier {tier[k]} and tier {t}")
            tier[k] = t
    pairs = [(i, j) for i in tier for j in tier if tier[i] > tier[j]]
    if not pairs:
        raise ModelError("od.tiers: give at least two non-empty tiers")
    return _zero_entries(W, pairs)
