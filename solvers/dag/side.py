r"""Side constraints on W beyond acyclicity: signs, and smooth equality/inequality rows by an augmented Lagrangian.

Signs (``sign[i, j] = +1``: W_ij ≥ 0, ``−1``: W_ij ≤ 0) are exact bounds on the split W = W⁺ − W⁻ every method
uses (W⁻_ij = 0, resp. W⁺_ij = 0), like forbidden edges. Smooth rows c(W) = 0 and g(W) ≤ 0 (torch callables
W → 1-D tensor) enter NOTEARS' inner objective as the Powell–Hestenes–Rockafellar augmented Lagrangian

    L_ρ(W; ν, μ) = νᵀc + (ρ/2)‖c‖² + (1/2ρ) Σᵢ ( max(0, μᵢ + ρ gᵢ)² − μᵢ² ),

next to the h(W) term, with the first-order updates ν ← ν + ρc, μ ← max(0, μ + ρg) after each outer
iteration and ρ ← 10ρ when the violation max(‖c‖∞, ‖g⁺‖∞) did not fall below ¼ of its previous value
(Nocedal & Wright §17.4; Birgin & Martínez 2014). On a fixed DAG support (h ≡ 0) the same loop is a plain
augmented-Lagrangian refit (`api._refit_on_support`).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch


class SideConstraints:
    """``sign`` (d, d) in {−1, 0, +1} or None; rows ``eq(W) = 0`` and ``ineq(W) <= 0``: torch callables
    W → 1-D tensor (gradients by autograd) or affine rows ``(A, b)`` on vec(W) (row-major; A a scipy sparse or
    dense (m, d²) matrix), whose values and gradients need no autograd."""

    def __init__(self, sign: Optional[np.ndarray] = None, eq=None, ineq=None, rho: float = 1.0,
                 ctol: float = 1e-8, lower: Optional[np.ndarray] = None, upper: Optional[np.ndarray] = None):
        self.sign = None if sign is None else np.asarray(sign, dtype=int)
        if self.sign is not None and not np.isin(self.sign, (-1, 0, 1)).all():
            raise ValueError("sign must hold -1 (W_ij <= 0), 0 (free) or +1 (W_ij >= 0)")
        self.lower = None if lower is None else np.asarray(lower, float)
        self.upper = None if upper is None else np.asarray(upper, float)
        if (self.lower is not None and np.any(self.lower > 0)) or (self.upper is not None and np.any(self.upper < 0)):
            raise ValueError("bounds on W must contain 0 (lower <= 0 <= upper): a bound away from 0 forces an edge; "
                             "give it as an inequality row")
        self.eq, self.ineq, self.rho, self.ctol = eq, ineq, float(rho), float(ctol)
        self.nu = self.mu = None
        self.last = np.inf
        self._dense = {}

    @property
    def smooth(self) -> bool:
        return self.eq is not None or self.ineq is not None

    def _affine(self, rows, W):
        key = id(rows)
        if key not in self._dense:
            A, b = rows
            A = A.toarray() if hasattr(A, "toarray") else np.asarray(A, float)
            self._dense[key] = (torch.as_tensor(A, dtype=W.dtype, device=W.device),
                                torch.as_tensor(np.asarray(b, float).reshape(-1), dtype=W.dtype, device=W.device))
        return self._dense[key]

    def _values(self, rows, W):
        if rows is None:
            return W.new_zeros(0)
        if callable(rows):
            return rows(W).reshape(-1)
        A, b = self._affine(rows, W)
        return A @ W.reshape(-1) + b

    def _pullback(self, rows, W, weights):
        """Jᵀ·weights for the rows at W, as a (d, d) tensor."""
        if rows is None or not weights.numel():
            return torch.zeros_like(W)
        if callable(rows):
            Wg = W.detach().requires_grad_(True)
            with torch.enable_grad():
                (grad,) = torch.autograd.grad((rows(Wg).reshape(-1) * weights).sum(), Wg, allow_unused=True)
            return torch.zeros_like(W) if grad is None else grad.detach()
        A, _ = self._affine(rows, W)
        return (A.T @ weights).reshape(W.shape)

    def rows(self, W: torch.Tensor):
        with torch.no_grad():
            return self._values(self.eq, W), self._values(self.ineq, W)

    def violation(self, W: torch.Tensor) -> float:
        if not self.smooth:
            return 0.0
        c, g = self.rows(W)
        return max(float(c.abs().max()) if c.numel() else 0.0, float(g.clamp_min(0).max()) if g.numel() else 0.0)

    def penalty(self, W: torch.Tensor):
        """(L_ρ(W), ∇_W L_ρ) at the current multipliers: ∇ = J_cᵀ(ν + ρc) + J_gᵀ max(0, μ + ρg)."""
        if not self.smooth:
            return 0.0, torch.zeros_like(W)
        c, g = self.rows(W)
        if self.nu is None:
            self.nu, self.mu = c.new_zeros(c.shape), g.new_zeros(g.shape)
        r = self.rho
        wc, wg = self.nu + r * c, (self.mu + r * g).clamp_min(0)
        val = float((self.nu * c).sum() + 0.5 * r * (c * c).sum() + (0.5 / r) * (wg * wg - self.mu * self.mu).sum())
        return val, self._pullback(self.eq, W, wc) + self._pullback(self.ineq, W, wg)

    def update(self, W: torch.Tensor) -> float:
        """Multiplier step at W (the outer iteration's answer); ρ ×10 on slow progress. Returns the violation."""
        if not self.smooth:
            return 0.0
        c, g = self.rows(W)
        if self.nu is None:
            self.nu, self.mu = c.new_zeros(c.shape), g.new_zeros(g.shape)
        viol = self.violation(W)
        self.nu = self.nu + self.rho * c
        self.mu = (self.mu + self.rho * g).clamp_min(0)
        if viol > self.ctol and viol > 0.25 * self.last:
            self.rho = min(10.0 * self.rho, 1e12)
        self.last = viol
        return viol


def box_bounds(bounds: list, side: Optional[SideConstraints], d: int) -> list:
    """Split-vector bounds (W⁺ then W⁻) with the side constraints' signs and magnitude bounds applied:
    W ≥ 0 fixes W⁻ at 0, W ≤ 0 fixes W⁺ at 0, lower ≤ W ≤ upper (lower ≤ 0 ≤ upper) caps W⁺ at upper, W⁻ at −lower."""
    if side is None or (side.sign is None and side.lower is None and side.upper is None):
        return bounds
    out = list(bounds)
    dd = d * d
    hi_pos = np.full(dd, np.inf) if side.upper is None else side.upper.reshape(-1)
    hi_neg = np.full(dd, np.inf) if side.lower is None else -side.lower.reshape(-1)
    if side.sign is not None:
        flat = side.sign.reshape(-1)
        hi_pos, hi_neg = np.where(flat < 0, 0.0, hi_pos), np.where(flat > 0, 0.0, hi_neg)
    for k in range(dd):
        for idx, hi in ((k, hi_pos[k]), (dd + k, hi_neg[k])):
            lo_b, hi_b = out[idx]
            if np.isfinite(hi) and (hi_b is None or hi < hi_b):
                out[idx] = (lo_b, float(hi))
    return out
