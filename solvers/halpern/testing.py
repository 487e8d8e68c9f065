"""Problem generators with known answers for the Halpern-family backends (data only, no solving here
except the LP reference for matrix games).

* ``bilinear_game(d, kappa, seed)``: L(x, y) = xᵀAy + bᵀx + cᵀy with A = U diag(s) Vᵀ, s log-spaced in
  [1/κ, 1]; the unique saddle point is y* = −A⁻¹b, x* = −A⁻ᵀc (chosen first, b and c derived).
  F(z) = Mz + q with M = [[0, A], [−Aᵀ, 0]], q = (b, −c); L = ‖A‖₂ = 1 (refs Part 2.5 test 1).
* ``matrix_game(m, n, seed)``: min_{x∈Δm} max_{y∈Δn} xᵀAy with A uniform in [−1, 1]; ``matrix_game_lp(A)``
  gives value and strategies from the LP  min t s.t. Aᵀx ≤ t·1, x ∈ Δm  (scipy linprog / HiGHS), plus the
  classic games ``rock_paper_scissors()`` and ``matching_pennies()`` (value 0, uniform strategies).
* ``finite_sum_bilinear(n, d, kappa, noise, seed)``: A_i = A + noise·E_i, b_i, c_i with Σ_i E_i = 0 (and the
  linear terms centred too), so F = (1/n)Σ F_i is the operator of ``bilinear_game`` and z* is known
  (refs Part 2.5 test 6). Returns a batched component oracle ``components(idx, z) = mean_{i∈idx} F_i(z)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["BilinearGame", "bilinear_game", "matrix_game", "matrix_game_lp", "rock_paper_scissors",
           "matching_pennies", "FiniteSumBilinear", "finite_sum_bilinear"]


@dataclass
class BilinearGame:
    A: torch.Tensor
    b: torch.Tensor
    c: torch.Tensor
    x_star: torch.Tensor
    y_star: torch.Tensor
    lipschitz: float

    def L(self, x, y):
        """The convex–concave function xᵀAy + bᵀx + cᵀy."""
        return x @ self.A @ y + self.b @ x + self.c @ y

    @property
    def M(self) -> torch.Tensor:
        m, n = self.A.shape
        Z = torch.zeros
        top = torch.cat([Z(m, m, dtype=self.A.dtype, device=self.A.device), self.A], 1)
        bot = torch.cat([-self.A.T, Z(n, n, dtype=self.A.dtype, device=self.A.device)], 1)
        return torch.cat([top, bot], 0)

    @property
    def q(self) -> torch.Tensor:
        return torch.cat([self.b, -self.c])

    @property
    def z_star(self) -> torch.Tensor:
        return torch.cat([self.x_star, self.y_star])

    def F(self, z: torch.Tensor) -> torch.Tensor:
        """F(z) = (A y + b, −Aᵀx − c) for z = (x, y)."""
        m = self.A.shape[0]
        x, y = z[:m], z[m:]
        return torch.cat([self.A @ y + self.b, -(self.A.T @ x) - self.c])


def _orth(d, rng):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return q


def bilinear_game(d: int = 20, kappa: float = 10.0, seed: int = 0, dtype=torch.float64, device=None) -> BilinearGame:
    """Square bilinear game with condition number kappa, ‖A‖₂ = 1 and a known random saddle point."""
    rng = np.random.default_rng(seed)
    s = np.logspace(0, -np.log10(kappa), d)
    A = _orth(d, rng) @ np.diag(s) @ _orth(d, rng).T
    xs, ys = rng.standard_normal(d), rng.standard_normal(d)
    t = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
    return BilinearGame(t(A), t(-A @ ys), t(-A.T @ xs), t(xs), t(ys), 1.0)


def matrix_game(m: int = 50, n: int = 50, seed: int = 0, dtype=torch.float64, device=None) -> torch.Tensor:
    """Payoff matrix A (m, n) with entries uniform in [−1, 1]: x ∈ Δm minimises xᵀAy, y ∈ Δn maximises."""
    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.uniform(-1.0, 1.0, (m, n)), dtype=dtype, device=device)


def rock_paper_scissors(dtype=torch.float64) -> torch.Tensor:
    return torch.tensor([[0.0, 1.0, -1.0], [-1.0, 0.0, 1.0], [1.0, -1.0, 0.0]], dtype=dtype)


def matching_pennies(dtype=torch.float64) -> torch.Tensor:
    return torch.tensor([[1.0, -1.0], [-1.0, 1.0]], dtype=dtype)


def matrix_game_lp(A) -> tuple[float, np.ndarray, np.ndarray]:
    """(value, x*, y*) of min_x max_y xᵀAy on simplices via the LP and its dual (scipy HiGHS)."""
    from scipy.optimize import linprog

    A = np.asarray(A.detach().cpu() if isinstance(A, torch.Tensor) else A, dtype=float)
    m, n = A.shape
    # variables (x, t): min t  s.t.  Aᵀx − t ≤ 0, Σx = 1, x ≥ 0
    res = linprog(np.r_[np.zeros(m), 1.0], A_ub=np.c_[A.T, -np.ones(n)], b_ub=np.zeros(n),
                  A_eq=np.r_[np.ones(m), 0.0][None], b_eq=[1.0],
                  bounds=[(0, None)] * m + [(None, None)], method="highs")
    if res.status != 0:
        raise RuntimeError(f"linprog failed: {res.message}")
    y = -res.ineqlin.marginals  # duals of Aᵀx ≤ t are the maximiser's strategy
    return float(res.x[-1]), res.x[:m], y / y.sum()


@dataclass
class FiniteSumBilinear:
    game: BilinearGame          # the mean problem (known saddle point)
    As: torch.Tensor            # (n, d, d) component matrices
    bs: torch.Tensor            # (n, d)
    cs: torch.Tensor            # (n, d)
    lipschitz_bar: float        # sqrt(mean_i ‖A_i‖₂²): "on average" Lipschitz constant of the components

    @property
    def n(self) -> int:
        return self.As.shape[0]

    def components(self, idx: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """mean_{i∈idx} F_i(z), F_i(z) = (A_i y + b_i, −A_iᵀx − c_i); vectorised over the batch."""
        d = self.As.shape[1]
        x, y = z[:d], z[d:]
        A = self.As[idx].mean(0)
        return torch.cat([A @ y + self.bs[idx].mean(0), -(A.T @ x) - self.cs[idx].mean(0)])

    def full(self, z: torch.Tensor) -> torch.Tensor:
        """(1/n)Σ F_i(z) through the precomputed mean (same value as components(arange(n), z))."""
        return self.game.F(z)

    def L_i(self, i: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Component saddle function L_i(x, y) = xᵀA_i y + b_iᵀx + c_iᵀy (for the autograd path)."""
        return x @ self.As[i] @ y + self.bs[i] @ x + self.cs[i] @ y


def finite_sum_bilinear(n: int = 100, d: int = 20, kappa: float = 10.0, noise: float = 0.5, seed: int = 0,
                        dtype=torch.float64, device=None) -> FiniteSumBilinear:
    """n components around ``bilinear_game(d, kappa, seed)``; each ‖A_i − A‖₂ ≈ noise (Gaussian, centred)."""
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    g = bilinear_game(d, kappa, seed, dtype, device)
    rng = np.random.default_rng(seed + 1)
    E = rng.standard_normal((n, d, d)) / (2.0 * np.sqrt(d))   # ‖E_i‖₂ ≈ 1
    E -= E.mean(0)
    eb, ec = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    eb -= eb.mean(0)
    ec -= ec.mean(0)
    t = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
    As = g.A.unsqueeze(0) + noise * t(E)
    bs = g.b.unsqueeze(0) + noise * t(eb) / np.sqrt(d)
    cs = g.c.unsqueeze(0) + noise * t(ec) / np.sqrt(d)
    lbar = float(torch.sqrt((torch.linalg.matrix_norm(As, ord=2) ** 2).mean()))
    return FiniteSumBilinear(g, As, bs, cs, lbar)
