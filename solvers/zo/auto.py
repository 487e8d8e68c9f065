"""``lr="auto"``: step sizes that do not depend on the objective's scale, and a statistical stopping test.

Three pieces, shared by ``zo.minimize`` (flat vectors) and ``zo.fine_tune`` / ``ZOStepper`` (modules):

* **RMS normalization** (scale-free in f). The gradient estimate is divided by its RMS entry σ (fixed
  after the first estimates for flat black boxes, a running EMA for fine-tuning: ``RmsNormalizer``):

      θ ← θ − η_k · ĝ_k / σ,

  where η_k is a *length* per coordinate. Multiplying f by any c > 0 multiplies ĝ and σ by c and leaves the
  trajectory unchanged. For a module, ĝ = p·z and mean_i ĝ_i² ≈ p², so σ² comes from p² (no tensor).
* **Probed length** η₀. Each candidate of a geometric grid around a length scale R (box width, parameter
  RMS, or 1) runs ``H`` steps from the same start with the same seeds and batches (common random numbers);
  the one with the lowest mean loss over its last half wins, then its two half-decade neighbours are tried.
  The start is restored after each probe (a copy for flat vectors; for modules the seeded updates are
  replayed backwards, so no parameter copy is held and memory stays that of inference).
* **Stationarity test**. ‖E ĝ‖² is estimated without bias from a window of W estimates by the pairwise
  statistic U = (‖Σ ĝ_i‖² − Σ‖ĝ_i‖²) / (W(W−1)) (at the start: W extra estimates at θ₀ with their own
  seeds; at the end: the last W steps) (the noise in each ĝ cancels in cross products), with
  the standard error of its uncorrelated cross terms. The run is called stationary (LOCALLY_OPTIMAL) when, at 2 standard errors,
  the final window's ‖∇f‖² is below (gtol · ‖∇f‖ at the start)²: the gradient fell by 1/gtol. This is a
  statistical statement about an estimate, not a proof; certificates carry both numbers.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Optional, Sequence

import torch

from ..oracles.zo_noise import derive_seed, noise_like

AUTO = "auto"
GTOL = 1e-2         # default relative gradient reduction asked of an auto run


def is_auto(lr) -> bool:
    """True for ``lr="auto"``; raises on any other string."""
    if isinstance(lr, str):
        if lr != AUTO:
            raise ValueError(f"lr must be a number > 0, a callable step -> lr, or 'auto'; got {lr!r}")
        return True
    return False


class RmsNormalizer:
    """The gradient's scale σ, for steps η·ĝ/σ. ``scale(ms)`` takes the mean squared entry of one estimate
    and returns 1/σ.

    * ``beta=None`` (flat black boxes): σ² is the mean over the first ``warm`` estimates, then fixed -- the
      scale at the start, so later steps shrink with the gradient (SGD, linear convergence on smooth
      problems; a running normalization would keep the steps η long and leave the iterate rattling).
    * ``beta`` in (0, 1) (fine-tuning): a bias-corrected EMA, the scalar analogue of Adam's second moment,
      which keeps mini-batch runs moving as the loss flattens.
    """

    def __init__(self, beta: Optional[float] = None, warm: int = 10):
        self.beta, self.warm, self.avg, self.t = beta, warm, 0.0, 0

    def scale(self, mean_square: float) -> float:
        if self.beta is not None:
            self.t += 1
            self.avg = self.beta * self.avg + (1 - self.beta) * float(mean_square)
            sigma = math.sqrt(self.avg / (1 - self.beta ** self.t))
        else:
            if self.t < self.warm:
                self.t += 1
                self.avg += (float(mean_square) - self.avg) / self.t
            sigma = math.sqrt(self.avg)
        return 1.0 / sigma if sigma > 0 and math.isfinite(sigma) else 0.0

    def fresh(self) -> "RmsNormalizer":
        return RmsNormalizer(self.beta, self.warm)

    def state_dict(self) -> dict:
        return {"avg": self.avg, "t": self.t}

    def load_state_dict(self, sd: dict) -> None:
        self.avg, self.t = float(sd["avg"]), int(sd["t"])


def probe_horizon(steps: Optional[int]) -> int:
    """Steps per probe: 2 % of the run, between 10 and 60."""
    return int(min(60, max(10, (steps or 1000) // 50)))


def probe(run: Callable[[float], float], scale: float) -> tuple[float, dict]:
    """Pick η₀: ``run(lr)`` runs a probe from the common start and returns its score (lower is better,
    ``inf`` when it failed or blew up). Grid scale·10^{-5..1} from small to large, stopped once two
    candidates in a row score worse than the best (large steps are where probes blow up), then the best
    one's √10 neighbours."""
    scores: dict = {}
    best, worse = None, 0
    for e in range(-5, 2):
        lr = scale * 10.0 ** e
        scores[lr] = run(lr)
        if best is None or scores[lr] < scores[best]:
            best, worse = lr, 0
        else:
            worse += 1
            if worse == 2:
                break
    for lr in (best * math.sqrt(10.0), best / math.sqrt(10.0)):
        if lr not in scores:
            scores[lr] = run(lr)
    best = min(scores, key=lambda a: (scores[a], -a))
    if not math.isfinite(scores[best]):
        best = min(scores)  # everything failed: the smallest step, the main run reports the failure
    return best, scores


def blew_up(losses: Sequence[float]) -> bool:
    """A probe is abandoned once its loss rose far above where it started (scale-free in f)."""
    f0, fk = losses[0], losses[-1]
    return not math.isfinite(fk) or fk - min(losses) > 4.0 * (abs(f0) + abs(min(losses))) + 1e-300


def probe_score(losses: Sequence[float]) -> float:
    """Mean loss over the second half of a probe (inf when it failed or is empty)."""
    tail = list(losses[len(losses) // 2:])
    if not tail or not all(math.isfinite(v) for v in tail):
        return math.inf
    return sum(tail) / len(tail)


# --- stationarity ---------------------------------------------------------------------------------------

def dense_sq_norm(vectors: Sequence[torch.Tensor], mask: Optional[torch.Tensor] = None) -> tuple[float, float]:
    """(U, standard error) of the unbiased pairwise estimate of ‖E ĝ‖² from dense estimates ĝ_1..ĝ_W;
    ``mask`` zeroes coordinates (active bounds). With the Gram matrix G_ij = ĝ_i·ĝ_j,
    U = Σ_{i≠j} G_ij / (W(W−1)) and, the cross terms being uncorrelated, se² = 2 Σ_{i≠j} G_ij² / (W(W−1))²."""
    G = torch.stack([v.reshape(-1).double() for v in vectors])
    if mask is not None:
        G = G * mask.reshape(1, -1).to(G.dtype)
    n = len(vectors)
    sq = (G * G).sum(1)                                  # ‖ĝ_i‖²
    s = G.sum(0)
    # Σ_{i,j} G_ij² = ‖GGᵀ‖_F² = ‖GᵀG‖_F²: use the smaller of the two products
    prod = G @ G.T if n <= G.shape[1] else G.T @ G
    pairs = n * (n - 1)
    off_sq = float((prod * prod).sum()) - float((sq * sq).sum())
    return (float(s @ s) - float(sq.sum())) / pairs, math.sqrt(2.0 * max(off_sq, 0.0)) / pairs


def seeded_sq_norm(params: Sequence[torch.Tensor], items: Sequence[tuple[Sequence[int], Sequence[float]]],
                   kind: str) -> tuple[float, float]:
    """The same for seed-form estimates ĝ_k = Σ_i c_ki z(s_ki) over a module's tensors. The noise is
    regenerated tensor by tensor into one running sum (memory stays that of inference). The standard error
    uses E[(z·z')²] = d for independent directions: se² ≈ 2d Σ_{k≠l} a_k a_l / (W(W−1))², a_k = Σ_i c_ki²."""
    n = len(items)
    pairs = n * (n - 1)
    total = 0.0
    for j, p in enumerate(params):
        buf = torch.zeros_like(p, dtype=torch.float64)
        sq = 0.0
        for seeds, coefs in items:
            g = torch.zeros_like(p, dtype=torch.float64)
            for s, c in zip(seeds, coefs):
                g.add_(noise_like(p.detach(), derive_seed(s, j), kind).double(), alpha=c)
            buf.add_(g)
            sq += float((g * g).sum())
        total += float((buf * buf).sum()) - sq
    d = sum(p.numel() for p in params)
    a = [sum(c * c for c in coefs) for _, coefs in items]
    cross = sum(a) ** 2 - sum(v * v for v in a)
    return total / pairs, math.sqrt(2.0 * d * max(cross, 0.0)) / pairs


def window(steps: int) -> int:
    """Estimates per stationarity window: 10 % of the run, at least 20 (0 when the run is too short)."""
    w = max(20, steps // 10)
    return w if 2 * w <= steps else 0


def stationary(start: tuple[float, float], end: tuple[float, float], gtol: float) -> tuple[bool, str, dict]:
    """Decide from (U, se) at the start and at the end; returns (verdict, message, certificates)."""
    u0, _ = start
    u1, se1 = end
    g0 = math.sqrt(max(u0, 0.0))
    upper = math.sqrt(max(u1 + 2.0 * se1, 0.0))
    cert = {"grad_estimate_norm": math.sqrt(max(u1, 0.0)), "grad_estimate_upper": upper,
            "grad_estimate_start": g0}
    if not (g0 > 0 and math.isfinite(upper)):
        return False, "", cert
    ok = upper <= gtol * g0
    msg = (f"estimated gradient norm fell from {g0:.3g} to {cert['grad_estimate_norm']:.3g} "
           f"(at most {upper:.3g} at 2 standard errors, gtol={gtol:g})")
    return ok, msg, cert


def lengths(tensors: Iterable[torch.Tensor]) -> float:
    """Length scale of a set of parameters: their RMS, or 1 when they are all zero."""
    num, den = 0.0, 0
    for t in tensors:
        num += float(t.detach().double().pow(2).sum())
        den += t.numel()
    r = math.sqrt(num / max(den, 1))
    return r if r > 0 and math.isfinite(r) else 1.0


# --- modules (fine_tune) --------------------------------------------------------------------------------

def probe_module(stepper, closure_at: Callable[[int], Callable[[], object]], steps: int) -> dict:
    """Set ``stepper.lr0`` by probing (see ``probe``). ``closure_at(k)`` is the loss closure of step k.
    sgd/sign updates are undone by replaying them backwards (no copy); other optimizers keep a copy of the
    parameters and of their buffers while probing. Returns {"lr": η₀, "scores": ..., "evals": n}."""
    from ..oracles.zo_twopoint import ZOEvalError
    H = probe_horizon(steps)
    info = {"evals": 0}
    replay = stepper.optimizer in ("sgd", "sign") and stepper.sparse_keep is None
    keep_state = stepper.state_dict()

    def run(lr: float) -> float:
        stepper.load_state_dict(keep_state)
        stepper.lr0 = lr
        if stepper.normalizer is not None:
            stepper.normalizer = stepper.normalizer.fresh()
        copy = None if replay else [p.detach().clone() for p in stepper.params]
        stepper.log = [] if replay else None
        losses = []
        try:
            for k in range(H):
                est = stepper.step(closure_at(k), k)
                info["evals"] += est.n_evals
                losses.append(est.loss)
                if blew_up(losses):
                    losses = []
                    break
        except ZOEvalError:
            losses = []
        finally:
            with torch.no_grad():
                if replay:
                    stepper.undo(stepper.log)
                else:
                    for p, c in zip(stepper.params, copy):
                        p.data.copy_(c)
            stepper.log = None
        return probe_score(losses)

    best, scores = probe(run, lengths(stepper.params))
    stepper.load_state_dict(keep_state)
    if stepper.normalizer is not None:
        stepper.normalizer = stepper.normalizer.fresh()
    stepper.lr0 = best
    info.update(lr=best, scores=scores)
    return info


START_TAG = 0x57A7   # seeds of the start-gradient measurement (disjoint from the steps' seeds)


class ModuleStationarity:
    """Measures ‖∇f‖ at the start (W estimates at θ₀, no update; kept in ``stepper.g0`` so a resumed run
    has it), collects the seed-form estimates of the last W steps, and decides (``stationary``) at the end."""

    def __init__(self, stepper, steps: int, gtol: float):
        self.stepper, self.steps, self.gtol = stepper, steps, gtol
        self.W = window(steps)
        self.last: list = []

    def measure_start(self, closure_at: Callable[[int], Callable[[], object]]) -> int:
        """Estimate ‖∇f(θ₀)‖² from W two-point estimates (batches 0..W−1); returns the evaluations used."""
        from ..oracles.zo_twopoint import ZOEvalError, two_point
        if not self.W or self.stepper.g0 is not None:
            return 0
        st, items, n = self.stepper, [], 0
        try:
            with torch.no_grad():
                for i in range(self.W):
                    est = two_point(closure_at(i), st.params, seed=derive_seed(st.seed, START_TAG, i), eps=st.eps,
                                    q=st.q, kind=st.kind, where=f"start-gradient query {i}")
                    n += est.n_evals
                    items.append((list(est.seeds), list(est.coefs)))
        except ZOEvalError:
            return n
        st.g0 = seeded_sq_norm(st.params, items, st.kind)
        return n

    def add(self, k: int, est) -> None:
        if self.W and k >= self.steps - self.W:
            self.last.append((list(est.seeds), list(est.coefs)))

    def verdict(self) -> tuple[bool, str, dict]:
        g0 = self.stepper.g0
        if not self.W or g0 is None or len(self.last) < self.W:
            return False, "", {}
        end = seeded_sq_norm(self.stepper.params, self.last, self.stepper.kind)
        return stationary(g0, end, self.gtol)


class Backoff:
    """Halves the step when the loss rises significantly between consecutive blocks of ``block`` steps.

    A probe of a few steps favours steps that are too long to be stable for long (a ZO-SGD step is stable
    below ~2/(L(d+2)), and the instability grows slowly); this catches it. "Significantly": the block means
    differ by more than 3 standard errors of their difference, so a noisy plateau rarely triggers it; after
    a halving, two blocks at the new step are compared before the next.
    Returns the current factor (1, 1/2, 1/4, ...)."""

    def __init__(self, block: int):
        self.block, self.factor, self.cur, self.prev = max(5, block), 1.0, [], None

    def update(self, loss: float) -> float:
        self.cur.append(float(loss))
        if len(self.cur) == self.block:
            n = len(self.cur)
            mean = sum(self.cur) / n
            var = sum((v - mean) ** 2 for v in self.cur) / (n - 1)
            self.cur = []
            if self.prev is not None:
                pm, pv = self.prev
                if mean - pm > 3.0 * math.sqrt((var + pv) / n):
                    self.factor *= 0.5
                    self.prev = None        # compare two blocks run at the new step before halving again
                    return self.factor
            self.prev = (mean, var)
        return self.factor

    def state_dict(self) -> dict:
        return {"factor": self.factor, "cur": list(self.cur), "prev": list(self.prev) if self.prev else None}

    def load_state_dict(self, sd: dict) -> None:
        self.factor, self.cur = float(sd["factor"]), list(sd["cur"])
        self.prev = tuple(sd["prev"]) if sd.get("prev") else None
