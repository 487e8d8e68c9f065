r"""Random toll-pricing instances (Stackelberg pricing, Labbé–Marcotte–Savard) and their answer by enumeration.

    leader:    max_{T ∈ [0, T_hi]^A}  Σ_a T_a · (flow on arc a)                          (toll revenue)
    follower:  (q, r) ∈ argmin { Σ_p (base_p + T_a(p)) q_p + Σ_k out_k r_k :
                                 Σ_{p of k} q_p + r_k = demand_k,  Σ_{p on a} q_p <= cap_a,  q, r >= 0 }

Commodity k ships demand_k over the tolled arcs it may use (one pair p = (k, a) each, base cost base_p) or its
toll-free alternative (cost out_k, uncapacitated), so the follower always has an optimum. `value_at` solves the
follower LP at one T (scipy linprog / HiGHS) and, among its optima (the feasible points complementary to one
dual optimum: exact, no tolerance on the cost), takes the leader's best — the optimistic convention;
`enumerate_grid` maximizes that over a grid of T. Numpy/scipy only: the reference for the KKT route.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog


@dataclass
class TollInstance:
    k: np.ndarray        # commodity of each (commodity, arc) pair
    a: np.ndarray        # arc of each pair
    base: np.ndarray     # base cost of each pair
    out: np.ndarray      # toll-free alternative's cost per commodity
    demand: np.ndarray
    cap: np.ndarray      # capacity per tolled arc
    T_hi: float = 20.0

    @property
    def A(self) -> int:
        return len(self.cap)

    @property
    def K(self) -> int:
        return len(self.demand)

    def incidence(self):
        """(E_k, E_a): commodity × pair and arc × pair 0/1 matrices."""
        n = len(self.k)
        Ek, Ea = np.zeros((self.K, n)), np.zeros((self.A, n))
        Ek[self.k, np.arange(n)] = 1.0
        Ea[self.a, np.arange(n)] = 1.0
        return Ek, Ea


def random_toll_instance(A: int = 2, K: int = 4, seed: int = 0) -> TollInstance:
    """A tolled arcs, K commodities each allowed on about three arcs (at least one)."""
    rng = np.random.default_rng(seed)
    use = rng.random((K, A)) < min(1.0, 3.0 / A)
    use[np.arange(K), rng.integers(A, size=K)] = True
    k, a = np.nonzero(use)
    return TollInstance(k, a, rng.uniform(1, 8, len(k)), rng.uniform(8, 14, K), rng.uniform(1, 5, K),
                        rng.uniform(3, 10, A))


def value_at(inst: TollInstance, T: np.ndarray) -> float:
    """The leader's revenue at tolls T with the optimistic follower."""
    Ek, Ea = inst.incidence()
    n, K = len(inst.k), inst.K
    cost = np.concatenate([inst.base + Ea.T @ T, inst.out])
    A_eq = np.hstack([Ek, np.eye(K)])
    A_ub = np.hstack([Ea, np.zeros((inst.A, K))])
    f = linprog(cost, A_ub=A_ub, b_ub=inst.cap, A_eq=A_eq, b_eq=inst.demand, method="highs")
    if f.status != 0:
        raise RuntimeError(f"follower LP failed at T = {T}: {f.message}")
    bounds = [(0, 0) if rc > 1e-9 else (0, None) for rc in f.lower.marginals]
    full = np.abs(f.ineqlin.marginals) > 1e-9
    revenue = np.concatenate([Ea.T @ T, np.zeros(K)])
    best = linprog(-revenue, A_ub=A_ub[~full], b_ub=inst.cap[~full], A_eq=np.vstack([A_eq, A_ub[full]]),
                   b_eq=np.concatenate([inst.demand, inst.cap[full]]), bounds=bounds, method="highs")
    return -best.fun


def enumerate_grid(inst: TollInstance, step: float, top: float | None = None):
    """(best revenue, its T) over the grid {0, step, ..., top}^A (top defaults to T_hi)."""
    import itertools
    grid = np.arange(0.0, (inst.T_hi if top is None else top) + 1e-9, step)
    best, at = -np.inf, None
    for T in itertools.product(grid, repeat=inst.A):
        v = value_at(inst, np.array(T))
        if v > best:
            best, at = v, np.array(T)
    return best, at
