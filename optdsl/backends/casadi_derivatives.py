"""Compiled derivatives for the torch backends' small models: f, ∇f, c, J and ∇²ₓₓ(f + λᵀc) as CasADi functions.

On a model of a few variables written with scalar terms, each torch autograd pass costs a fraction of a
millisecond of Python and engine overhead per op (a 3-variable Hock–Schittkowski problem: ~0.5 ms for f, ∇f, c
and J, ~1 ms for the Hessian, however the passes are batched), which is most of an alsketch iteration. The
same expressions lowered once to a CasADi SX graph (`optdsl.lower.casadi`) and differentiated there evaluate
all of it in a few microseconds. Exact derivatives either way (the same functions, differentiated exactly;
values agree to rounding).

Used by ``alsketch``, ``nlp`` and ``lbfgs`` on the CPU in float64 for scalar-written models whose every term has
a CasADi form and whose dense Jacobian and Hessian are small (``n + m <= LIMIT``); anything else (od.fn terms,
black boxes, GPU, float32, large or vector-written models) keeps torch autograd. Built once per compiled model
and reused on re-solves; parameters are CasADi parameters, read at each call.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..solvers.autodiff import NonFinite
from .casadi_buffer import Buffered

LIMIT = 400  # n + m up to which dense CasADi derivatives replace autograd
# models written with vectors (at least VECTOR_ENTRIES entries over their ops, VECTOR_WIDTH per op on average:
# a logistic loss over a data matrix) keep autograd: a few batched tensor ops cost little there, while their
# scalar SX graph (one node per entry) and its symbolic Hessian take longer to build than the solve
VECTOR_ENTRIES, VECTOR_WIDTH = 500, 16


class CasadiDerivatives:
    """``fgcj(x) -> (f, ∇f, c, J)`` and ``hess(x, σ, λ) -> ∇²(σf + λᵀc)`` of a `FlatProblem` (rows: equalities
    then inequalities, row-major, as `FlatProblem.eq` / `.ineq`)."""

    def __init__(self, flat):
        import casadi as ca

        from ..lower.casadi import CasadiLowering, _flat
        items = flat.eq_items + flat.in_items
        exprs = [flat.problem.objective] + [c.expr for c in items]
        params, seen = [], set()
        for e in exprs:
            for prm in e.parameters():
                if prm.id not in seen:
                    seen.add(prm.id)
                    params.append(prm)
        low = CasadiLowering(flat.variables, flat.offsets, flat.n, params, ca.SX)
        memo: dict = {}
        f = low.lower(flat.problem.objective, memo)
        if f.shape != (1, 1):
            raise ValueError(f"the objective must be a scalar, it has shape {flat.problem.objective.shape}")
        rows = [_flat(low.lower(c.expr, memo), c.expr.shape) for c in items]
        g = ca.vertcat(*rows) if rows else ca.SX(0, 1)
        x, p = low.x, low.p
        sigma, lam = ca.SX.sym("sigma"), ca.SX.sym("lam", g.shape[0])
        self.m = g.shape[0]
        self.rows = [(c.name, c.expr.size) for c in items]
        self.m_eq = sum(c.expr.size for c in flat.eq_items)
        self.low = low
        # dense outputs throughout: `DenseOracle` reads them from flat buffers (a gradient entry that does not
        # depend on x, or a constant row, would otherwise be structurally absent)
        self._fgcj = ca.Function("fgcj", [x, p], [ca.densify(f), ca.densify(ca.gradient(f, x)), ca.densify(g),
                                                 ca.densify(ca.jacobian(g, x))])
        L = sigma * f + (ca.dot(lam, g) if self.m else 0)
        self._hess = ca.Function("hess_lag", [x, p, sigma, lam], [ca.densify(ca.hessian(L, x)[0])])

    @classmethod
    def of(cls, flat) -> Optional["CasadiDerivatives"]:
        """The compiled derivatives of `flat` (built once, kept on it), or None where they do not apply."""
        return cls.why_not(flat)[0]

    @classmethod
    def why_not(cls, flat) -> tuple[Optional["CasadiDerivatives"], str]:
        """(derivatives, "") or (None, the reason they do not apply to `flat`)."""
        if flat.device.type != "cpu" or flat.dtype != torch.float64:
            return None, f"the model runs on {flat.device} in {flat.dtype} (CPU float64 needed)"
        m = sum(c.expr.size for c in flat.eq_items + flat.in_items)
        if flat.n + m > LIMIT:
            return None, f"{flat.n} variables and {m} rows exceed the dense limit n + m <= {LIMIT}"
        cached = flat.__dict__.get("_casadi_derivatives")
        if cached is None:
            from ..lower.casadi import entries_per_op
            entries, ops = entries_per_op([flat.problem.objective] + [c.expr for c in flat.eq_items + flat.in_items])
            if entries >= VECTOR_ENTRIES and entries >= VECTOR_WIDTH * max(ops, 1):
                cached = (None, f"the model is written with vectors ({entries} entries over {ops} ops): autograd's "
                                "tensor ops are cheap there")
                flat._casadi_derivatives = cached
                return cached
            try:
                cached = (cls(flat), "")
            except Exception as err:  # noqa: BLE001 - a term with no CasADi form (od.fn, ...): autograd instead
                cached = (None, str(err) or type(err).__name__)
            flat._casadi_derivatives = cached
        return cached

    def oracle(self, scale: float = 1.0, s_eq=None, s_in=None) -> "DenseOracle":
        """The derivatives of ``scale·f`` and of the rows ``s ⊙ c`` (the objective and row scaling a backend
        iterates on), as torch tensors."""
        s = np.ones(self.m)
        if s_eq is not None or s_in is not None:
            parts = [np.asarray(torch.as_tensor(v).cpu().double()).ravel() for v in (s_eq, s_in) if v is not None]
            s = np.concatenate(parts) if parts else s
        return DenseOracle(self, float(scale), s)


class DenseOracle:
    """What ``alsketch.minimize(derivatives=...)`` calls: ``eval(x) -> (f, ∇f, c, J)`` and
    ``hess(x, λ) -> ∇²ₓₓ(f + λᵀc)`` (torch float64 on the CPU), for f = scale·f_model and c = s ⊙ c_model.
    A non-finite objective or row raises `NonFinite`, as the torch evaluation does."""

    def __init__(self, d: CasadiDerivatives, scale: float, s: np.ndarray):
        self.d, self.scale, self.s = d, scale, s
        self.unit_rows = bool(np.all(s == 1.0))
        self.m, self.m_eq = d.m, d.m_eq  # rows (equalities, then inequalities)
        self._fgcj, self._hess = Buffered(d._fgcj), Buffered(d._hess)   # (per oracle: one per solve)

    def _p(self):
        return self.d.low.parameter_values()

    def eval(self, x: torch.Tensor):
        n = x.numel()
        f, g, c, J = self._fgcj(x.detach().cpu().numpy(), self._p())
        f, g = float(f[0]) * self.scale, g * self.scale
        c, J = c.copy(), J.reshape(n, self.d.m).T   # (CasADi's matrices are column-major)
        self._check(f, c)
        if not self.unit_rows:
            c, J = c * self.s, J * self.s[:, None]
        T = torch.from_numpy
        return torch.tensor(f, dtype=torch.float64), T(g.copy()), T(c.copy()), T(J.copy())

    def _check(self, f, c):
        """NaN/inf in the model's own values ends the solve as the torch lowering does (`NonFinite`, naming
        the objective or the constraint)."""
        if not np.isfinite(f):
            raise NonFinite("objective")
        if not np.isfinite(c).all():
            k = 0
            for name, size in self.d.rows:
                if not np.isfinite(c[k:k + size]).all():
                    raise NonFinite(f"constraint {name!r}")
                k += size

    def hess(self, x: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        lam_np = lam.detach().cpu().numpy()
        if not self.unit_rows:
            lam_np = lam_np * self.s
        (H,) = self._hess(x.detach().cpu().numpy(), self._p(), self.scale, lam_np)
        n = x.numel()
        return torch.from_numpy(H.reshape(n, n).T.copy())
