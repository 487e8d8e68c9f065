"""Nonexpansive maps T built from a monotone operator F and a closed convex set Z, for Halpern iteration.

The inclusion is 0 ∈ F(z) + N_Z(z) (a variational inequality); every map below has Fix T = its solutions.
Each map is an object with ``apply(z) -> (T(z), r(z))`` where r(z) is the *natural residual*

    r(z) = ‖z − P_Z(z − ηF(z))‖ / η          (= ‖F(z)‖ when Z is the whole space)

evaluated at z as a by-product (``None`` when not available for free), and is callable as ``T(z)``.

* ``ForwardBackward(F, eta, projection)``: T(z) = P_Z(z − ηF(z)). Nonexpansive (averaged) when F is
  (1/L)-cocoercive and 0 < η ≤ 2/L (e.g. F = ∇f, f convex L-smooth); NOT for skew F such as bilinear games.
  [Diakonikolas 2020, "Halpern iteration for near-optimal and parameter-free monotone inclusion", COLT]
* ``ExtragradientMap(F, eta, projection)``: z̄ = P_Z(z − ηF(z)), T(z) = P_Z(z − ηF(z̄)) (Korpelevich 1976) for
  monotone L-Lipschitz F, η < 1/L. Fix T = solutions; for linear monotone F (bilinear games) with ηL ≤ 1 it
  is nonexpansive (|1 − iηλ − η²λ²| ≤ 1 for skew parts), in general it is a contraction-type map used as
  the extragradient-based Halpern map (cf. Tran-Dinh & Luo 2021).
* ``Resolvent(F, eta, projection)``: T = J_{η(F+N_Z)} = (I + η(F + N_Z))⁻¹, firmly nonexpansive for any
  monotone F (Minty). Computed inexactly: v = P_Z(u − ηF(v)) is a fixed point of a (ηL)-contraction when
  ηL < 1 (Picard iteration), else solved by extragradient on the 1-strongly monotone G(v) = v − u + ηF(v).
  The output v = T(u) satisfies (u − v)/η ∈ (F + N_Z)(v), so ‖u − T u‖/η bounds dist(0, (F+N_Z)(T u)).
* ``LinearResolvent(M, q, eta)``: exact J for affine F(z) = Mz + q without constraints, (I + ηM)⁻¹(u − ηq),
  factored once (LU); the case where Lieder's bound ‖z_k − T z_k‖ ≤ 2‖z₀ − z*‖/(k+1) holds exactly.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch

from ._core import norm
from .projections import Identity, as_projection

__all__ = ["ForwardBackward", "ExtragradientMap", "Resolvent", "LinearResolvent", "natural_residual"]


def natural_residual(z: torch.Tensor, Fz: torch.Tensor, eta: float, projection=None) -> float:
    """‖z − P_Z(z − ηF(z))‖/η given F(z); zero exactly at solutions of 0 ∈ F(z) + N_Z(z)."""
    P = as_projection(projection)
    if isinstance(P, Identity):
        return norm(Fz)
    return norm(z - P(z - eta * Fz)) / eta


class _Map:
    def __init__(self, F: Callable, eta: float, projection=None):
        if not callable(F):
            raise TypeError(f"F must be callable z -> F(z), got {type(F).__name__}")
        if not (isinstance(eta, (int, float)) and math.isfinite(eta) and eta > 0):
            raise ValueError(f"eta must be a finite number > 0, got {eta!r}")
        self.F, self.eta, self.P = F, float(eta), as_projection(projection)
        self.unconstrained = isinstance(self.P, Identity)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return self.apply(z)[0]

    def _res(self, z, zbar, Fz) -> float:
        return norm(Fz) if self.unconstrained else norm(z - zbar) / self.eta


class ForwardBackward(_Map):
    """T(z) = P_Z(z − ηF(z)); one F evaluation per call."""

    def apply(self, z):
        Fz = self.F(z)
        Tz = self.P(z - self.eta * Fz)
        return Tz, self._res(z, Tz, Fz)


class ExtragradientMap(_Map):
    """T(z) = P_Z(z − ηF(P_Z(z − ηF(z)))); two F evaluations per call."""

    def apply(self, z):
        Fz = self.F(z)
        zbar = self.P(z - self.eta * Fz)
        Tz = self.P(z - self.eta * self.F(zbar))
        return Tz, self._res(z, zbar, Fz)


class Resolvent(_Map):
    """Inexact J_{η(F+N_Z)}(u), warm-started from the previous output.

    ``L``: Lipschitz constant of F (needed to pick the inner method); ``inner_tol``: stop the inner loop when
    the inner step ‖v⁺ − v‖ ≤ inner_tol·‖u − v‖ (relative, so accuracy tightens as Halpern converges);
    ``inner_max_iter`` caps the inner loop. ``inner_iterations`` accumulates the inner steps taken.
    """

    def __init__(self, F, eta, projection=None, *, L: float, inner_tol: float = 1e-3, inner_max_iter: int = 200):
        super().__init__(F, eta, projection)
        if not (L > 0 and math.isfinite(L)):
            raise ValueError(f"L must be a finite number > 0, got {L!r}")
        self.L, self.inner_tol, self.inner_max_iter = float(L), float(inner_tol), int(inner_max_iter)
        self.inner_iterations = 0
        self._warm: Optional[torch.Tensor] = None

    def apply(self, u):
        eta, P = self.eta, self.P
        Fu = self.F(u)
        v = P(u - eta * Fu)               # one forward-backward step: also gives r(u)
        res = self._res(u, v, Fu)
        if self._warm is not None and self._warm.shape == u.shape:
            v = self._warm                # warm start: consecutive Halpern points have close resolvents
        picard = eta * self.L < 1.0
        gamma = 1.0 / (2.0 * (1.0 + eta * self.L))
        for _ in range(self.inner_max_iter):
            self.inner_iterations += 1
            if picard:                    # contraction with factor ηL
                v_new = P(u - eta * self.F(v))
            else:                         # EG on G(v) = v − u + ηF(v), 1-strongly monotone, (1+ηL)-Lipschitz
                vb = P(v - gamma * (v - u + eta * self.F(v)))
                v_new = P(v - gamma * (vb - u + eta * self.F(vb)))
            step = norm(v_new - v)
            v = v_new
            if not math.isfinite(step) or step <= self.inner_tol * max(norm(u - v), 1e-300):
                break
        self._warm = v
        return v, res


class LinearResolvent:
    """Exact (I + ηM)⁻¹(u − ηq) for F(z) = Mz + q (unconstrained); z may have any shape (flattened)."""

    def __init__(self, M: torch.Tensor, q: Optional[torch.Tensor] = None, eta: float = 1.0):
        if not isinstance(M, torch.Tensor) or M.ndim != 2 or M.shape[0] != M.shape[1]:
            raise ValueError(f"M must be a square matrix tensor, got "
                             f"{tuple(M.shape) if isinstance(M, torch.Tensor) else type(M).__name__}")
        if q is not None and q.reshape(-1).shape[0] != M.shape[0]:
            raise ValueError(f"q must have {M.shape[0]} entries to match M {tuple(M.shape)}, got {tuple(q.shape)}")
        if not (eta > 0 and math.isfinite(eta)):
            raise ValueError(f"eta must be a finite number > 0, got {eta!r}")
        self.M, self.q, self.eta = M, q, float(eta)
        eye = torch.eye(M.shape[0], device=M.device, dtype=M.dtype)
        self._lu = torch.linalg.lu_factor(eye + self.eta * M)

    def F(self, z):
        Fz = self.M @ z.reshape(-1)
        return (Fz if self.q is None else Fz + self.q.reshape(-1)).reshape(z.shape)

    def apply(self, u):
        rhs = u.reshape(-1) if self.q is None else u.reshape(-1) - self.eta * self.q.reshape(-1)
        v = torch.linalg.lu_solve(*self._lu, rhs.unsqueeze(-1)).squeeze(-1).reshape(u.shape)
        return v, norm(self.F(u))

    def __call__(self, u):
        return self.apply(u)[0]
