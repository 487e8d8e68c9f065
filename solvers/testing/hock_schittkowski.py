"""Hock–Schittkowski test problems as torch functions, with their published optima.

Source: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming Codes*, Lecture Notes in Economics
and Mathematical Systems 187, Springer 1981 (problem numbers as there). Each problem follows the tensor-level
convention of ``optdsl.solvers``: ``f(x) -> scalar``, ``eq(x) -> (m_e,)`` meaning c(x) = 0 and
``ineq(x) -> (m_i,)`` meaning c(x) <= 0 (HS states inequalities as g(x) >= 0; they are negated here), bounds
``lb``/``ub`` as lists with ±inf for "none". ``x0`` is the published starting point (HS21 and HS71's x0 are as
published, even where infeasible). ``f_star`` is the published optimal value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch

INF = math.inf


@dataclass(frozen=True)
class HSProblem:
    """One Hock–Schittkowski problem (number ``number``, n variables)."""

    number: int
    f: Callable[[torch.Tensor], torch.Tensor]
    x0: tuple
    f_star: float
    eq: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
    ineq: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
    lb: Optional[tuple] = None
    ub: Optional[tuple] = None
    x_star: Optional[tuple] = None

    @property
    def name(self) -> str:
        return f"HS{self.number}"

    @property
    def n(self) -> int:
        return len(self.x0)

    def x0_tensor(self, dtype=torch.float64, device=None) -> torch.Tensor:
        return torch.tensor(self.x0, dtype=dtype, device=device)


def _s(*xs):
    return torch.stack(list(xs))


S2, S3 = math.sqrt(2.0), math.sqrt(3.0)
_a56 = math.asin(math.sqrt(1 / 4.2))
_b56 = math.asin(math.sqrt(5 / 7.2))

PROBLEMS: dict[int, HSProblem] = {p.number: p for p in [
    HSProblem(6, lambda x: (1 - x[0]) ** 2, (-1.2, 1.0), 0.0,
              eq=lambda x: _s(10 * (x[1] - x[0] ** 2)), x_star=(1.0, 1.0)),
    HSProblem(7, lambda x: torch.log(1 + x[0] ** 2) - x[1], (2.0, 2.0), -S3,
              eq=lambda x: _s((1 + x[0] ** 2) ** 2 + x[1] ** 2 - 4), x_star=(0.0, S3)),
    HSProblem(9, lambda x: torch.sin(math.pi * x[0] / 12) * torch.cos(math.pi * x[1] / 16), (0.0, 0.0), -0.5,
              eq=lambda x: _s(4 * x[0] - 3 * x[1])),
    HSProblem(21, lambda x: 0.01 * x[0] ** 2 + x[1] ** 2 - 100, (-1.0, -1.0), -99.96,
              ineq=lambda x: _s(-(10 * x[0] - x[1] - 10)), lb=(2.0, -50.0), ub=(50.0, 50.0), x_star=(2.0, 0.0)),
    HSProblem(26, lambda x: (x[0] - x[1]) ** 2 + (x[1] - x[2]) ** 4, (-2.6, 2.0, 2.0), 0.0,
              eq=lambda x: _s((1 + x[1] ** 2) * x[0] + x[2] ** 4 - 3), x_star=(1.0, 1.0, 1.0)),
    HSProblem(27, lambda x: 0.01 * (x[0] - 1) ** 2 + (x[1] - x[0] ** 2) ** 2, (2.0, 2.0, 2.0), 0.04,
              eq=lambda x: _s(x[0] + x[2] ** 2 + 1), x_star=(-1.0, 1.0, 0.0)),
    HSProblem(28, lambda x: (x[0] + x[1]) ** 2 + (x[1] + x[2]) ** 2, (-4.0, 1.0, 1.0), 0.0,
              eq=lambda x: _s(x[0] + 2 * x[1] + 3 * x[2] - 1), x_star=(0.5, -0.5, 0.5)),
    HSProblem(35, lambda x: (9 - 8 * x[0] - 6 * x[1] - 4 * x[2] + 2 * x[0] ** 2 + 2 * x[1] ** 2 + x[2] ** 2
                             + 2 * x[0] * x[1] + 2 * x[0] * x[2]), (0.5, 0.5, 0.5), 1 / 9,
              ineq=lambda x: _s(x[0] + x[1] + 2 * x[2] - 3), lb=(0.0, 0.0, 0.0),
              x_star=(4 / 3, 7 / 9, 4 / 9)),
    HSProblem(39, lambda x: -x[0], (2.0, 2.0, 2.0, 2.0), -1.0,
              eq=lambda x: _s(x[1] - x[0] ** 3 - x[2] ** 2, x[0] ** 2 - x[1] - x[3] ** 2),
              x_star=(1.0, 1.0, 0.0, 0.0)),
    HSProblem(40, lambda x: -x[0] * x[1] * x[2] * x[3], (0.8, 0.8, 0.8, 0.8), -0.25,
              eq=lambda x: _s(x[0] ** 3 + x[1] ** 2 - 1, x[0] ** 2 * x[3] - x[2], x[3] ** 2 - x[1]),
              x_star=(2 ** (-1 / 3), 2 ** (-1 / 2), 2 ** (-11 / 12), 2 ** (-1 / 4))),
    HSProblem(42, lambda x: (x[0] - 1) ** 2 + (x[1] - 2) ** 2 + (x[2] - 3) ** 2 + (x[3] - 4) ** 2,
              (1.0, 1.0, 1.0, 1.0), 28 - 10 * S2,
              eq=lambda x: _s(x[0] - 2, x[2] ** 2 + x[3] ** 2 - 2), x_star=(2.0, 2.0, 0.6 * S2, 0.8 * S2)),
    HSProblem(46, lambda x: ((x[0] - x[1]) ** 2 + (x[2] - 1) ** 2 + (x[3] - 1) ** 4 + (x[4] - 1) ** 6),
              (S2 / 2, 1.75, 0.5, 2.0, 2.0), 0.0,
              eq=lambda x: _s(x[0] ** 2 * x[3] + torch.sin(x[3] - x[4]) - 1, x[1] + x[2] ** 4 * x[3] ** 2 - 2),
              x_star=(1.0,) * 5),
    HSProblem(47, lambda x: ((x[0] - x[1]) ** 2 + (x[1] - x[2]) ** 3 + (x[2] - x[3]) ** 4 + (x[3] - x[4]) ** 4),
              (2.0, S2, -1.0, 2 - S2, 0.5), 0.0,
              eq=lambda x: _s(x[0] + x[1] ** 2 + x[2] ** 3 - 3, x[1] - x[2] ** 2 + x[3] - 1, x[0] * x[4] - 1),
              x_star=(1.0,) * 5),
    HSProblem(48, lambda x: (x[0] - 1) ** 2 + (x[1] - x[2]) ** 2 + (x[3] - x[4]) ** 2, (3.0, 5.0, -3.0, 2.0, -2.0),
              0.0, eq=lambda x: _s(x.sum() - 5, x[2] - 2 * (x[3] + x[4]) + 3), x_star=(1.0,) * 5),
    HSProblem(49, lambda x: ((x[0] - x[1]) ** 2 + (x[2] - 1) ** 2 + (x[3] - 1) ** 4 + (x[4] - 1) ** 6),
              (10.0, 7.0, 2.0, -3.0, 0.8), 0.0,
              eq=lambda x: _s(x[0] + x[1] + x[2] + 4 * x[3] - 7, x[2] + 5 * x[4] - 6), x_star=(1.0,) * 5),
    HSProblem(50, lambda x: ((x[0] - x[1]) ** 2 + (x[1] - x[2]) ** 2 + (x[2] - x[3]) ** 4 + (x[3] - x[4]) ** 2),
              (35.0, -31.0, 11.0, 5.0, -5.0), 0.0,
              eq=lambda x: _s(x[0] + 2 * x[1] + 3 * x[2] - 6, x[1] + 2 * x[2] + 3 * x[3] - 6,
                              x[2] + 2 * x[3] + 3 * x[4] - 6), x_star=(1.0,) * 5),
    HSProblem(51, lambda x: ((x[0] - x[1]) ** 2 + (x[1] + x[2] - 2) ** 2 + (x[3] - 1) ** 2 + (x[4] - 1) ** 2),
              (2.5, 0.5, 2.0, -1.0, 0.5), 0.0,
              eq=lambda x: _s(x[0] + 3 * x[1] - 4, x[2] + x[3] - 2 * x[4], x[1] - x[4]), x_star=(1.0,) * 5),
    HSProblem(52, lambda x: ((4 * x[0] - x[1]) ** 2 + (x[1] + x[2] - 2) ** 2 + (x[3] - 1) ** 2 + (x[4] - 1) ** 2),
              (2.0, 2.0, 2.0, 2.0, 2.0), 1859 / 349,
              eq=lambda x: _s(x[0] + 3 * x[1], x[2] + x[3] - 2 * x[4], x[1] - x[4])),
    HSProblem(56, lambda x: -x[0] * x[1] * x[2], (1.0, 1.0, 1.0, _a56, _a56, _a56, _b56), -3.456,
              eq=lambda x: _s(x[0] - 4.2 * torch.sin(x[3]) ** 2, x[1] - 4.2 * torch.sin(x[4]) ** 2,
                              x[2] - 4.2 * torch.sin(x[5]) ** 2,
                              x[0] + 2 * x[1] + 2 * x[2] - 7.2 * torch.sin(x[6]) ** 2)),
    HSProblem(61, lambda x: (4 * x[0] ** 2 + 2 * x[1] ** 2 + 2 * x[2] ** 2 - 33 * x[0] + 16 * x[1] - 24 * x[2]),
              (0.0, 0.0, 0.0), -143.6461422,
              eq=lambda x: _s(3 * x[0] - 2 * x[1] ** 2 - 7, 4 * x[0] - x[2] ** 2 - 11),
              x_star=(5.32677016, -2.11899864, 3.21046424)),
    HSProblem(71, lambda x: x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2], (1.0, 5.0, 5.0, 1.0), 17.0140173,
              eq=lambda x: _s((x * x).sum() - 40), ineq=lambda x: _s(25 - x[0] * x[1] * x[2] * x[3]),
              lb=(1.0,) * 4, ub=(5.0,) * 4, x_star=(1.0, 4.7429994, 3.8211503, 1.3794082)),
    HSProblem(77, lambda x: ((x[0] - 1) ** 2 + (x[0] - x[1]) ** 2 + (x[2] - 1) ** 2 + (x[3] - 1) ** 4
                             + (x[4] - 1) ** 6), (2.0,) * 5, 0.24150513,
              eq=lambda x: _s(x[0] ** 2 * x[3] + torch.sin(x[3] - x[4]) - 2 * S2,
                              x[1] + x[2] ** 4 * x[3] ** 2 - 8 - S2)),
    HSProblem(78, lambda x: x.prod(), (-2.0, 1.5, 2.0, -1.0, -1.0), -2.91970041,
              eq=lambda x: _s((x * x).sum() - 10, x[1] * x[2] - 5 * x[3] * x[4], x[0] ** 3 + x[1] ** 3 + 1)),
    HSProblem(79, lambda x: ((x[0] - 1) ** 2 + (x[0] - x[1]) ** 2 + (x[1] - x[2]) ** 2 + (x[2] - x[3]) ** 4
                             + (x[3] - x[4]) ** 4), (2.0,) * 5, 0.0787768209,
              eq=lambda x: _s(x[0] + x[1] ** 2 + x[2] ** 3 - 2 - 3 * S2, x[1] - x[2] ** 2 + x[3] + 2 - 2 * S2,
                              x[0] * x[4] - 2)),
]}

NUMBERS = tuple(sorted(PROBLEMS))


def get(number: int) -> HSProblem:
    """The HS problem with this number; raises KeyError listing the available ones."""
    try:
        return PROBLEMS[number]
    except KeyError:
        raise KeyError(f"HS{number} is not in this gallery; available: {NUMBERS}") from None


def relative_error(f: float, f_star: float) -> float:
    """|f − f*| / max(1, |f*|): the relative gap, safe for f* = 0."""
    return abs(f - f_star) / max(1.0, abs(f_star))
