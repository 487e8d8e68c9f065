r"""TOPO with prior knowledge: forbidden edges (a mask), required edges, and tiers.

The swap search of `topo` over topological orders π, with the inner least-squares problem restricted to the
allowed edges:

    W(π) = argmin_W ½ tr((I − W)ᵀ C (I − W))   s.t. W_ij = 0 unless i precedes j in π and allowed_ij,

which still decouples into one OLS regression per node j on its *allowed* predecessors P_j(π):
Q(π) = ½ Σ_j (C_jj − C_jP C_PP⁻¹ C_Pj). A swap of positions p < q changes P_j(π) only for the nodes at
positions p..q, so a candidate is scored from those regressions alone. Tiers lower to forbidden edges (from
a later tier to an earlier one), so the masked score already gives an order against the tiers no gain; a
required edge i → j is an order constraint (i before j: swaps that break one are not tried, the initial
order honours them) and is kept through the final threshold.

The initial order is greedy: repeatedly take the node with the smallest residual variance given the allowed
parents among the nodes taken (the masked version of `topo.greedy_order`), among nodes whose required
parents are all taken. Candidate swaps come from the same acyclicity gradient ranking as `topo`.

Signs and magnitude bounds (lower ≤ W ≤ upper, 0 inside) keep the decoupling: each node's regression becomes a
bounded least-squares problem (closed form while no bound is active, else scipy's BVLS on the Cholesky factor),
so an order's score is the constrained score and the returned W meets the bounds exactly.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from optdsl.solvers.common import Budget, SolverOutput, Status
from optdsl.solvers.dag.acyclicity import h_expm
from optdsl.solvers.dag.topo import _candidate_sizes


def _fit(C: np.ndarray, j: int, P: list, box=None):
    """(residual variance, weights) of node j regressed on the nodes P (numpy: these systems are small and
    many). ``box`` = (lower, upper) (d, d) bounds on W: where one is active on P → j the regression is the
    bounded least squares min ½‖Lᵀw − L⁻¹c‖² over lower ≤ w ≤ upper (C_PP = LLᵀ, scipy's lsq_linear)."""
    if not P:
        return float(C[j, j]), np.zeros(0)
    c = C[P, j]
    CPP = C[np.ix_(P, P)]
    w = np.linalg.solve(CPP, c)
    if box is not None:
        lo, hi = box[0][P, j], box[1][P, j]
        if np.any(w < lo) or np.any(w > hi):
            from scipy.optimize import lsq_linear
            L = np.linalg.cholesky(CPP)
            w = np.clip(lsq_linear(L.T, np.linalg.solve(L, c), bounds=(lo, hi), method="bvls").x, lo, hi)
            return float(C[j, j] - 2 * c @ w + w @ CPP @ w), w
    return float(C[j, j] - c @ w), w


def _resid(C: np.ndarray, j: int, P: list, box=None) -> float:
    return _fit(C, j, P, box)[0]


def _node_terms(C, order: list, allowed: np.ndarray, positions, box=None) -> dict:
    return {k: _resid(C, order[k], [i for i in order[:k] if allowed[i, order[k]]], box) for k in positions}


def masked_W(C: torch.Tensor, order: list, allowed: np.ndarray, box=None) -> torch.Tensor:
    """W(π): (bounded) least squares of each node on its allowed predecessors in π."""
    W = torch.zeros_like(C)
    Cn = C.detach().cpu().numpy() if box is not None else None
    for k, j in enumerate(order):
        P = [i for i in order[:k] if allowed[i, j]]
        if P:
            idx = torch.as_tensor(P, device=C.device)
            if box is None:
                W[idx, j] = torch.linalg.solve(C[idx][:, idx], C[idx, j])
            else:
                W[idx, j] = torch.as_tensor(_fit(Cn, j, P, box)[1], dtype=C.dtype, device=C.device)
    return W


def _greedy(C, allowed, before, box=None) -> list:
    d = C.shape[0]
    taken, order = np.zeros(d, bool), []
    for _ in range(d):
        ready = [k for k in range(d) if not taken[k] and not np.any(before[:, k] & ~taken)]
        scores = [_resid(C, k, [i for i in order if allowed[i, k]], box) for k in ready]
        k = ready[int(np.argmin(scores))]
        order.append(k)
        taken[k] = True
    return order


def _breaks(order: list, p: int, q: int, before: np.ndarray) -> bool:
    """Whether swapping positions p < q puts a node after one it must precede."""
    a, b = order[p], order[q]   # a moves after order[p+1..q], b before order[p..q-1]
    return bool(before[a, order[p + 1:q + 1]].any() or before[order[p:q], b].any())


def topo_prior(X: Optional[torch.Tensor] = None, *, allowed: Optional[np.ndarray] = None, required=(),
               cov: Optional[torch.Tensor] = None, w_threshold: Optional[float] = 0.3, max_iter: int = 1000,
               tol: float = 1e-12, size_small: Optional[int] = None, time_limit: Optional[float] = None,
               callback=None, device=None, dtype=torch.float64, lower: Optional[np.ndarray] = None,
               upper: Optional[np.ndarray] = None) -> SolverOutput:
    """Masked TOPO swap search. ``allowed[i, j]`` False forbids i → j; ``required``: edges (i, j) kept;
    ``lower`` / ``upper``: (d, d) bounds on W containing 0 (signs: lower = 0 or upper = 0), each order scored by
    bounded least squares. x: the thresholded, support-refitted W (a DAG inside the mask and the bounds
    containing the required edges)."""
    if cov is None:
        Xc = X - X.mean(dim=0, keepdim=True)
        cov = Xc.T @ Xc / X.shape[0]
    C = cov.to(device=device, dtype=dtype)
    d = C.shape[0]
    allowed = np.ones((d, d), bool) if allowed is None else np.asarray(allowed, bool).copy()
    np.fill_diagonal(allowed, False)
    before = np.zeros((d, d), bool)
    for i, j in required:
        if not allowed[i, j]:
            raise ValueError(f"edge {i} -> {j} is both required and forbidden")
        before[i, j] = True
    import networkx as nx
    if not nx.is_directed_acyclic_graph(nx.DiGraph(before)):
        raise ValueError("the required edges contain a cycle")
    box = None
    if lower is not None or upper is not None:
        box = (np.full((d, d), -np.inf) if lower is None else np.asarray(lower, float),
               np.full((d, d), np.inf) if upper is None else np.asarray(upper, float))
        if np.any(box[0] > 0) or np.any(box[1] < 0):
            raise ValueError("bounds on W must contain 0 (lower <= 0 <= upper)")
    size_small = size_small or _candidate_sizes(d)[0]
    Cn = C.detach().cpu().numpy()
    order = _greedy(Cn, allowed, before, box)
    terms = _node_terms(Cn, order, allowed, range(d), box)
    score = 0.5 * sum(terms.values())
    budget = Budget(max_iter, time_limit, callback)
    counts = {"f": 1, "swaps": 0}
    iu = np.triu_indices(d, 1)
    status = None
    for it in budget:
        W = masked_W(C, order, allowed, box)
        G = torch.linalg.inv(torch.eye(d, dtype=dtype, device=C.device) - W.abs()).T.cpu().numpy()
        # pairs (p < q): moving order[q] before order[p]; rank by the acyclicity gradient as in topo, and
        # skip swaps that gain nothing the mask allows or break a required order
        jj, ii = np.asarray(order)[iu[0]], np.asarray(order)[iu[1]]
        rank = np.argsort(G[ii, jj], kind="stable")
        best = None
        tried = 0
        for r in rank:
            p, q = int(iu[0][r]), int(iu[1][r])
            if not allowed[order[q], order[p]] or _breaks(order, p, q, before):
                continue
            new = list(order)
            new[p], new[q] = new[q], new[p]
            changed = _node_terms(Cn, new, allowed, range(p, q + 1), box)
            delta = 0.5 * sum(changed[k] - terms[k] for k in changed)
            counts["f"] += 1
            tried += 1
            if delta < -tol * max(1.0, abs(score)) and (best is None or delta < best[0]):
                best = (delta, new, changed)
            if tried >= size_small:
                break
        if best is not None:
            delta, order, changed = best
            terms.update(changed)
            score += delta
            counts["swaps"] += 1
        if budget.report(it, x=None, objective=score):
            break
        if best is None:
            status = Status.LOCALLY_OPTIMAL
            break
    status = status or budget.status or Status.LOCALLY_OPTIMAL
    W_order = masked_W(C, order, allowed, box)
    W = W_order
    keep = torch.zeros((d, d), dtype=torch.bool, device=C.device)
    for i, j in required:
        keep[i, j] = True
    if w_threshold:
        W = _support_refit(C, W_order, w_threshold, keep, box=box)
    A = torch.eye(d, dtype=dtype, device=C.device) - W
    objective = float(0.5 * (A * (C @ A)).sum())
    msg = "no improving swap among the candidates" if status == Status.LOCALLY_OPTIMAL else f"stopped: {status.value}"
    return SolverOutput(x=W, status=status, objective=objective, iterations=len(budget.history), message=msg,
                        certificates={"h(W)": float(h_expm(W)[0])}, counts=counts, history=budget.history,
                        solve_time=budget.elapsed, extras={"order": list(order), "loss": score, "W_order": W_order})


def _support_refit(C, W, w_threshold, keep, rounds: int = 10, box=None):
    """Threshold (never a required edge), refit (bounded) least squares on the kept support, until the support
    is stable."""
    W = torch.where((W.abs() >= w_threshold) | keep, W, torch.zeros_like(W))
    Cn = C.detach().cpu().numpy() if box is not None else None
    for _ in range(rounds):
        S = (W != 0) | keep
        Wn = torch.zeros_like(W)
        for j in torch.nonzero(S.any(0)).reshape(-1).tolist():
            P = torch.nonzero(S[:, j]).reshape(-1)
            if box is None:
                Wn[P, j] = torch.linalg.solve(C[P][:, P], C[P, j])
            else:
                Wn[P, j] = torch.as_tensor(_fit(Cn, j, P.tolist(), box)[1], dtype=C.dtype, device=C.device)
        Wn = torch.where((Wn.abs() >= w_threshold) | keep, Wn, torch.zeros_like(Wn))
        done = bool((((Wn != 0) | keep) == S).all())
        W = Wn
        if done:
            break
    return W
