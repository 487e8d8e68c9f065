"""A model-based ω tuner: Young's SOR theory fitted to the convergence rates seen along a sequence.

An optdsl extra beside the bandits of :mod:`.bandit` (not the paper's method). For a consistently ordered
matrix (5-point stencils in natural or red–black order, block-tridiagonal matrices) with Jacobi spectral
radius ``ρ``, the SOR iteration matrix has spectral radius (Young 1971)

    λ(ω, ρ) = ¼ (ωρ + √(ω²ρ² − 4(ω − 1)))²   for ω ≤ ω*(ρ) = 2 / (1 + √(1 − ρ²)),
    λ(ω, ρ) = ω − 1                          for ω ≥ ω*(ρ),

so a solve needing a residual reduction ``e^a`` (``a = ln(r_0/tol)``) costs about ``κ a / (−ln λ)`` sweeps.
Each solve of the sequence reveals more than its iteration count: the residual history gives the observed
rate ``λ̂`` (geometric mean over the second half of the sweeps). If ``λ̂ > (1 + margin)(ω − 1)`` the solve
*under*-relaxed and Young's relation inverts, ``ρ = (λ̂ + ω − 1) / (ω √λ̂)``; otherwise it *over*-relaxed and
only ``ρ ≤ ρ*(ω) = √(1 − (2/ω − 1)²)`` is known (a censored observation; the margin, 0.2, absorbs the
slower-than-(ω − 1) transients just above ω*). Each observed system ``s`` gives a predicted cost curve

    n̂_s(ω) = a_s · max(κ_s / (−ln λ(ω, ρ_s)),  κ_o / (−ln(ω − 1))),

``κ_s`` fitted so that ``n̂_s(ω_s)`` is its real count and ``κ_o`` the median over over-relaxed solves (they
all share ``λ = ω − 1``, so one constant fits that branch for every system; the max keeps the curve from
dipping below it near ω*, where real counts do not follow the asymptotic rate). A censored system's curve
is exact for ``ω ≥ ω_s`` (anchored at its count); below, its ``ρ_s`` is imputed by "redistribution to the
left" (the Kaplan–Meier idea for censored data): the mean curve of the uncensored systems with ``ρ`` below
its bound, topped up to unit weight by a pseudo-system with ``ω* = ω_s − step`` (so a context where every
solve so far over-relaxed tries a slightly smaller ω). Each round plays

    ω_t = argmin_ω Σ_{s<t} w_s n̂_s(ω),   w_s = γ^{t−1−s} · K((c_s − c_t)/h),

follow-the-leader on model-predicted costs (no exploration rounds, so at T ≈ 100 it pays far less than a
bandit that must try each arm; the grid can be fine at no cost); ``γ ≤ 1`` forgets when the sequence drifts,
and with a context ``c`` a Gaussian kernel ``K`` of bandwidth ``h`` (a fraction of the context range) makes
it contextual. For matrices that are not consistently ordered the curves are a surrogate anchored at real
counts; the bandits of :mod:`.bandit` carry the regret guarantees.

Reference: D. M. Young, *Iterative Solution of Large Linear Systems*, 1971, ch. 6; Y. Saad, *Iterative
Methods for Sparse Linear Systems*, 2nd ed., §4.2.5; E. L. Kaplan, P. Meier, JASA 1958 (censored data);
the bandit setting of M. Khodak et al., "Learning to Relax", ICLR 2024.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

__all__ = ["sor_rate", "rho_from_rate", "tail_rate", "YoungModel"]


def sor_rate(omega, rho: float) -> np.ndarray:
    """Young's spectral radius of SOR(ω) for Jacobi radius ``rho`` (vectorised over ``omega``)."""
    w = np.asarray(omega, dtype=np.float64)
    r = min(max(float(rho), 0.0), 1.0 - 1e-12)
    disc = (w * r) ** 2 - 4.0 * (w - 1.0)
    lam = np.where(disc > 0, 0.25 * (w * r + np.sqrt(np.maximum(disc, 0.0))) ** 2, np.abs(w - 1.0))
    return np.clip(np.maximum(lam, np.abs(w - 1.0)), 1e-12, 1.0 - 1e-12)


def rho_from_rate(omega: float, lam: float) -> float:
    """Invert Young's relation on the under-relaxed branch: ``ρ = (λ + ω − 1) / (ω √λ)``."""
    return float(min(max((lam + omega - 1.0) / (omega * math.sqrt(lam)), 0.0), 1.0 - 1e-12))


def rho_star(omega: float) -> float:
    """The Jacobi radius for which ``omega`` is optimal (``ω*⁻¹``); 0 for ω ≤ 1."""
    if omega <= 1.0:
        return 0.0
    return math.sqrt(max(1.0 - (2.0 / omega - 1.0) ** 2, 0.0))


def tail_rate(residuals: Sequence[float]) -> Optional[float]:
    """Observed contraction per sweep over the second half of a residual history ``r_0 … r_n`` (None if
    fewer than 4 sweeps or non-positive / non-finite residuals)."""
    r = [float(v) for v in residuals]
    n = len(r) - 1
    k0 = n // 2
    if n < 4 or not all(math.isfinite(v) and v > 0 for v in (r[k0], r[n])):
        return None
    return (r[n] / r[k0]) ** (1.0 / (n - k0))


class YoungModel:
    """The bookkeeping and choice rule of the Young tuner (pure numpy; no solver or RNG inside).

    ``observe(arm, iterations, rate, reduction)`` records one solved system (``reduction`` = ln of the
    residual reduction the solve needed, ``ln(r_0/tol)``); ``costs()`` is the discounted predicted total
    cost of every grid ω; ``choose()`` its argmin (the grid point nearest ``start`` before any data).
    """

    def __init__(self, omegas: Sequence[float], *, start: float = 1.5, discount: float = 1.0,
                 margin: float = 0.2, context_range: Optional[Sequence[float]] = None, bandwidth: float = 0.05,
                 step: float = 0.1):
        self.step = float(step)
        self.range = None if context_range is None else [float(v) for v in context_range]
        self.bandwidth = float(bandwidth)
        self.contexts: list = []
        self.omegas = np.asarray(omegas, dtype=np.float64)
        self.start, self.discount, self.margin = float(start), float(discount), float(margin)
        self.obs: list[list] = []   # [arm, iterations, rho or None (over-relaxed: censored), reduction]
        self._lam: dict[float, np.ndarray] = {}
        self._over = -np.log(np.clip(np.abs(self.omegas - 1.0), 1e-12, 1 - 1e-12))   # −ln(ω − 1)

    def observe(self, arm: int, iterations: float, rate: Optional[float], reduction: float,
                context: Optional[float] = None) -> None:
        w = float(self.omegas[arm])
        if rate is None or not 0 < rate < 1 or not reduction > 0:
            return   # too short or diverged: nothing reliable about ρ
        self.contexts.append(None if context is None else float(context))
        over = w > 1.0 and rate <= (1.0 + self.margin) * (w - 1.0)
        self.obs.append([int(arm), float(iterations), None if over else rho_from_rate(w, rate), float(reduction)])

    def _neglog(self, rho: float) -> np.ndarray:
        """−ln λ(ω, ρ) on the grid (cached: each observed ρ is reused every round)."""
        if rho not in self._lam:
            self._lam[rho] = -np.log(sor_rate(self.omegas, rho))
        return self._lam[rho]

    def costs(self, context: Optional[float] = None) -> Optional[np.ndarray]:
        if not self.obs:
            return None
        T, d = len(self.obs), len(self.omegas)
        wts = self.discount ** (T - 1 - np.arange(T))
        if self.range is not None and context is not None:   # contextual: Gaussian kernel in the context
            h = self.bandwidth * (self.range[1] - self.range[0])
            wts = wts * np.exp(-0.5 * ((np.array(self.contexts, float) - float(context)) / h) ** 2) + 1e-12
        arms = np.array([o[0] for o in self.obs])
        n = np.array([o[1] for o in self.obs])
        red = np.array([o[3] for o in self.obs])
        cen = np.array([o[2] is None for o in self.obs])
        # sweeps per unit of ln-reduction times the rate: κ = n (−ln λ) / ln(r0/tol); over-relaxed systems all
        # share λ = ω − 1, so their median κ_o is the over-relaxed branch of every curve
        kap_o = float(np.median(n[cen] * self._over[arms[cen]] / red[cen])) if cen.any() else 1.0
        over = kap_o / self._over
        known = np.flatnonzero(~cen)
        unit = np.zeros((len(known), d))   # predicted sweeps per unit reduction, per known system
        for i, k in enumerate(known):
            nl = self._neglog(self.obs[k][2])
            kap = n[k] * nl[arms[k]] / red[k]
            unit[i] = np.maximum(kap / nl, over)
        total = wts[known] * red[known] @ unit if len(known) else np.zeros(d)
        rhos = np.array([self.obs[k][2] for k in known])
        for arm in np.unique(arms[cen]):   # same arm ⇒ same bound: impute once per arm
            g = cen & (arms == arm)
            above = np.arange(d) >= arm   # exact there: λ = ω − 1, anchored at the real counts
            total[above] += (wts[g] * n[g]).sum() * self._over[arm] / self._over[above]
            below = rhos < rho_star(self.omegas[arm]) if len(known) else np.zeros(0, bool)
            # pseudo-donor: a system a little easier than the bound (ω* = ω − step); it carries the weight the
            # real donors lack (< 1 in total only with a context kernel), so unexplored easy contexts step down
            pseudo = np.maximum(kap_o / self._neglog(rho_star(self.omegas[arm] - self.step)), over)
            mass = wts[known][below].sum() if below.any() else 0.0
            curve = (wts[known][below] @ unit[below] + max(1.0 - mass, 0.0) * pseudo) / max(mass, 1.0)
            total[~above] += (wts[g] * red[g]).sum() * curve[~above]
        return total

    def choose(self, context: Optional[float] = None) -> int:
        c = self.costs(context)
        if c is None:
            return int(np.argmin(np.abs(self.omegas - self.start)))
        return int(np.argmin(c))

    def state_dict(self) -> dict:
        return {"start": self.start, "discount": self.discount, "margin": self.margin, "obs": self.obs,
                "context_range": self.range, "bandwidth": self.bandwidth, "step": self.step, "contexts": self.contexts}

    def load_state_dict(self, state: dict) -> None:
        self.start, self.discount, self.margin = float(state["start"]), float(state["discount"]), float(state["margin"])
        self.obs = [[int(a), float(n), None if r is None else float(r), float(L)] for a, n, r, L in state["obs"]]
        self.range, self.bandwidth, self.step = state["context_range"], float(state["bandwidth"]), float(state["step"])
        self.contexts = [None if c is None else float(c) for c in state["contexts"]]
