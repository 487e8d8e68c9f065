"""Online tuning of SOR's relaxation factor ω across a sequence of linear systems ("Learning to Relax").

Each round t a tuner picks an arm ``I_t`` of a grid ``ω_1 < … < ω_d`` (optionally seeing a scalar context
``c_t`` of the system, e.g. its diagonal shift), SOR runs with ``ω_{I_t}`` and the tuner observes only the
iteration count (its loss). The goal is total cost close to the best fixed ω in hindsight (regret
sublinear in T), or, with context, close to the best context-dependent policy.

Tuners (``select(context) -> arm``, ``update(arm, loss, context, bound)``):

* :class:`TsallisINF` — FTRL with the ½-Tsallis entropy (Zimmert & Seldin 2021), as in the authors'
  ``learners/TsallisINF.m``: with importance-weighted cumulative loss estimates ``K_i`` and scale
  ``s = mean(losses) − 1``, learning rate ``η_t = 2/√t``, play ``p_i = 4 / (η_t (K_i/s − x))²`` where the
  normaliser ``x`` (``Σp = 1``) is found by Newton steps ``x ← x − (Σp − 1)/(η Σ p^{3/2})``; after playing
  ``I`` with loss ℓ: ``K_I += (ℓ − 1)/p_I``.
* :class:`Exp3` — exponential weights on importance-weighted losses ``ℓ/bound ∈ [0, 1]``,
  ``η_t = sqrt(ln d / (d t))`` (anytime Exp3; Auer et al. 2002).
* :class:`BinnedTsallisINF` — the contextual ``TsallisINFCB``: the context interval [a, b] is cut into
  ``m`` bins with centres ``a + (b − a)(i − ½)/m``; one Tsallis-INF per bin; a round goes to the nearest
  centre.
* :class:`ChebCB` — SquareCB / inverse-gap weighting over a Chebyshev regression of each arm's cost on
  the context (``learners/ChebCB.m``): ``ŷ_i = θ_i·[T_0(u) … T_{m−1}(u)]``, ``u = 2(c − a)/(b − a) − 1``;
  ``p_i = 1/(d + η(ŷ_i − ŷ_*))`` for ``i ≠ i* = argmin ŷ``, the rest on ``i*``;
  ``η = sqrt(d m² T / (d m³ + T))``. (We refit θ_i by ridge least squares instead of the reference code's
  box-constrained least squares.)
* :class:`SmoothCB` — an optdsl extra: one ridge regression of ``log(cost)`` on Chebyshev features of
  (ω, context) shared by all arms, with ChebCB's inverse-gap weighting; far less exploration at T ≈ 100.
* :class:`YoungTuner` — an optdsl extra, not a bandit: Young's SOR theory fitted to the convergence rates
  of the residual histories (:mod:`.young`); follow-the-leader on model-predicted costs, no exploration
  rounds; contextual (kernel-weighted in the context) when ``context_range`` is given.
* :class:`FixedArm` — always the same ω (a baseline, and ``--omega VALUE``).

:class:`SequenceSolver` wraps a tuner around :func:`optdsl.solvers.linalg.sor.solve`: warm starts from the
previous solution, a *cost cap* per trial (a bad arm is stopped after ``cap`` iterations and its loss is the
cap; the solve then finishes with the tuner's current favourite arm from where it stopped), and JSON
persistence of the whole state, random generator included.

Reference: M. Khodak, E. Chow, M.-F. Balcan, A. Talwalkar, "Learning to Relax: Setting Solver Parameters
Across a Sequence of Linear System Instances", ICLR 2024 (arXiv 2310.02246); J. Zimmert, Y. Seldin,
"Tsallis-INF: An Optimal Algorithm for Stochastic and Adversarial Bandits", JMLR 2021; D. Foster,
A. Rakhlin, "Beyond UCB" (SquareCB), ICML 2020.
"""
from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from optdsl.solvers.common import Callback, SolverOutput, Status
from ..io import atomic_write, locked
from optdsl.solvers.linalg import sor
from optdsl.solvers.linalg.young import YoungModel, tail_rate

__all__ = ["TsallisINF", "Exp3", "BinnedTsallisINF", "ChebCB", "FixedArm", "SmoothCB", "YoungTuner",
           "make_tuner", "tuner_from_state", "read_state_file", "TunerFileError",
           "default_omegas", "SequenceSolver"]


def default_omegas(n: int = 12, low: float = 1.0, high: float = 1.95) -> list[float]:
    """A grid of ``n`` relaxation factors evenly spaced in [low, high] (the paper's range is [1, 1.95])."""
    return [float(w) for w in np.linspace(low, high, n)]


def _rng_state(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


def _rng_from_state(state: dict) -> np.random.Generator:
    bg = getattr(np.random, state["bit_generator"])()
    bg.state = state
    return np.random.Generator(bg)


class _Tuner:
    """Common plumbing: an own ``numpy`` generator (seeded) and JSON-able state."""

    kind = "base"
    contextual = False

    def __init__(self, n_arms: int, seed: Optional[int] = None):
        if int(n_arms) < 1:
            raise ValueError(f"n_arms must be >= 1, got {n_arms}")
        self.n_arms = int(n_arms)
        self.rng = np.random.default_rng(seed)
        self.t = 0  # completed rounds

    def probabilities(self, context: Optional[float] = None) -> np.ndarray:
        raise NotImplementedError

    def select(self, context: Optional[float] = None) -> int:
        """Sample the arm to play this round."""
        p = self.probabilities(context)
        return int(self.rng.choice(self.n_arms, p=p))

    def best_arm(self, context: Optional[float] = None) -> int:
        """The arm the tuner currently favours (highest probability): used for fallbacks and reporting."""
        return int(np.argmax(self.probabilities(context)))

    def update(self, arm: int, loss: float, context: Optional[float] = None, bound: Optional[float] = None):
        raise NotImplementedError

    def _check(self, arm: int, loss: float):
        if not 0 <= int(arm) < self.n_arms:
            raise ValueError(f"arm must be in [0, {self.n_arms}), got {arm}")
        if not (math.isfinite(loss) and loss >= 0):
            raise ValueError(f"loss must be a finite number >= 0, got {loss}")

    def state_dict(self) -> dict:
        return {"kind": self.kind, "n_arms": self.n_arms, "t": self.t, "rng": _rng_state(self.rng)}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != self.kind or int(state.get("n_arms", -1)) != self.n_arms:
            raise ValueError(f"state is for a {state.get('kind')} tuner with {state.get('n_arms')} arms, not a "
                             f"{self.kind} tuner with {self.n_arms} arms")
        self.t = int(state["t"])
        self.rng = _rng_from_state(state["rng"])


class TsallisINF(_Tuner):
    """½-Tsallis-INF bandit with the authors' loss scaling; ``eta_scale`` = 2 gives ``η_t = 2/√t``."""

    kind = "tsallis"

    def __init__(self, n_arms: int, *, eta_scale: float = 2.0, newton_steps: int = 20, seed: Optional[int] = None):
        super().__init__(n_arms, seed)
        if not eta_scale > 0:
            raise ValueError(f"eta_scale must be > 0, got {eta_scale}")
        self.eta_scale, self.newton_steps = float(eta_scale), int(newton_steps)
        self.K = np.zeros(self.n_arms)       # importance-weighted cumulative (loss - 1)
        self.loss_sum, self.n_losses = 0.0, 0

    def _scale(self) -> float:
        s = self.loss_sum / self.n_losses - 1.0 if self.n_losses else 1.0
        return s if s > 0 else 1.0

    def probabilities(self, context: Optional[float] = None) -> np.ndarray:
        eta = self.eta_scale / math.sqrt(self.t + 1)
        L = self.K / self._scale()
        # Start where the best arm alone has p = 1 (Σp ≥ 1); Newton on the convex increasing Σp(x) − 1 then
        # decreases x monotonically to the root, never crossing the pole at min L.
        x = L.min() - 2.0 / eta
        for _ in range(self.newton_steps):
            p = 4.0 / (eta * (L - x)) ** 2
            x -= (p.sum() - 1.0) / (eta * np.sum(p ** 1.5))
        p = 4.0 / (eta * (L - x)) ** 2
        if not np.all(np.isfinite(p)) or np.any(p <= 0):
            return np.full(self.n_arms, 1.0 / self.n_arms)
        return p / p.sum()

    def update(self, arm: int, loss: float, context: Optional[float] = None, bound: Optional[float] = None):
        """Record the loss (iteration count) of ``arm``; importance weight uses this round's probabilities."""
        self._check(arm, loss)
        p = self.probabilities(context)[arm]
        self.K[arm] += (loss - 1.0) / p
        self.loss_sum += float(loss)
        self.n_losses += 1
        self.t += 1

    def state_dict(self) -> dict:
        return {**super().state_dict(), "eta_scale": self.eta_scale, "newton_steps": self.newton_steps,
                "K": self.K.tolist(), "loss_sum": self.loss_sum, "n_losses": self.n_losses}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.eta_scale, self.newton_steps = float(state["eta_scale"]), int(state["newton_steps"])
        self.K = np.asarray(state["K"], dtype=np.float64)
        self.loss_sum, self.n_losses = float(state["loss_sum"]), int(state["n_losses"])


class Exp3(_Tuner):
    """Anytime Exp3 on losses normalised by ``bound`` (the round's cost cap; else the largest loss seen)."""

    kind = "exp3"

    def __init__(self, n_arms: int, *, seed: Optional[int] = None):
        super().__init__(n_arms, seed)
        self.Lhat = np.zeros(self.n_arms)
        self.max_loss = 0.0

    def probabilities(self, context: Optional[float] = None) -> np.ndarray:
        eta = math.sqrt(math.log(max(self.n_arms, 2)) / (self.n_arms * (self.t + 1)))
        w = np.exp(-eta * (self.Lhat - self.Lhat.min()))
        return w / w.sum()

    def update(self, arm: int, loss: float, context: Optional[float] = None, bound: Optional[float] = None):
        self._check(arm, loss)
        self.max_loss = max(self.max_loss, float(loss))
        b = float(bound) if bound else self.max_loss
        p = self.probabilities(context)[arm]
        self.Lhat[arm] += min(loss / b, 1.0) / p if b > 0 else 0.0
        self.t += 1

    def state_dict(self) -> dict:
        return {**super().state_dict(), "Lhat": self.Lhat.tolist(), "max_loss": self.max_loss}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.Lhat = np.asarray(state["Lhat"], dtype=np.float64)
        self.max_loss = float(state["max_loss"])


def _check_range(context_range) -> tuple[float, float]:
    if context_range is None:
        raise ValueError("a contextual tuner needs context_range=(a, b), the interval the contexts live in")
    a, b = (float(v) for v in context_range)
    if not b > a:
        raise ValueError(f"context_range must satisfy a < b, got {context_range}")
    return a, b


def _need_context(context) -> float:
    if context is None:
        raise ValueError("this tuner is contextual: pass context=<float> (e.g. the system's diagonal shift)")
    c = float(context)
    if not math.isfinite(c):
        raise ValueError(f"context must be finite, got {context}")
    return c


class BinnedTsallisINF(_Tuner):
    """Contextual Tsallis-INF (``TsallisINFCB``): one Tsallis-INF per context bin, nearest bin centre."""

    kind = "binned"
    contextual = True

    def __init__(self, n_arms: int, *, context_range: Sequence[float], n_bins: int = 4, eta_scale: float = 2.0,
                 seed: Optional[int] = None):
        super().__init__(n_arms, seed)
        self.a, self.b = _check_range(context_range)
        if int(n_bins) < 1:
            raise ValueError(f"n_bins must be >= 1, got {n_bins}")
        self.n_bins = int(n_bins)
        self.centres = self.a + (self.b - self.a) * (np.arange(self.n_bins) + 0.5) / self.n_bins
        self.bins = [TsallisINF(n_arms, eta_scale=eta_scale) for _ in range(self.n_bins)]

    def bin_of(self, context: float) -> int:
        """Index of the bin centre nearest to ``context`` (contexts outside [a, b] go to the end bins)."""
        return int(np.argmin(np.abs(self.centres - _need_context(context))))

    def probabilities(self, context: Optional[float] = None) -> np.ndarray:
        return self.bins[self.bin_of(context)].probabilities()

    def update(self, arm: int, loss: float, context: Optional[float] = None, bound: Optional[float] = None):
        self.bins[self.bin_of(context)].update(arm, loss, bound=bound)
        self.t += 1

    def state_dict(self) -> dict:
        return {**super().state_dict(), "context_range": [self.a, self.b], "n_bins": self.n_bins,
                "bins": [b.state_dict() for b in self.bins]}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.a, self.b = state["context_range"]
        self.n_bins = int(state["n_bins"])
        self.centres = self.a + (self.b - self.a) * (np.arange(self.n_bins) + 0.5) / self.n_bins
        self.bins = [TsallisINF(self.n_arms) for _ in range(self.n_bins)]
        for b, s in zip(self.bins, state["bins"]):
            b.load_state_dict(s)


class ChebCB(_Tuner):
    """SquareCB with per-arm Chebyshev regression of the (mean-normalised) cost on the context."""

    kind = "chebcb"
    contextual = True

    def __init__(self, n_arms: int, *, context_range: Sequence[float], degree: int = 2, horizon: int = 100,
                 ridge: float = 1e-3, seed: Optional[int] = None):
        super().__init__(n_arms, seed)
        self.a, self.b = _check_range(context_range)
        self.m = int(degree) + 1
        self.horizon, self.ridge = int(horizon), float(ridge)
        self.data: list[list[tuple[float, float]]] = [[] for _ in range(self.n_arms)]  # (context, loss)
        self.loss_sum = 0.0

    def _phi(self, c: np.ndarray) -> np.ndarray:
        u = np.clip(2.0 * (np.asarray(c, float) - self.a) / (self.b - self.a) - 1.0, -1.0, 1.0)
        return np.polynomial.chebyshev.chebvander(u, self.m - 1)

    def predict(self, context: float) -> np.ndarray:
        """Predicted cost of every arm at ``context``, in units of the mean observed cost (untried arms: 0)."""
        c = _need_context(context)
        scale = self.loss_sum / self.t if self.t else 1.0
        phi = self._phi([c])[0]
        yhat = np.zeros(self.n_arms)
        for i, rows in enumerate(self.data):
            if rows:
                X = self._phi([r[0] for r in rows])
                y = np.array([r[1] for r in rows]) / scale
                theta = np.linalg.solve(X.T @ X + self.ridge * np.eye(self.m), X.T @ y)
                yhat[i] = phi @ theta
        return yhat

    def probabilities(self, context: Optional[float] = None) -> np.ndarray:
        yhat = self.predict(context)
        d, m, T = self.n_arms, self.m, max(self.horizon, self.t + 1)
        eta = math.sqrt(d * m * m * T / (d * m ** 3 + T))
        best = int(np.argmin(yhat))
        p = 1.0 / (d + eta * (yhat - yhat[best]))
        p[best] = 0.0
        p[best] = max(1.0 - p.sum(), 0.0)
        return p / p.sum()

    def update(self, arm: int, loss: float, context: Optional[float] = None, bound: Optional[float] = None):
        self._check(arm, loss)
        self.data[arm].append((_need_context(context), float(loss)))
        self.loss_sum += float(loss)
        self.t += 1

    def state_dict(self) -> dict:
        return {**super().state_dict(), "context_range": [self.a, self.b], "degree": self.m - 1,
                "horizon": self.horizon, "ridge": self.ridge, "data": self.data, "loss_sum": self.loss_sum}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.a, self.b = state["context_range"]
        self.m, self.horizon, self.ridge = int(state["degree"]) + 1, int(state["horizon"]), float(state["ridge"])
        self.data = [[(float(c), float(l)) for c, l in rows] for rows in state["data"]]
        self.loss_sum = float(state["loss_sum"])


class FixedArm(_Tuner):
    """Always plays ``arm`` (a fixed ω)."""

    kind = "fixed"

    def __init__(self, n_arms: int, arm: int = 0, *, seed: Optional[int] = None):
        super().__init__(n_arms, seed)
        if not 0 <= int(arm) < self.n_arms:
            raise ValueError(f"arm must be in [0, {self.n_arms}), got {arm}")
        self.arm = int(arm)

    def probabilities(self, context: Optional[float] = None) -> np.ndarray:
        p = np.zeros(self.n_arms)
        p[self.arm] = 1.0
        return p

    def select(self, context: Optional[float] = None) -> int:
        return self.arm

    def update(self, arm: int, loss: float, context: Optional[float] = None, bound: Optional[float] = None):
        self._check(arm, loss)
        self.t += 1

    def state_dict(self) -> dict:
        return {**super().state_dict(), "arm": self.arm}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.arm = int(state["arm"])


class SmoothCB(_Tuner):
    """Contextual bandit with a cost model shared across arms (an optdsl extra, not the paper's method).

    ChebCB fits each arm separately, so every arm must be tried a few times per context region — at
    T ≈ 100 rounds that exploration costs more than it saves. Iteration counts are smooth in (ω, context)
    away from the kink at ω*, so SmoothCB fits **one** ridge regression of ``log(cost)`` on tensor-product
    Chebyshev features ``T_i(u_ω) T_j(u_c)`` (``i ≤ degree_omega``, ``j ≤ degree_context``; without
    ``context_range`` only the ω part) and explores by the same inverse-gap weighting as ChebCB,
    ``p_i = 1/(d + η(ŷ_i − ŷ_*))`` with costs in units of the mean cost. ``eta`` default 200 was chosen
    on the shifted-Laplacian benchmark (the ChebCB formula's η ≈ 5 explores too much at T ≈ 100).
    """

    kind = "smooth"

    def __init__(self, n_arms: int, *, omegas: Sequence[float], context_range: Optional[Sequence[float]] = None,
                 degree_omega: int = 3, degree_context: int = 2, eta: float = 200.0, ridge: float = 1e-3,
                 seed: Optional[int] = None):
        super().__init__(n_arms, seed)
        if len(omegas) != self.n_arms:
            raise ValueError(f"omegas has {len(omegas)} values but n_arms is {n_arms}")
        if not eta > 0:
            raise ValueError(f"eta must be > 0, got {eta}")
        self.omegas = [float(w) for w in omegas]
        self.contextual = context_range is not None
        self.range = list(_check_range(context_range)) if self.contextual else None
        self.dw, self.dc = int(degree_omega), (int(degree_context) if self.contextual else 0)
        self.eta, self.ridge = float(eta), float(ridge)
        self.data: list[tuple] = []   # (arm, context or None, cost)

    def _features(self, arms, contexts) -> np.ndarray:
        uw = 2.0 * (np.asarray([self.omegas[a] for a in arms]) - 1.0) - 1.0   # ω ∈ (0, 2) -> u ∈ (-3, 1)
        V = np.polynomial.chebyshev.chebvander(uw, self.dw)
        if not self.contextual:
            return V
        a, b = self.range
        uc = np.clip(2.0 * (np.asarray(contexts, float) - a) / (b - a) - 1.0, -1.0, 1.0)
        Vc = np.polynomial.chebyshev.chebvander(uc, self.dc)
        return (V[:, :, None] * Vc[:, None, :]).reshape(len(uw), -1)

    def predict(self, context: Optional[float] = None) -> Optional[np.ndarray]:
        """Predicted cost of each arm at ``context`` in units of the mean cost (None with < 3 rounds)."""
        c = _need_context(context) if self.contextual else 0.0
        if len(self.data) < 3:
            return None
        X = self._features([d[0] for d in self.data], [d[1] or 0.0 for d in self.data])
        y = np.log(np.maximum([d[2] for d in self.data], 1.0))
        theta = np.linalg.solve(X.T @ X + self.ridge * np.eye(X.shape[1]), X.T @ y)
        yhat = np.exp(self._features(range(self.n_arms), [c] * self.n_arms) @ theta)
        return yhat / np.exp(y).mean()

    def probabilities(self, context: Optional[float] = None) -> np.ndarray:
        yhat = self.predict(context)
        d = self.n_arms
        if yhat is None:  # first rounds: middle, then the quartiles of the grid
            p = np.zeros(d)
            p[[d // 2, d // 4, (3 * d) // 4][len(self.data)]] = 1.0
            return p
        best = int(np.argmin(yhat))
        p = 1.0 / (d + self.eta * (yhat - yhat[best]))
        p[best] = 0.0
        p[best] = max(1.0 - p.sum(), 0.0)
        return p / p.sum()

    def update(self, arm: int, loss: float, context: Optional[float] = None, bound: Optional[float] = None):
        self._check(arm, loss)
        self.data.append((int(arm), _need_context(context) if self.contextual else None, float(loss)))
        self.t += 1

    def state_dict(self) -> dict:
        return {**super().state_dict(), "omegas": self.omegas, "context_range": self.range,
                "degree_omega": self.dw, "degree_context": self.dc, "eta": self.eta, "ridge": self.ridge,
                "data": self.data}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.omegas = [float(w) for w in state["omegas"]]
        self.range = state["context_range"]
        self.contextual = self.range is not None
        self.dw, self.dc = int(state["degree_omega"]), int(state["degree_context"])
        self.eta, self.ridge = float(state["eta"]), float(state["ridge"])
        self.data = [(int(a), None if c is None else float(c), float(l)) for a, c, l in state["data"]]

class YoungTuner(_Tuner):
    """Model-based tuner (an optdsl extra): see :mod:`optdsl.solvers.linalg.young` for the math.

    Needs the residual history of each solve (``update(..., residuals=[r_0, …, r_n], tol=tol)``;
    :class:`SequenceSolver` passes it). Deterministic: ``probabilities`` is one-hot on the model's argmin.
    Defaults (``margin`` 0.2, ``start`` 1.5, ``bandwidth`` 0.05 of the context range, ``step`` 0.1, no
    ``discount``) were chosen on shifted-Laplacian and heat sequences with other seeds and grid sizes than
    the benchmark's (``benchmarks/bench_sor.py`` reports sequences it never saw while tuning).
    """

    kind = "young"
    wants_history = True

    def __init__(self, n_arms: int, *, omegas: Sequence[float], context_range: Optional[Sequence[float]] = None,
                 start: float = 1.5, discount: float = 1.0, margin: float = 0.2, bandwidth: float = 0.05,
                 step: float = 0.1, seed: Optional[int] = None):
        super().__init__(n_arms, seed)
        if len(omegas) != self.n_arms:
            raise ValueError(f"omegas has {len(omegas)} values but n_arms is {n_arms}")
        if not 0 < discount <= 1:
            raise ValueError(f"discount must be in (0, 1], got {discount}")
        self.contextual = context_range is not None
        cr = list(_check_range(context_range)) if self.contextual else None
        self.model = YoungModel([float(w) for w in omegas], start=start, discount=discount, margin=margin,
                                context_range=cr, bandwidth=bandwidth, step=step)

    def _context(self, context):
        return _need_context(context) if self.contextual else None

    def probabilities(self, context: Optional[float] = None) -> np.ndarray:
        p = np.zeros(self.n_arms)
        p[self.model.choose(self._context(context))] = 1.0
        return p

    def select(self, context: Optional[float] = None) -> int:
        return self.model.choose(self._context(context))

    def update(self, arm: int, loss: float, context: Optional[float] = None, bound: Optional[float] = None, *,
               residuals: Optional[Sequence[float]] = None, tol: Optional[float] = None):
        """``loss`` = sweeps run; ``residuals`` = relative residuals ``r_0 … r_n`` of the solve, ``tol`` its
        target. A capped solve (``r_n > tol``) is extrapolated at its observed rate to the full count.
        Without ``residuals`` the rate is guessed as ``tol^(1/loss)`` (r_0 = 1; tol default 1e-8)."""
        self._check(arm, loss)
        tol = 1e-8 if tol is None else float(tol)
        if residuals is None or len(residuals) < 2:
            residuals = [1.0, tol] if loss < 4 else [tol ** (k / loss) for k in range(int(loss) + 1)]
        rate = tail_rate(residuals)
        r0, rn = float(residuals[0]), float(residuals[-1])
        n = float(loss)
        if rate is not None and 0 < rate < 1 and rn > tol:
            n += math.log(rn / tol) / -math.log(rate)
        if r0 > tol:
            self.model.observe(int(arm), n, rate, math.log(r0 / tol), self._context(context))
        self.t += 1

    def state_dict(self) -> dict:
        return {**super().state_dict(), "omegas": [float(w) for w in self.model.omegas],
                "context_range": self.model.range, "model": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.model.load_state_dict(state["model"])
        self.contextual = self.model.range is not None


_KINDS = {"tsallis": TsallisINF, "exp3": Exp3, "binned": BinnedTsallisINF, "contextual": BinnedTsallisINF,
          "chebcb": ChebCB, "fixed": FixedArm, "smooth": SmoothCB, "young": YoungTuner}


def make_tuner(kind: str, n_arms: int, *, seed: Optional[int] = None, **options: Any) -> _Tuner:
    """Build a tuner by name: ``"tsallis"``, ``"exp3"``, ``"contextual"``/``"binned"``, ``"chebcb"``,
    ``"fixed"``; ``options`` go to its constructor (``context_range=``, ``n_bins=``, ``arm=``, ...)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown tuner {kind!r}; expected one of {sorted(_KINDS)}")
    return _KINDS[kind](n_arms, seed=seed, **options)


def tuner_from_state(state: dict) -> _Tuner:
    """Rebuild a tuner from :meth:`state_dict` output (the inverse of ``state_dict``)."""
    kind = state.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"state has unknown tuner kind {kind!r}")
    extra = {}
    if kind in ("binned", "chebcb", "smooth", "young"):
        extra["context_range"] = state["context_range"]
    if kind in ("smooth", "young"):
        extra["omegas"] = state["omegas"]
    tuner = _KINDS[kind](int(state["n_arms"]), **extra)
    tuner.load_state_dict(state)
    return tuner


class SequenceSolver:
    """SOR that learns ω across calls: ``solver.solve(A_t, b_t, context=c_t)`` for t = 1, 2, …

    ``tuner``: ``"tsallis"`` (default, the paper's), ``"exp3"``, ``"contextual"`` (binned Tsallis-INF; needs
    ``context_range``), ``"chebcb"`` (needs ``context_range``), ``"smooth"`` (SmoothCB; contextual when
    ``context_range`` is given), ``"young"`` (:class:`YoungTuner`, model-based, contextual when
    ``context_range`` is given — the best performer in ``benchmarks/bench_sor.py``), a float (fixed ω, no
    learning), or a tuner object. ``omegas``: the grid (default :func:`default_omegas`; 39 values in
    [1, 1.95] for ``"young"``). Each call costs one SOR solve with the
    sampled ω, stopped at ``cap`` iterations (default ``max_iter``); the tuner's loss is the iteration count
    (``cap`` for a capped or diverged trial). With ``cap_factor`` set, the cap adapts to
    ``cap_factor × median`` of the costs of earlier rounds. A capped trial is finished with the tuner's
    favourite ω from where it stopped (``fallback=True``), so every call still returns a solution.
    ``warm_start`` starts each solve from the previous solution when sizes match.
    """

    def __init__(self, omegas: Optional[Sequence[float]] = None, tuner: Union[str, float, _Tuner] = "tsallis", *,
                 context_range: Optional[Sequence[float]] = None, n_bins: int = 4, tol: float = 1e-8,
                 max_iter: Optional[int] = None, cap: Optional[int] = None, cap_factor: Optional[float] = None,
                 fallback: bool = True, warm_start: bool = True, symmetric: bool = False,
                 ordering: str = "natural", seed: Optional[int] = 0, device: Any = None, dtype: Any = None,
                 **tuner_options: Any):
        if isinstance(tuner, (int, float)) and not isinstance(tuner, bool):
            omegas = [sor.check_omega(tuner)]
            tuner = FixedArm(1, 0, seed=seed)
        if omegas is None:   # the model-based tuner pays nothing per arm, so it gets a fine grid
            omegas = default_omegas(39, 1.0, 1.95) if tuner == "young" else default_omegas()
        self.omegas = [sor.check_omega(w) for w in omegas]
        if not self.omegas:
            raise ValueError("omegas must hold at least one relaxation factor")
        if isinstance(tuner, str):
            if tuner in ("contextual", "binned"):
                tuner_options.setdefault("n_bins", n_bins)
            if tuner in ("contextual", "binned", "chebcb"):
                tuner_options["context_range"] = context_range
            if tuner in ("smooth", "young"):
                tuner_options.update(omegas=self.omegas, context_range=context_range)
            tuner = make_tuner(tuner, len(self.omegas), seed=seed, **tuner_options)
        elif not isinstance(tuner, _Tuner):
            raise TypeError(f"tuner must be a name, a float omega or a tuner object, got {type(tuner).__name__}")
        if tuner.n_arms != len(self.omegas):
            raise ValueError(f"tuner has {tuner.n_arms} arms but omegas has {len(self.omegas)} values")
        if not tol > 0:
            raise ValueError(f"tol must be > 0, got {tol}")
        if cap is not None and cap < 1:
            raise ValueError(f"cap must be >= 1 iteration, got {cap}")
        if cap_factor is not None and not cap_factor > 1:
            raise ValueError(f"cap_factor must be > 1, got {cap_factor}")
        self.tuner = tuner
        self.tol, self.max_iter, self.cap, self.cap_factor = float(tol), max_iter, cap, cap_factor
        self.fallback, self.warm_start, self.symmetric, self.ordering = fallback, warm_start, symmetric, ordering
        self.device, self.dtype = device, dtype
        self.rounds: list[dict] = []   # per call: arm, omega, cost, iterations, context, status
        # for read-merge-write of a shared state file (see save): the tuner updates made since the last
        # sync with the file, and how many rounds the file held then
        self._pending: list[tuple] = []
        self._synced_rounds = 0
        self._x_prev: Optional[torch.Tensor] = None

    # -- solving -----------------------------------------------------------------------------------------
    def _round_cap(self, max_iter: int) -> int:
        cap = max_iter if self.cap is None else min(self.cap, max_iter)
        if self.cap_factor is not None and self.rounds:
            recent = [r["cost"] for r in self.rounds[-50:]]
            cap = min(cap, max(10, int(math.ceil(self.cap_factor * float(np.median(recent))))))
        return cap

    def solve(self, A: Any, b: Any, context: Optional[float] = None, *, x0: Any = None,
              time_limit: Optional[float] = None, callback: Optional[Callback] = None) -> SolverOutput:
        """Solve one system of the sequence, learning from its iteration count. See :func:`sor.solve`."""
        t0 = time.perf_counter()
        if self.tuner.contextual:
            context = _need_context(context)
        # No caching by identity: callers often update A in place between time steps. Pass a SORMatrix to reuse.
        M = A if isinstance(A, sor.SORMatrix) else sor.SORMatrix(A, ordering=self.ordering, device=self.device,
                                                                 dtype=self.dtype)
        max_iter = self.max_iter if self.max_iter is not None else max(100, 10 * M.n)
        if x0 is None and self.warm_start and self._x_prev is not None and self._x_prev.shape == (M.n,):
            x0 = self._x_prev.to(M.device, M.dtype)
        arm = self.tuner.select(context)
        omega = self.omegas[arm]
        cap = self._round_cap(max_iter)
        out = sor.solve(M, b, omega=omega, x0=x0, tol=self.tol, max_iter=cap, symmetric=self.symmetric,
                        time_limit=time_limit, callback=callback)
        capped = out.status in (Status.ITERATION_LIMIT, Status.NUMERICAL_ERROR)
        cost = float(cap if capped else out.iterations)
        if out.status not in (Status.INTERRUPTED, Status.TIME_LIMIT):
            if getattr(self.tuner, "wants_history", False):   # the model-based tuner learns from the rate
                res = [out.extras.get("initial_residual", 1.0)] + [h["residual"] for h in out.history]
                learned = ((arm, float(out.iterations), context), dict(bound=cap, residuals=res, tol=self.tol))
            else:
                learned = ((arm, cost, context), dict(bound=cap))
            self.tuner.update(*learned[0], **learned[1])
            self._pending.append(learned)
        total_iters, history, fb_omega = out.iterations, list(out.history), None
        diverged = out.status is Status.NUMERICAL_ERROR
        if capped and self.fallback and (cap < max_iter or diverged) and out.iterations < max_iter:
            # finish with the favourite ω from where the trial stopped; after a divergence restart from x0,
            # with Gauss–Seidel if the favourite is the arm that just diverged
            fb_arm = self.tuner.best_arm(context)
            fb_omega = 1.0 if diverged and fb_arm == arm else self.omegas[fb_arm]
            start = x0 if diverged else out.x
            left = None if time_limit is None else max(time_limit - (time.perf_counter() - t0), 1e-3)
            rest = sor.solve(M, b, omega=fb_omega, x0=start, tol=self.tol, max_iter=max_iter - out.iterations,
                             symmetric=self.symmetric, time_limit=left, callback=callback)
            history += [{**h, "iteration": h["iteration"] + out.iterations} for h in rest.history]
            total_iters += rest.iterations
            out = rest
        if out.status.has_point and bool(torch.isfinite(out.x).all()):
            self._x_prev = out.x
        self.rounds.append({"round": len(self.rounds), "arm": arm, "omega": omega, "cost": cost,
                            "iterations": total_iters, "context": context, "status": out.status.value})
        extras = {**out.extras, "arm": arm, "omega": omega, "cost": cost, "cap": cap, "capped": capped,
                  "fallback_omega": fb_omega, "round": len(self.rounds) - 1}
        counts = {**out.counts, "linear_iterations": total_iters}
        return SolverOutput(x=out.x, status=out.status, iterations=total_iters, message=out.message,
                            certificates=out.certificates, counts=counts, history=history,
                            solve_time=time.perf_counter() - t0, extras=extras)

    def as_spd_solver(self):
        """A ``solve_spd(A, b, x0=None, tol=None, context=None) -> (x, info)`` callback that learns across
        calls (``context`` is required when the tuner is contextual)."""
        def solve_spd(A, b, x0=None, tol=None, context=None):
            if tol is not None and tol != self.tol:
                self.tol = float(tol)
            out = self.solve(A, b, context=context, x0=x0)
            return out.x, {"status": out.status.value, "converged": out.status is Status.OPTIMAL,
                           "iterations": out.iterations, "residual": out.certificates.get("residual"),
                           "omega": out.extras["omega"]}
        return solve_spd

    # -- persistence -------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue learning elsewhere (not the last solution): JSON-serialisable."""
        return {"version": 1, "omegas": self.omegas, "tuner": self.tuner.state_dict(),
                "config": {"tol": self.tol, "max_iter": self.max_iter, "cap": self.cap, "cap_factor": self.cap_factor,
                           "fallback": self.fallback, "warm_start": self.warm_start, "symmetric": self.symmetric,
                           "ordering": self.ordering},
                "rounds": self.rounds}

    def load_state_dict(self, state: dict) -> None:
        if int(state.get("version", 0)) != 1:
            raise ValueError(f"unsupported SequenceSolver state version {state.get('version')!r}")
        self.omegas = [float(w) for w in state["omegas"]]
        self.tuner = tuner_from_state(state["tuner"])
        cfg = state["config"]
        self.tol, self.max_iter, self.cap, self.cap_factor = cfg["tol"], cfg["max_iter"], cfg["cap"], cfg["cap_factor"]
        self.fallback, self.warm_start = cfg["fallback"], cfg["warm_start"]
        self.symmetric, self.ordering = cfg["symmetric"], cfg["ordering"]
        self.rounds = [dict(r) for r in state["rounds"]]

    def to_json(self, path: Optional[str] = None) -> str:
        """The state as a JSON string; also written to ``path`` (atomically) when given."""
        text = json.dumps(self.state_dict())
        if path is not None:
            atomic_write(path, text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str, *, device: Any = None, dtype: Any = None) -> "SequenceSolver":
        """Rebuild a solver from :meth:`to_json` output (a JSON string or a file path)."""
        s = text_or_path.strip()
        if s.startswith("{"):
            state = _check_state(_parse(s, "JSON text"), "JSON text")
        else:
            state = read_state_file(text_or_path)
        obj = cls(omegas=state["omegas"], tuner=tuner_from_state(state["tuner"]), device=device, dtype=dtype)
        obj.load_state_dict(state)
        obj._synced_rounds = len(obj.rounds)
        return obj

    def adopt(self, state: dict) -> None:
        """Continue what ``state`` (from :func:`read_state_file`) learned — grid, tuner, round log — keeping
        this solver's own settings (tol, caps, ...)."""
        self.omegas = [float(w) for w in state["omegas"]]
        self.tuner = tuner_from_state(state["tuner"])
        self.rounds = [dict(r) for r in state["rounds"]]
        self._pending, self._synced_rounds = [], len(self.rounds)

    def save(self, path: str) -> None:
        """Write the state to ``path`` so that concurrent writers keep every round: under an advisory lock,
        read the file; if another writer added rounds since this solver last synced, replay this solver's
        new tuner updates on the file's tuner and append its new rounds to the file's; write atomically.
        The solver then continues from the merged state (it has learned from every writer's rounds)."""
        with locked(path):
            disk = read_state_file(path) if os.path.exists(path) else None
            if disk is not None and len(disk["rounds"]) != self._synced_rounds:
                tuner = tuner_from_state(disk["tuner"])
                if tuner.kind != self.tuner.kind or [float(w) for w in disk["omegas"]] != self.omegas:
                    raise TunerFileError(f"tuner file {path} holds a {tuner.kind!r} tuner over "
                                         f"{len(disk['omegas'])} omegas, this solver a {self.tuner.kind!r} tuner over "
                                         f"{len(self.omegas)}: use another file")
                for args, kw in self._pending:
                    tuner.update(*args, **kw)
                mine = self.rounds[self._synced_rounds:]
                merged = [dict(r) for r in disk["rounds"]]
                merged += [{**r, "round": len(merged) + i} for i, r in enumerate(mine)]
                self.tuner, self.rounds = tuner, merged
            atomic_write(path, json.dumps(self.state_dict()))
            self._pending, self._synced_rounds = [], len(self.rounds)


class TunerFileError(ValueError):
    """A tuner state file that cannot be used; the message names the file and what is wrong, in one line."""


def _parse(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TunerFileError(f"tuner file {where} is not valid JSON ({exc})") from None


def read_state_file(path: str) -> dict:
    """The state saved by :meth:`SequenceSolver.save` / ``to_json(path)``, checked: a corrupt file or JSON of
    another structure is a :class:`TunerFileError` naming ``path``."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise TunerFileError(f"tuner file {path} cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    return _check_state(_parse(text, path), path)


def _check_state(state: Any, where: str) -> dict:
    def bad(what):
        return TunerFileError(f"tuner file {where}: {what} (expected the JSON a SequenceSolver saves)")
    if not isinstance(state, dict):
        raise bad(f"holds a JSON {type(state).__name__}, not an object")
    for key, typ in (("omegas", list), ("tuner", dict), ("rounds", list), ("config", dict)):
        if not isinstance(state.get(key), typ):
            raise bad(f"field {key!r} is {'missing' if key not in state else type(state[key]).__name__}, "
                      f"expected a {typ.__name__}")
    if not state["omegas"] or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and 0 < w < 2
                                      for w in state["omegas"]):
        raise bad("field 'omegas' must be a non-empty list of numbers in (0, 2)")
    if not all(isinstance(r, dict) for r in state["rounds"]):
        raise bad("field 'rounds' must be a list of objects")
    try:
        tuner = tuner_from_state(state["tuner"])
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise bad(f"field 'tuner' is malformed ({type(exc).__name__}: {exc})") from None
    if tuner.n_arms != len(state["omegas"]):
        raise bad(f"the tuner has {tuner.n_arms} arms but 'omegas' has {len(state['omegas'])} values")
    return state
