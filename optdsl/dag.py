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
