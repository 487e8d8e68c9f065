"""Update rules and learning-rate schedules shared by the ZO optimizers.

Given a gradient estimate ĝ_k (from any estimator):

* ZO-SGD:            x ← x − η_k ĝ                      (MeZO when ĝ = p·z)
* ZO-SGD-momentum:   m ← β m + ĝ;  x ← x − η_k m          (ZO-Bench "ZO-SGD-MMT"; one extra W buffer)
* ZO-sign-SGD:       x ← x − η_k sign(ĝ)                (Liu et al., 2019; on modules the memory-lean
                                                        ZO-Bench form η·sign(p)·z is used instead)
* ZO-Adam:           Adam moments on ĝ (Kingma & Ba), bias-corrected (two extra W buffers)
* conservative:      ZO-SGD-Cons (ZO-Bench): keep the best of {x, x − η ĝ, x + η ĝ} by f (flat only)

Schedules η_k: "constant" (MeZO default), "cosine", "linear" (decay to 0 at max_iter), "inv_sqrt"
(η/√(k+1)), optionally after ``warmup`` linear-warm-up steps, or any callable k -> η. lr="auto" (see
``auto``) defaults to "linear": a noisy estimate is averaged out by the decay.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Union

import torch

OPTIMIZERS = ("sgd", "momentum", "sign", "adam", "conservative")
SCHEDULES = ("constant", "cosine", "linear", "inv_sqrt")


def check_optimizer(name: str) -> str:
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    return name


def make_schedule(lr: Union[float, Callable[[int], float]], schedule: str = "constant",
                  max_iter: Optional[int] = None, warmup: int = 0) -> Callable[[int], float]:
    """Learning rate as a function of the step k (0-based)."""
    if callable(lr):
        return lr
    if not isinstance(lr, (int, float)) or not lr > 0 or not math.isfinite(lr):
        raise ValueError(f"lr must be a finite number > 0 (or a callable step -> lr), got {lr!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if schedule in ("cosine", "linear") and not max_iter:
        raise ValueError(f"schedule={schedule!r} needs max_iter (the decay horizon)")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    lr = float(lr)

    def eta(k: int) -> float:
        if k < warmup:
            return lr * (k + 1) / warmup
        t = k - warmup
        if schedule == "constant":
            return lr
        if schedule == "inv_sqrt":
            return lr / math.sqrt(t + 1)
        horizon = max(1, max_iter - warmup)
        frac = min(1.0, t / horizon)
        if schedule == "cosine":
            return lr * 0.5 * (1 + math.cos(math.pi * frac))
        return lr * (1 - frac)

    return eta


class DenseUpdate:
    """Optimizer state and update for a dense gradient estimate on one tensor (flat problems)."""

    def __init__(self, name: str, momentum: float = 0.9, betas=(0.9, 0.999), adam_eps: float = 1e-8):
        self.name = check_optimizer(name)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum, self.betas, self.adam_eps = momentum, betas, adam_eps
        self.state: dict = {}
        self.t = 0

    def direction(self, g: torch.Tensor) -> torch.Tensor:
        """The step direction d (x ← x − η d) for estimate g; updates internal state."""
        self.t += 1
        if self.name in ("sgd", "conservative"):
            return g
        if self.name == "sign":
            return torch.sign(g)
        if self.name == "momentum":
            buf = self.state.get("m")
            buf = g.clone() if buf is None else buf.mul_(self.momentum).add_(g)
            self.state["m"] = buf
            return buf
        b1, b2 = self.betas
        m = self.state.setdefault("m", torch.zeros_like(g))
        v = self.state.setdefault("v", torch.zeros_like(g))
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        mhat = m / (1 - b1 ** self.t)
        vhat = v / (1 - b2 ** self.t)
        return mhat / (vhat.sqrt() + self.adam_eps)

    def state_dict(self) -> dict:
        return {"t": self.t, **{k: v.clone() for k, v in self.state.items()}}

    def load_state_dict(self, sd: dict) -> None:
        sd = dict(sd)
        self.t = sd.pop("t")
        self.state = {k: v.clone() for k, v in sd.items()}
