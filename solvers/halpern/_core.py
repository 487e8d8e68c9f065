"""Shared plumbing for the Halpern-family loops: input checks, counted operators, the run monitor.

Not public API. The monitor turns residuals into statuses (OPTIMAL when the residual reaches ``tol``,
NUMERICAL_ERROR with the iteration where a NaN/inf appeared) on top of `optdsl.solvers.common.Budget`.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch

from ..common import Budget, SolverOutput, Status, is_finite, resolve_device

COUNT_KEYS = ("f", "grad", "hvp", "jac", "operator", "component", "linear_iterations")


def new_counts() -> dict:
    return {k: 0 for k in COUNT_KEYS}


def prepare_point(z0, name: str, device, dtype) -> torch.Tensor:
    """A fresh tensor copy of z0 on (device, dtype); ValueError/TypeError for bad input."""
    if not isinstance(z0, torch.Tensor):
        try:
            z0 = torch.as_tensor(z0)
        except Exception as e:  # noqa: BLE001 - re-raised with the argument's name
            raise TypeError(f"{name} must be a tensor or array-like of numbers, got {type(z0).__name__}") from e
    dev, dt = resolve_device(device, dtype, like=z0 if z0.is_floating_point() else None)
    if z0.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(z0.shape)})")
    z = z0.detach().to(device=dev, dtype=dt).clone()
    if not is_finite(z):
        raise ValueError(f"{name} contains NaN or inf")
    return z


def norm(v: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(v))


class CountedOperator:
    """Wraps F(z) -> tensor: counts calls under ``key`` and checks the output's shape once."""

    def __init__(self, F: Callable, counts: dict, key: str = "operator", name: str = "F", weight: int = 1):
        if not callable(F):
            raise TypeError(f"{name} must be callable z -> F(z), got {type(F).__name__}")
        self.F, self.counts, self.key, self.name, self.weight = F, counts, key, name, weight
        self._checked = False

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        out = self.F(z)
        self.counts[self.key] += self.weight
        if not self._checked:
            if not isinstance(out, torch.Tensor):
                raise TypeError(f"{self.name} must return a tensor, got {type(out).__name__}")
            if out.shape != z.shape:
                raise ValueError(f"{self.name}(z) must have the shape of z {tuple(z.shape)}, "
                                 f"got {tuple(out.shape)}")
            self._checked = True
        return out


class Run:
    """Per-run bookkeeping: budget, residual-based stopping, non-finite detection, the output record."""

    def __init__(self, method: str, max_iter, tol, time_limit, callback, counts: dict):
        if tol is not None and not (tol >= 0):
            raise ValueError(f"tol must be >= 0, got {tol}")
        self.method, self.tol, self.counts = method, tol, counts
        self.budget = Budget(max_iter, time_limit, callback)
        self.message = ""
        self.last_residual = math.nan

    def check(self, k: int, z: torch.Tensor, residual: float, **info) -> bool:
        """Record iteration k at point z with its residual; True when the loop must stop."""
        self.last_residual = residual
        if not math.isfinite(residual) or not is_finite(z):
            self.budget.status = Status.NUMERICAL_ERROR
            self.message = f"{self.method}: non-finite iterate or residual at iteration {k}"
            return True
        stop = self.budget.report(k, x=z, residual=residual, **info)
        if self.tol is not None and residual <= self.tol:
            self.budget.status = Status.OPTIMAL
            self.message = f"{self.method}: residual {residual:.3g} <= tol {self.tol:g} at iteration {k}"
            return True
        if stop:
            self.message = f"{self.method}: stopped by {self.budget.status.value} at iteration {k}"
            return True
        return False

    def output(self, z, iterations: int, certificates: dict, extras: Optional[dict] = None) -> SolverOutput:
        status = self.budget.status or Status.ITERATION_LIMIT
        if status == Status.ITERATION_LIMIT and not self.message:
            self.message = f"{self.method}: reached max_iter={self.budget.max_iter}"
        if any(isinstance(v, float) and math.isnan(v) for v in certificates.values()):
            status = Status.NUMERICAL_ERROR
            self.message += " (final certificate is NaN)"
        return SolverOutput(x=z, status=status, iterations=iterations, message=self.message,
                            certificates={k: float(v) for k, v in certificates.items()},
                            counts=dict(self.counts), history=self.budget.history,
                            solve_time=self.budget.elapsed, extras=extras or {})


def check_positive(value, name: str, allow_none: bool = True):
    if value is None and allow_none:
        return None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def estimate_lipschitz(F: Callable, z0: torch.Tensor, iters: int = 30, seed: int = 0) -> float:
    """Estimate ‖∂F(z0)‖₂ by power iteration on JᵀJ (autograd), or by random secants if F is not differentiable.

    Exact for linear F (up to power-iteration accuracy; a 10% margin is added by callers that need it).
    """
    g = torch.Generator(device="cpu").manual_seed(seed)
    v = torch.randn(z0.shape, generator=g, dtype=z0.dtype).to(z0.device)
    v = v / torch.linalg.vector_norm(v)
    Ff = getattr(F, "functional", F)
    try:
        est = 0.0
        for _ in range(iters):
            _, jv = torch.func.jvp(Ff, (z0,), (v,))
            _, vjp = torch.func.vjp(Ff, z0)
            w = vjp(jv)[0]
            nw = torch.linalg.vector_norm(w)
            if not torch.isfinite(nw) or float(nw) == 0.0:
                break
            est = math.sqrt(float(nw))
            v = w / nw
        if est > 0:
            return est
    except Exception:  # noqa: BLE001 - F not traceable by torch.func: fall back to secants
        pass
    f0 = F(z0)
    scale = max(1.0, norm(z0)) * 1e-3
    best = 0.0
    for _ in range(10):
        d = torch.randn(z0.shape, generator=g, dtype=z0.dtype).to(z0.device)
        d = d * (scale / torch.linalg.vector_norm(d))
        best = max(best, norm(F(z0 + d) - f0) / scale)
    return best if best > 0 else 1.0
