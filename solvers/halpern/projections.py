"""Euclidean projections onto simple convex sets, plus their support functions.

A *set* here is a small object that is callable, ``P(z) -> P_Z(z)`` (a new tensor; the input is never
mutated), and has ``support(g) = max_{u ∈ Z} ⟨g, u⟩`` (``inf`` where unbounded), which the saddle helpers use
to evaluate duality gaps of bilinear games.

* ``Box(lo, hi)``                 P(z) = clamp(z, lo, hi).
* ``Simplex(radius=1)``           {u ≥ 0, Σu = r}; sort-based algorithm of Held, Wolfe & Crowder (1974) /
                                  Duchi et al. (ICML 2008): θ = (Σ_{i≤ρ} u_(i) − r)/ρ, P(z) = (z − θ)₊.
* ``Ball(radius, center=None)``   Euclidean ball: c + (z − c)·min(1, r/‖z − c‖).
* ``Affine(A, b)``                {u : A u = b}: P(z) = z − Aᵀ(AAᵀ)⁺(Az − b) (pseudo-inverse factored once).
* ``Product(sets, sizes)``        block-wise projection of a flat vector (e.g. z = (x, y)).

All work on any device/dtype; set data are moved to the argument's device/dtype on first use.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

__all__ = ["Box", "Simplex", "Ball", "Affine", "Product", "Identity", "as_projection"]


def _like(t, z: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(t, device=z.device, dtype=z.dtype)


class Identity:
    """The whole space (no constraint)."""

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return z

    def support(self, g: torch.Tensor) -> float:
        return 0.0 if float(torch.linalg.vector_norm(g)) == 0.0 else math.inf

    def __repr__(self) -> str:
        return "Identity()"


class Box:
    """Box lo ≤ u ≤ hi (scalars or tensors broadcastable to the argument; ±inf allowed)."""

    def __init__(self, lo=-math.inf, hi=math.inf):
        lo_t, hi_t = torch.as_tensor(lo, dtype=torch.float64), torch.as_tensor(hi, dtype=torch.float64)
        if torch.isnan(lo_t).any() or torch.isnan(hi_t).any():
            raise ValueError("Box: lo and hi must not contain NaN")
        if (lo_t > hi_t).any():
            raise ValueError("Box: need lo <= hi elementwise")
        self.lo, self.hi = lo, hi

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return torch.clamp(z, min=_like(self.lo, z), max=_like(self.hi, z))

    def support(self, g: torch.Tensor) -> float:
        lo, hi = _like(self.lo, g).expand_as(g), _like(self.hi, g).expand_as(g)
        # max over [lo, hi] of g·u: pick hi where g > 0, lo where g < 0 (0·inf counts as 0)
        val = torch.where(g > 0, g * hi, torch.where(g < 0, g * lo, torch.zeros_like(g)))
        return float(val.sum())

    def __repr__(self) -> str:
        return f"Box(lo={self.lo}, hi={self.hi})"


class Simplex:
    """Scaled probability simplex {u ≥ 0, Σu = radius} over all entries of the argument."""

    def __init__(self, radius: float = 1.0):
        if not (isinstance(radius, (int, float)) and radius > 0 and math.isfinite(radius)):
            raise ValueError(f"Simplex: radius must be a finite number > 0, got {radius!r}")
        self.radius = float(radius)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        v = z.reshape(-1)
        u, _ = torch.sort(v, descending=True)
        css = torch.cumsum(u, 0) - self.radius
        ind = torch.arange(1, v.numel() + 1, device=z.device, dtype=z.dtype)
        cond = u - css / ind > 0
        rho = int(torch.nonzero(cond).max()) if bool(cond.any()) else 0  # last index where it holds
        theta = css[rho] / (rho + 1)
        return torch.clamp(v - theta, min=0).reshape(z.shape)

    def support(self, g: torch.Tensor) -> float:
        return self.radius * float(g.max())

    def __repr__(self) -> str:
        return f"Simplex(radius={self.radius})"


class Ball:
    """Euclidean ball ‖u − center‖₂ ≤ radius."""

    def __init__(self, radius: float = 1.0, center=None):
        if not (isinstance(radius, (int, float)) and radius >= 0 and math.isfinite(radius)):
            raise ValueError(f"Ball: radius must be a finite number >= 0, got {radius!r}")
        self.radius, self.center = float(radius), center

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        c = _like(self.center, z) if self.center is not None else torch.zeros_like(z)
        d = z - c
        nrm = float(torch.linalg.vector_norm(d))
        return z.clone() if nrm <= self.radius else c + d * (self.radius / nrm)

    def support(self, g: torch.Tensor) -> float:
        c = float((g * _like(self.center, g)).sum()) if self.center is not None else 0.0
        return c + self.radius * float(torch.linalg.vector_norm(g))

    def __repr__(self) -> str:
        return f"Ball(radius={self.radius})"


class Affine:
    """Affine set {u : A u = b}, A of shape (m, d) acting on the flattened argument."""

    def __init__(self, A, b):
        A = torch.as_tensor(A)
        b = torch.as_tensor(b)
        if A.ndim != 2:
            raise ValueError(f"Affine: A must be a matrix (m, d), got shape {tuple(A.shape)}")
        if b.shape != (A.shape[0],):
            raise ValueError(f"Affine: b must have shape ({A.shape[0]},) to match A {tuple(A.shape)}, "
                             f"got {tuple(b.shape)}")
        self.A, self.b = A, b
        self._cache: dict = {}

    def _factors(self, z: torch.Tensor):
        key = (z.device, z.dtype)
        if key not in self._cache:
            A = self.A.to(device=z.device, dtype=z.dtype)
            b = self.b.to(device=z.device, dtype=z.dtype)
            # pinv handles rank-deficient A; computed once per device/dtype
            self._cache[key] = (A, b, torch.linalg.pinv(A @ A.T))
        return self._cache[key]

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        A, b, G = self._factors(z)
        if z.numel() != A.shape[1]:
            raise ValueError(f"Affine: argument has {z.numel()} entries but A has {A.shape[1]} columns")
        v = z.reshape(-1)
        return (v - A.T @ (G @ (A @ v - b))).reshape(z.shape)

    def support(self, g: torch.Tensor) -> float:
        A, b, G = self._factors(g)
        v = g.reshape(-1)
        lam = G @ (A @ v)  # g = Aᵀλ + g_perp; bounded iff g_perp = 0, then max = λᵀb
        perp = v - A.T @ lam
        if float(torch.linalg.vector_norm(perp)) > 1e-9 * max(1.0, float(torch.linalg.vector_norm(v))):
            return math.inf
        return float(lam @ b)

    def __repr__(self) -> str:
        return f"Affine(m={self.A.shape[0]}, d={self.A.shape[1]})"


class Product:
    """Cartesian product: splits a flat vector into blocks of ``sizes`` and projects each block."""

    def __init__(self, sets: Sequence, sizes: Sequence[int], shapes: Optional[Sequence] = None):
        if len(sets) != len(sizes):
            raise ValueError(f"Product: got {len(sets)} sets but {len(sizes)} sizes")
        self.sets = [as_projection(s) for s in sets]
        self.sizes = [int(s) for s in sizes]
        self.shapes = list(shapes) if shapes is not None else [(s,) for s in self.sizes]

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        parts = torch.split(z.reshape(-1), self.sizes)
        return torch.cat([P(p.reshape(sh)).reshape(-1) for P, p, sh in zip(self.sets, parts, self.shapes)])

    def support(self, g: torch.Tensor) -> float:
        parts = torch.split(g.reshape(-1), self.sizes)
        return sum(P.support(p.reshape(sh)) for P, p, sh in zip(self.sets, parts, self.shapes))


def as_projection(p, name: str = "projection"):
    """None -> Identity(); a set object or any callable z -> P(z) is returned unchanged."""
    if p is None:
        return Identity()
    if not callable(p):
        raise TypeError(f"{name} must be None, a set (Box, Simplex, Ball, Affine) or a callable z -> P(z), "
                        f"got {type(p).__name__}")
    return p
