"""In-place ZO steps on a list of parameter tensors (an nn.Module's weights): MeZO and its fused variant.

Reference MeZO step (Malladi et al., NeurIPS 2023; princeton-nlp/MeZO ``zo_step``/``zo_update``), with
z(s) regenerated from the step seed s in every sweep:

    θ += εz; f₊ = L(θ);  θ −= 2εz; f₋ = L(θ);  θ += εz;  p = (f₊ − f₋)/(2ε);  θ ← θ − η(p·z + λθ)

= 4 noise sweeps over the parameters (3 perturb + 1 update) + 2 forwards. On CPU the noise generation
dominates a step (refs/zeroth_order_halpern_sor.md, cost table), so the *fused* step merges the restore
with the update in one sweep (3 sweeps):

    θ ← (1 − ηλ)(θ_−ε + εz) − η p z = (1 − ηλ) θ_−ε + [(1 − ηλ)ε − ηp] z

where θ_−ε = θ − εz is the state after the second forward (weight decay on the restored value, so it
matches the reference exactly in exact arithmetic). Block-wise models can go further (2 sweeps, ZO2-style
dual forward): see ``offload.py``.

Optimizers: "sgd" (MeZO), "sign" (ZO-Bench ZO-SGD-Sign: η·sign(p)·z, no buffers), both fused; "momentum"
and "adam" keep W-sized buffers (ZO-Bench) and expand ĝ = p·z tensor by tensor in the restore sweep.
Weight decay is not applied to biases and normalisation weights (MeZO/ZO2 convention).
Sparse-MeZO: ``sparse_keep`` perturbs/updates only the smallest-|w| fraction per tensor (thresholds
refreshed every ``sparse_refresh`` steps; bit-packed masks live for one step).
FedKSeed: ``seed_pool=K`` draws every step's seed from a fixed pool of K seeds, so an update is the pair
(pool index, scalar).
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch

from ..oracles.zo_noise import add_noise_, check_kind, derive_seed, noise_like
from ..oracles.zo_sparse import magnitude_masks, magnitude_thresholds
from ..oracles.zo_twopoint import ZOEstimate, ZONonFinite, _mask, check_eps, check_q, two_point
from .auto import RmsNormalizer, is_auto
from .optim import check_optimizer, make_schedule

_POOL_TAG = 0x5EED


def no_decay(name: str) -> bool:
    """MeZO/ZO2 rule: biases and layer-norm weights get no weight decay."""
    n = name.lower()
    return n.endswith("bias") or "norm" in n or ".ln" in n or n.startswith("ln")


def decay_flags(module: torch.nn.Module) -> dict[str, bool]:
    """name -> whether weight decay applies: False for biases and for parameters of normalisation layers
    (found by module type, so e.g. ``Sequential`` index names work too)."""
    norm_types = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.modules.batchnorm._NormBase)
    out = {}
    for mname, mod in module.named_modules():
        for pname, _ in mod.named_parameters(recurse=False):
            full = f"{mname}.{pname}" if mname else pname
            out[full] = not (isinstance(mod, norm_types) or pname.endswith("bias") or no_decay(full))
    return out


def pool_seed(seed: int, index: int) -> int:
    """Seed of entry ``index`` of the FedKSeed pool of a run with seed ``seed``."""
    return derive_seed(seed, _POOL_TAG, index)


class ZOStepper:
    """Seeded in-place ZO optimizer over ``params`` (list of tensors or (name, tensor) pairs).

    ``step(closure, k)`` evaluates ``closure()`` (the loss at the current parameters, scalar) twice per
    query, updates the parameters in place and returns the ZOEstimate (seeds, projected gradients, losses).
    The step seed is ``derive_seed(seed, k)`` (or a pool entry), so the run is a pure function of
    (seed, k, data) and can be resumed exactly.
    """

    def __init__(self, params, *, lr=1e-6, eps: float = 1e-3, q: int = 1, kind: str = "gaussian",
                 optimizer: str = "sgd", momentum: float = 0.9, betas=(0.9, 0.999), adam_eps: float = 1e-8,
                 weight_decay: float = 0.0, schedule: str = "constant", warmup: int = 0,
                 max_iter: Optional[int] = None, sparse_keep: Optional[float] = None, sparse_refresh: int = 100,
                 seed: int = 0, fused: bool = True, seed_pool: Optional[int] = None,
                 reduce: Optional[Callable] = None, decay: Optional[dict] = None):
        named = [(n, p) if isinstance(p, torch.Tensor) else (n, p) for n, p in _named(params)]
        if not named:
            raise ValueError("params is empty; expected at least one tensor to optimize")
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.eps = check_eps(eps)
        self.q = check_q(q)
        self.kind = check_kind(kind)
        self.optimizer = check_optimizer(optimizer)
        if optimizer == "conservative":
            raise ValueError("optimizer='conservative' is available for flat problems (zo.minimize) only")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        if seed_pool is not None and (not isinstance(seed_pool, int) or seed_pool < 1):
            raise ValueError(f"seed_pool (K) must be a positive integer, got {seed_pool!r}")
        # lr="auto": η_k = lr0 · schedule(k) with lr0 set by a probe (``fine_tune``), and the projected
        # gradients divided by their running RMS (sgd/momentum; sign and adam are scale-free already)
        self.auto = is_auto(lr)
        self.lr0: Optional[float] = None
        if self.auto:
            factor = make_schedule(1.0, schedule, max_iter, warmup)
            self.eta = lambda k: (self.lr0 if self.lr0 is not None else _no_lr0()) * factor(k)
        else:
            self.eta = make_schedule(lr, schedule, max_iter, warmup)
        self.normalizer = RmsNormalizer(beta=0.999) if self.auto and optimizer in ("sgd", "momentum") else None
        self.log: Optional[list] = None     # when a list: (alphas, shrinks) of every update, for ``undo``
        self.g0: Optional[tuple] = None      # lr="auto": (U, se) of ‖∇f‖² over the first window
        self.momentum, self.betas, self.adam_eps = momentum, betas, adam_eps
        # weight decay per tensor: ``decay`` (name -> bool, e.g. from ``decay_flags(module)``) or the name rule
        flags = [decay.get(n, not no_decay(n)) if decay is not None else not no_decay(n) for n in self.names]
        self.wd = [float(weight_decay) if f else 0.0 for f in flags]
        self.sparse_keep, self.sparse_refresh = sparse_keep, sparse_refresh
        self.seed, self.fused, self.seed_pool, self.reduce = int(seed), fused, seed_pool, reduce
        self.state: dict = {"t": 0, "buffers": {}, "thresholds": None}

    # -- seeds -------------------------------------------------------------------------------------
    def step_seed(self, k: int) -> tuple[int, Optional[int]]:
        """(seed, pool index or None) of step k."""
        if self.seed_pool is None:
            return derive_seed(self.seed, k), None
        idx = derive_seed(self.seed, k) % self.seed_pool
        return pool_seed(self.seed, idx), idx

    def masks(self, k: int):
        if self.sparse_keep is None:
            return None
        if self.state["thresholds"] is None or k % self.sparse_refresh == 0:
            self.state["thresholds"] = magnitude_thresholds(self.params, self.sparse_keep)
        return magnitude_masks(self.params, self.state["thresholds"])

    # -- one step ----------------------------------------------------------------------------------
    def step(self, closure: Callable[[], object], k: int) -> ZOEstimate:
        """One ZO step at iteration k (parameters updated in place). Raises ZOEvalError on a bad loss
        (parameters restored to their value before the step)."""
        s, idx = self.step_seed(k)
        masks = self.masks(k)
        fused = self.fused and self.optimizer in ("sgd", "sign")
        # With a seed pool, queries of one step must also be pool entries: use consecutive entries.
        with torch.no_grad():  # ZO needs no autograd graph: forwards cost (and hold) what inference does
            est = two_point(closure, self.params, seed=s, eps=self.eps, q=self.q, kind=self.kind, masks=masks,
                            where=f"iteration {k}", reduce=self.reduce, restore_last=not fused)
        est.pool_index = idx
        self.apply(est, k, masks)
        return est

    def apply(self, est: ZOEstimate, k: int, masks=None) -> None:
        """Apply the update of estimate ``est`` (restoring a pending perturbation in the same sweep)."""
        lr = self.eta(k)
        coefs = est.coefs
        if any(not math.isfinite(c) for c in coefs):
            raise ZONonFinite(f"projected gradient is NaN/inf at iteration {k}")
        self.state["t"] += 1
        if self.normalizer is not None:
            inv = self.normalizer.scale(sum(c * c for c in coefs))   # mean ĝ entry² ≈ Σ c_i² (E z² = 1)
            coefs = [c * inv for c in coefs]
        off = est.pending_offset
        with torch.no_grad():
            if self.optimizer in ("sgd", "sign"):
                if self.optimizer == "sign":
                    coefs = [math.copysign(1.0, c) / len(coefs) if c != 0 else 0.0 for c in coefs]
                last = len(coefs) - 1
                shrinks = []
                for j, p in enumerate(self.params):
                    shrink = 1.0 - lr * self.wd[j]
                    shrinks.append(shrink)
                    if shrink != 1.0:
                        p.data.mul_(shrink)
                    m = _mask(masks, j)
                    for i, (s, c) in enumerate(zip(est.seeds, coefs)):
                        alpha = -lr * c
                        if i == last and off != 0.0:
                            alpha += -shrink * off  # fused restore: undo θ_off = θ + off·z
                        add_noise_(p.data, derive_seed(s, j), self.kind, alpha, m)
                if self.log is not None:
                    self.log.append(([(s, -lr * c) for s, c in zip(est.seeds, coefs)], shrinks))
                return
            assert off == 0.0
            b1, b2 = self.betas
            t = self.state["t"]
            for j, p in enumerate(self.params):
                m = _mask(masks, j)
                g = torch.zeros_like(p.data)
                for s, c in zip(est.seeds, coefs):
                    z = noise_like(p.data, derive_seed(s, j), self.kind)
                    if m is not None:
                        z.mul_(m)
                    g.add_(z, alpha=c)
                if self.wd[j]:
                    g.add_(p.data, alpha=self.wd[j])
                bufs = self.state["buffers"].setdefault(j, {})
                if self.optimizer == "momentum":
                    buf = bufs.get("m")
                    if buf is None:
                        bufs["m"] = buf = g
                    else:
                        buf.mul_(self.momentum).add_(g)
                    p.data.add_(buf, alpha=-lr)
                else:
                    mm = bufs.setdefault("m", torch.zeros_like(g))
                    vv = bufs.setdefault("v", torch.zeros_like(g))
                    mm.mul_(b1).add_(g, alpha=1 - b1)
                    vv.mul_(b2).addcmul_(g, g, value=1 - b2)
                    denom = (vv / (1 - b2 ** t)).sqrt_().add_(self.adam_eps)
                    p.data.addcdiv_(mm, denom, value=-lr / (1 - b1 ** t))

    def undo(self, log: list) -> None:
        """Replay logged sgd/sign updates backwards (θ ← (θ − Σ α z) / shrink): the parameters return to
        where the log started, up to rounding, without a copy (used by the lr probe)."""
        with torch.no_grad():
            for alphas, shrinks in reversed(log):
                for j, p in enumerate(self.params):
                    for s, a in alphas:
                        add_noise_(p.data, derive_seed(s, j), self.kind, -a)
                    if shrinks[j] != 1.0:
                        p.data.div_(shrinks[j])

    def state_dict(self) -> dict:
        sd = {"t": self.state["t"], "thresholds": self.state["thresholds"],
              "buffers": {j: {n: b.clone() for n, b in d.items()} for j, d in self.state["buffers"].items()}}
        if self.auto:
            sd["lr0"] = self.lr0
            sd["g0"] = list(self.g0) if self.g0 is not None else None
            sd["normalizer"] = self.normalizer.state_dict() if self.normalizer is not None else None
        return sd

    def load_state_dict(self, sd: dict) -> None:
        self.state = {"t": sd["t"], "thresholds": sd["thresholds"],
                      "buffers": {int(j): {n: b.clone() for n, b in d.items()} for j, d in sd["buffers"].items()}}
        if self.auto:
            self.lr0 = sd.get("lr0")
            self.g0 = tuple(sd["g0"]) if sd.get("g0") is not None else None
            if self.normalizer is not None and sd.get("normalizer") is not None:
                self.normalizer.load_state_dict(sd["normalizer"])


def _no_lr0():
    raise RuntimeError("lr='auto' needs a probed step (ZOStepper.lr0); fine_tune sets it")


def _named(params):
    if isinstance(params, torch.nn.Module):
        return [(n, p) for n, p in params.named_parameters() if p.requires_grad]
    out = []
    for i, p in enumerate(params):
        if isinstance(p, tuple):
            out.append(p)
        elif isinstance(p, torch.Tensor):
            out.append((f"param{i}", p))
        else:
            raise TypeError(f"params[{i}] is {type(p).__name__}; expected a tensor or (name, tensor) pair")
    return out


def mezo_reference_step(params: Sequence[torch.Tensor], closure: Callable[[], object], *, seed: int,
                        eps: float = 1e-3, lr: float = 1e-6, weight_decay: Sequence[float] | float = 0.0,
                        kind: str = "gaussian") -> tuple[float, float]:
    """Faithful reimplementation of the reference MeZO step: 4 separate noise sweeps (perturb +1, −2, +1,
    then update), noise regenerated from the seed each time. Returns (loss₊, projected gradient).
    Uses the same per-tensor seeds as ``ZOStepper`` so both give the same trajectory."""
    wd = [weight_decay] * len(params) if isinstance(weight_decay, (int, float)) else list(weight_decay)

    def perturb(scale):
        with torch.no_grad():
            for j, p in enumerate(params):
                add_noise_(p.data, derive_seed(seed, j), kind, scale * eps)
    perturb(1.0)
    with torch.no_grad():
        l1 = float(closure())
    perturb(-2.0)
    with torch.no_grad():
        l2 = float(closure())
    perturb(1.0)
    g = (l1 - l2) / (2 * eps)
    with torch.no_grad():
        for j, p in enumerate(params):
            z = noise_like(p.data, derive_seed(seed, j), kind)
            if wd[j]:
                p.data.sub_(lr * (g * z + wd[j] * p.data))
            else:
                p.data.sub_(lr * g * z)
    return l1, g
