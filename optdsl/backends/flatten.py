"""A `Problem` as flat-vector torch callables ``f(x)``, ``eq(x)``, ``ineq(x)`` for tensor-level backends.

Variables are concatenated into one vector (row-major). Constraint rows are concatenated in order,
and `FlatProblem` remembers which rows belong to which named constraint, so multipliers and NaN reports
come back under the user's names.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import scipy.sparse as sp
import torch

from ..expr.analysis import is_affine
from ..expr.batching import batch_constraints
from ..lower.sparse_affine import NotAffine, SparseAffineLowering
from ..lower.sparse_hessian import NotSeparable, SparseHessian
from ..lower.torch import Tape, TorchLowering
from ..problem import Problem
from ..solvers.autodiff import NonFinite, jacobian


# starting gradients (‖∇f(x₀)‖∞) for which the objective is not scaled (IPOPT scales only above 100)
GRADIENT_BAND = (1e-2, 1e3)
# starting row gradients (‖∇cᵢ(x₀)‖∞) for which a constraint row is not scaled: above, the row is scaled down to
# ≤ 100 (IPOPT's nlp_scaling_max_gradient); below, up to about 10 (so c and 1e-4·c are the same row to the solver)
ROW_GRADIENT_BAND = (1e-2, 1e2)
# largest m·n for which the row scales come from a dense Jacobian (beyond it: affine rows only, read sparsely)
DENSE_JACOBIAN_LIMIT = 4_000_000


class NotStructured(Exception):
    """The problem lacks the structure `FlatProblem.sparse_derivatives` needs (the message says what)."""


class FlatProblem:
    def __init__(self, problem: Problem, device: Any = "cpu", dtype: torch.dtype = torch.float64):
        self.problem = problem
        self.device, self.dtype = torch.device(device), dtype
        self.low = TorchLowering(device, dtype)
        self.variables = list(problem.variables)
        self.offsets, n = [], 0
        for v in self.variables:
            self.offsets.append(n)
            n += v.size
        self.n = n
        self.eq_items = [c for c in problem.constraints if c.kind == "eq"]
        self.in_items = [c for c in problem.constraints if c.kind == "ineq"]
        self._scale = None
        self._row_scales = None
        if any(c.soft for c in problem.constraints):
            raise ValueError("FlatProblem expects soft constraints to be rewritten into penalties first")

    # --- variables -------------------------------------------------------------------------------
    def env(self, x: torch.Tensor) -> dict:
        return {v: x[o:o + v.size].reshape(v.shape) for v, o in zip(self.variables, self.offsets)}

    def values(self, x) -> dict:
        x = _numpy(x)
        return {v: x[o:o + v.size].reshape(v.shape).copy() for v, o in zip(self.variables, self.offsets)}

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lb, ub = np.full(self.n, -np.inf), np.full(self.n, np.inf)
        if self.problem.bounds:
            for v, o in zip(self.variables, self.offsets):
                if v.lb is not None:
                    lb[o:o + v.size] = v.lb.ravel()
                if v.ub is not None:
                    ub[o:o + v.size] = v.ub.ravel()
        return lb, ub

    def x0(self, cold: bool = False) -> torch.Tensor:
        """Warm start from the variables' `.value`; otherwise (or with ``cold=True``) 0 moved strictly inside
        the bounds."""
        return torch.as_tensor(self.x0_numpy(cold), dtype=self.dtype, device=self.device)

    def x0_numpy(self, cold: bool = False) -> np.ndarray:
        """`x0` as a float64 numpy vector (for backends that do not run on torch)."""
        lb, ub = self.bounds()
        x = np.zeros(self.n)
        warm = [] if cold else [(v, o) for v, o in zip(self.variables, self.offsets) if v.value is not None]
        for v, o in warm:
            x[o:o + v.size] = np.asarray(v.value, float).ravel()
        if len(warm) == len(self.variables):   # every value set (a re-solve): no cold entries to move inside
            return np.clip(x, lb, ub)
        cold = np.ones(self.n, bool)
        for v, o in warm:
            cold[o:o + v.size] = False
        x = np.clip(x, lb, ub)
        # a cold start exactly on a bound invites log(0)-type trouble: step inside when there is room
        with np.errstate(invalid="ignore"):  # inf - inf where a side is unbounded; masked below
            inside = np.where(np.isfinite(ub), np.minimum(lb + 1.0, (lb + ub) / 2), lb + 1.0)
        at_lb = cold & np.isfinite(lb) & (x <= lb)
        x[at_lb] = inside[at_lb]
        with np.errstate(invalid="ignore"):
            inside_ub = np.where(np.isfinite(lb), np.maximum(ub - 1.0, (lb + ub) / 2), ub - 1.0)
        at_ub = cold & np.isfinite(ub) & (x >= ub)
        x[at_ub] = inside_ub[at_ub]
        return x

    def objective_scale(self) -> float:
        """Gradient-based objective scaling at the start, as IPOPT does it, in both directions.

        With g = ‖∇f(x₀)‖∞ at the cold start x₀ (the warm start if the gradient vanishes there): models whose
        g lies in [GRADIENT_BAND] are left alone (the tolerances were chosen for them); otherwise f is scaled by
        the power of ten s = 10^-round(log10(g / 10)), which brings g to about 10. A power of ten makes a model and
        the same model times 10^±k (k ≥ 2) the same function up to rounding, so they take the same steps and
        stop at the same point. Computed once per compiled model: re-solves keep the scale.
        """
        if self._scale is None:
            self._scale = 1.0
            for start in (self.x0(cold=True), self.x0()):
                x = start.clone().requires_grad_(True)
                try:
                    (g,) = torch.autograd.grad(self.f(x), x, allow_unused=True)
                except (NonFinite, RuntimeError):
                    continue
                gmax = 0.0 if g is None else float(g.abs().max()) if g.numel() else 0.0
                if np.isfinite(gmax) and gmax > 0:
                    lo, hi = GRADIENT_BAND
                    if not lo <= gmax <= hi:
                        self._scale = float(10.0 ** -np.clip(np.round(np.log10(gmax / 10.0)), -8, 8))
                    break
        return self._scale

    def row_scales(self) -> tuple[np.ndarray, np.ndarray]:
        """Gradient-based constraint scaling at the start, as IPOPT's ``nlp_scaling_method=gradient-based``:
        factors (s_eq, s_in), powers of ten, one per row, with the method iterating on sᵢ·cᵢ(x).

        With gᵢ = ‖∇cᵢ(x₀)‖∞ at the cold start (the warm start for rows whose gradient vanishes there): a row with
        gᵢ > 100 gets sᵢ = 10^-ceil(log10(gᵢ/100)) (so sᵢgᵢ ≤ 100, IPOPT's rule); one with 0 < gᵢ < 1e-2 gets
        sᵢ = 10^-round(log10(gᵢ/10)) (about 10; IPOPT leaves those alone, but then 1e-4·c and c lead to different
        points), clipped to 10^±8; others 1. Multipliers of the scaled rows map back as λᵢ = sᵢλ̃ᵢ, and
        feasibility is judged on the user's rows (`ScaledRows`). Computed once per compiled model. Rows of large
        models are scaled only when affine (read off sparsely); nonaffine ones past `DENSE_JACOBIAN_LIMIT` keep 1.
        """
        if self._row_scales is None:
            self._row_scales = (self._scales_of(self.eq_items, self.eq), self._scales_of(self.in_items, self.ineq))
        return self._row_scales

    def _scales_of(self, items, rows) -> np.ndarray:
        m = sum(c.expr.size for c in items)
        g = np.zeros(m)
        if m == 0:
            return np.ones(0)
        if m * self.n > DENSE_JACOBIAN_LIMIT:
            try:  # affine rows: the exact sparse Jacobian, whatever the size
                A, _ = self.affine_rows(items)
                g = np.asarray(abs(A).max(axis=1).todense()).ravel()
            except NotStructured:
                return np.ones(m)
        else:
            for start in (self.x0(cold=True), self.x0()):
                try:
                    J = jacobian(rows, start).detach().cpu().double().numpy().reshape(m, -1)
                except Exception:  # noqa: BLE001 - rows autograd cannot differentiate here: left unscaled
                    continue
                gs = np.max(np.abs(J), axis=1, initial=0.0)
                fill = ~(np.isfinite(g) & (g > 0))
                g[fill] = np.where(np.isfinite(gs[fill]), gs[fill], 0.0)
                if np.all(g > 0):
                    break
        s = np.ones(m)
        lo, hi = ROW_GRADIENT_BAND
        with np.errstate(divide="ignore"):
            down, up = g > hi, (g > 0) & (g < lo)
            s[down] = 10.0 ** -np.minimum(np.ceil(np.log10(g[down] / hi)), 8)
            s[up] = 10.0 ** np.minimum(-np.round(np.log10(g[up] / 10.0)), 8)
        return s

    def row_scaled(self):
        """This problem with its constraint rows scaled (`row_scales`), or itself when every factor is 1."""
        s_eq, s_in = self.row_scales()
        if np.all(s_eq == 1.0) and np.all(s_in == 1.0):
            return self
        return ScaledRows(self, s_eq, s_in)

    def violation(self, x) -> float:
        """max over bounds and rows of the violation at `x`, on the user's own (unscaled) rows."""
        lb, ub = self.bounds()
        x = torch.as_tensor(x, dtype=self.dtype, device=self.device).detach().reshape(-1)
        xn = x.cpu().double().numpy()
        v = max(float(np.max(np.maximum(lb - xn, 0), initial=0)), float(np.max(np.maximum(xn - ub, 0), initial=0)))
        with torch.no_grad():
            rows = torch.cat([self.eq(x).abs().reshape(-1), self.ineq(x).clamp(min=0).reshape(-1)])
        return max(v, float(rows.max()) if rows.numel() else 0.0)

    def unbounded_ray(self, x_start, x_end, feas_tol: float = 1e-6) -> Optional[str]:
        """For a convex model whose run went astray: a message when the objective falls below -1e20 along the
        ray from `x_end` in the direction the run travelled (x_end - x_start) while every constraint and bound
        still holds, i.e. the model is unbounded; else None. (Convexity makes a feasible ray with a linearly
        falling objective a recession direction; -1e20 is the threshold IPOPT uses for diverging iterates.)"""
        x1 = torch.as_tensor(x_end, dtype=self.dtype, device=self.device).detach().reshape(-1)
        d = x1 - torch.as_tensor(x_start, dtype=self.dtype, device=self.device).detach().reshape(-1)
        if not torch.isfinite(x1).all() or not torch.isfinite(d).all() or float(d.abs().max()) == 0:
            return None
        d = d / float(d.abs().max())
        # the travelled direction, and its dominant part alone (a drift in other coordinates that a longer
        # ray would turn into growth is not part of the recession direction)
        for direction in [d] + [torch.where(d.abs() >= c, d, torch.zeros_like(d)) for c in (1e-3, 0.1, 0.5)]:
            why = self._ray(x1, direction, feas_tol)
            if why:
                return why
        return None

    def _ray(self, x1, d, feas_tol):
        lb, ub = (torch.as_tensor(b, dtype=self.dtype, device=self.device) for b in self.bounds())
        with torch.no_grad():
            try:
                prev = float(self.f(x1))
                for k in range(1, 41):
                    t = 10.0 ** k
                    x = x1 + t * d
                    if bool((x < lb - feas_tol).any() or (x > ub + feas_tol).any()):
                        return None
                    viol = torch.cat([self.eq(x).abs().reshape(-1), self.ineq(x).clamp(min=0).reshape(-1)])
                    if viol.numel() and float(viol.max()) > feas_tol * (1 + float(x.abs().max())):
                        return None
                    fx = float(self.f(x))
                    if not fx < prev:
                        return None
                    if fx < -1e20:
                        return (f"the objective decreases without bound along a feasible ray (f = {fx:.3g} at "
                                f"‖x‖∞ = {float(x.abs().max()):.3g}; the model is convex)")
                    prev = fx
            except NonFinite:
                return None
        return None

    # --- functions -------------------------------------------------------------------------------
    def _tape(self, exprs) -> Tape:
        """`exprs` compiled once for this problem's flat vector (lowering walk, constants, slices)."""
        return Tape(self.low, exprs, {id(v): o for v, o in zip(self.variables, self.offsets)})

    def f(self, x: torch.Tensor) -> torch.Tensor:
        tape = self.__dict__.get("_f_tape")
        if tape is None:
            tape = self._f_tape = self._tape([self.problem.objective])
        val = tape(x)[0].reshape(())
        if not math.isfinite(val.item()):
            raise NonFinite("objective")
        if x.requires_grad and not val.requires_grad:
            val = val + 0.0 * x.sum()  # a constant objective (feasibility model): a zero gradient, not an error
        return val

    def _row_plan(self, items) -> tuple:
        """(expressions, gather): what to evaluate for the rows of `items` -- loop-built scalar rows of one
        form batched into one vector (`expr.batching`) -- and the permutation putting the concatenated values
        in row order (None when nothing is batched). Built once per item list."""
        plans = self.__dict__.setdefault("_row_plans", {})
        plan = plans.get(id(items))
        if plan is None or plan[0] is not items:
            batches = batch_constraints(items)
            gather = None
            if any(b.batched for b in batches):
                start = np.cumsum([0] + [c.expr.size for c in items])
                first = {id(c): int(s) for c, s in zip(items, start)}
                order = np.concatenate([np.arange(first[id(c)], first[id(c)] + c.expr.size)
                                        for b in batches for c in b.items])
                inverse = np.empty_like(order)
                inverse[order] = np.arange(order.size)
                gather = torch.as_tensor(inverse, device=self.device)
            exprs = [b.expr for b in batches]
            plan = plans[id(items)] = (items, exprs, gather, self._tape(exprs))
        return plan[1], plan[2]

    def _row_tape(self, items) -> Tape:
        """The row plan's expressions compiled once (`_row_plan`)."""
        self._row_plan(items)
        return self._row_plans[id(items)][3]

    def _rows(self, items, x):
        if not items:
            return torch.zeros(0, dtype=self.dtype, device=self.device)
        _, gather = self._row_plan(items)
        tape = self._row_tape(items)
        parts = tape(x)
        if len(parts) > 1:
            out = torch.cat([p.reshape(-1) for p in parts])
        else:  # one expression: its own tensor (a copy only where it would be a view of x or a constant)
            out = parts[0].reshape(-1).clone() if tape.leaf_output else parts[0].reshape(-1)
        if gather is not None:
            out = out[gather]
        if x.requires_grad and not out.requires_grad:
            out = out + 0.0 * x.sum()  # rows that do not depend on x: zero Jacobian rows, not an autograd error
        # one reduction and one read (a sum that overflows is checked entry by entry)
        if not math.isfinite(out.detach().sum().item()) and not bool(torch.isfinite(out).all()):
            k = 0
            for c in items:
                if not torch.isfinite(out[k:k + c.expr.size]).all():
                    raise NonFinite(f"constraint {c.name!r}")
                k += c.expr.size
        return out

    def eq(self, x: torch.Tensor) -> torch.Tensor:
        return self._rows(self.eq_items, x)

    def ineq(self, x: torch.Tensor) -> torch.Tensor:
        return self._rows(self.in_items, x)

    # --- sparse derivatives (large models) ------------------------------------------------------
    def affine_rows(self, items) -> tuple:
        """(A, b) with the constraints' stacked rows equal to A x + b: A in scipy CSR, read off the expressions
        exactly by the sparse affine lowering (raises `NotStructured` if a constraint is not affine)."""
        if not items:
            return sp.csr_matrix((0, self.n)), np.zeros(0)
        low = SparseAffineLowering(self.variables, self.offsets, self.n)
        try:
            parts = [low.lower(c.expr) for c in items]
        except NotAffine as err:
            raise NotStructured(f"constraint Jacobian: {err}") from None
        return sp.vstack([p.A for p in parts], format="csr"), np.concatenate([p.b.reshape(-1) for p in parts])

    def sparse_derivatives(self) -> dict:
        """Constant sparse constraint Jacobians and a sparse objective Hessian, for structured solvers.

        Applies when every constraint is affine in the variables and the objective is separable in affine
        maps (see `optdsl.lower.sparse_hessian`); otherwise raises `NotStructured` saying what is in the way.
        Returns ``{"jac_eq", "jac_ineq"}`` (scipy CSR, constant) and ``"hess_lag"(x, λ)`` (the Hessian of
        f + λᵀc, which is that of f because c is affine).
        """
        for c in self.eq_items + self.in_items:
            if not is_affine(c.expr, self.variables):
                raise NotStructured(f"constraint {c.name!r} is not affine in the variables")
        try:
            hess = SparseHessian(self.problem.objective, self.variables, self.offsets, self.n, TorchLowering())
        except NotSeparable as err:
            raise NotStructured(f"objective: {err}") from None

        def hess_lag(x, lam):
            return hess(torch.as_tensor(x).detach().cpu().double().numpy())
        return {"jac_eq": self.affine_rows(self.eq_items)[0], "jac_ineq": self.affine_rows(self.in_items)[0],
                "hess_lag": hess_lag}

    # --- multipliers -----------------------------------------------------------------------------
    def split(self, rows, items) -> dict[str, np.ndarray]:
        rows = _numpy(rows).ravel()
        out, k = {}, 0
        for c in items:
            m = c.expr.size
            out[c.name] = rows[k:k + m].reshape(c.expr.shape)
            k += m
        return out

    def row_name(self, group: str, index: int) -> str:
        """The user's name for row ``index`` of the solver's ``group`` ("eq", "ineq", "lb", "ub"), or for entry
        ``index`` of the flat variable vector (group "x")."""
        if group in ("lb", "ub", "x"):
            for v, o in zip(self.variables, self.offsets):
                if o <= index < o + v.size:
                    k = index - o
                    label = v.name if group == "x" else f"{v.name}.{group}"
                    at = ", ".join(str(int(i)) for i in np.unravel_index(k, v.shape))
                    return label + (f"[{at}]" if v.size > 1 else "")
        items = {"eq": self.eq_items, "ineq": self.in_items}.get(group, [])
        k = index
        for c in items:
            if k < c.expr.size:
                at = np.unravel_index(k, c.expr.shape) if c.expr.size > 1 else None
                return f"{c.name!r}" + ("" if at is None else f" at {tuple(int(i) for i in at)}")
            k -= c.expr.size
        return f"{group}[{index}]"

    def duals(self, duals: dict) -> dict[str, np.ndarray]:
        out = {}
        if "eq" in duals:
            out.update(self.split(duals["eq"], self.eq_items))
        if "ineq" in duals:
            out.update(self.split(duals["ineq"], self.in_items))
        for key in ("lb", "ub"):
            if key in duals and self.problem.bounds:
                z = _numpy(duals[key])
                for v, o in zip(self.variables, self.offsets):
                    if getattr(v, key) is not None:
                        out[f"{v.name}.{key}"] = z[o:o + v.size].reshape(v.shape)
        return out

    def callback(self, user_cb: Optional[Any]):
        """Adapt a model-level callback (sees values by variable name) to the tensor-level one."""
        if user_cb is None:
            return None

        def cb(info: dict):
            vals = {v.name: a for v, a in self.values(info["x"]).items()} if "x" in info else {}
            return user_cb({**{k: v for k, v in info.items() if k != "x"}, "values": vals})
        return cb


class ScaledRows:
    """A `FlatProblem` whose constraint rows are multiplied by fixed factors: ``eq(x) = s_eq·c_eq(x)``,
    ``ineq(x) = s_in·c_in(x)`` (and the sparse Jacobians likewise); everything else is the problem's own.
    A method run on it returns multipliers λ̃ of the scaled rows; the user's are ``unscale_duals``: sᵢλ̃ᵢ (the
    Lagrangian term λ̃ᵢ·sᵢcᵢ is λᵢ·cᵢ)."""

    def __init__(self, flat: FlatProblem, s_eq: np.ndarray, s_in: np.ndarray):
        self.flat = flat
        self.s_eq = torch.as_tensor(s_eq, dtype=flat.dtype, device=flat.device)
        self.s_in = torch.as_tensor(s_in, dtype=flat.dtype, device=flat.device)

    def __getattr__(self, name):
        return getattr(self.flat, name)

    def eq(self, x: torch.Tensor) -> torch.Tensor:
        return self.s_eq * self.flat.eq(x)

    def ineq(self, x: torch.Tensor) -> torch.Tensor:
        return self.s_in * self.flat.ineq(x)

    def sparse_derivatives(self) -> dict:
        d = dict(self.flat.sparse_derivatives())  # hess_lag is f's Hessian (affine rows): unchanged
        d["jac_eq"] = sp.diags(self.s_eq.cpu().numpy()) @ d["jac_eq"]
        d["jac_ineq"] = sp.diags(self.s_in.cpu().numpy()) @ d["jac_ineq"]
        return d

    def unscale_duals(self, duals: dict) -> dict:
        out = dict(duals)
        for key, s in (("eq", self.s_eq), ("ineq", self.s_in)):
            if out.get(key) is not None and torch.as_tensor(out[key]).numel() == s.numel():
                out[key] = torch.as_tensor(out[key], dtype=s.dtype, device=s.device).reshape(-1) * s
        return out


class BestPoint:
    """The best iterate a run has shown its callback: the least objective among points whose violation is
    within `feas_tol`, else the least violation. What an interrupted or timed-out run hands back (the docs
    promise the best point seen, not the last iterate). `f` is the objective the run iterates on (a scaled
    one, say). With ``reported_before_step=x0`` the objective a method reports with iterate k is taken as the
    value at the point *before* that step (x0, then iterate k-1), as zeroth-order loops report it: no extra
    black-box evaluation per iteration.

    Offers are judged lazily: the points are kept (up to `PENDING_ENTRIES` numbers) and their objective and
    violation evaluated, in the order offered, only when `x` or `key` is read -- which a run that ends normally
    never does, so it pays no evaluation per iteration for a best point it does not need."""

    PENDING_ENTRIES = 1_000_000

    def __init__(self, flat: FlatProblem, f=None, feas_tol: float = 1e-6, reported_before_step=None):
        self.flat, self.f, self.feas_tol = flat, f or flat.f, feas_tol
        self._x: Optional[torch.Tensor] = None
        self._key: Optional[tuple] = None
        self._pending: list = []
        self.seen = 0  # iterates offered
        self.use_reported = reported_before_step is not None
        self._before = None if reported_before_step is None else self._flat_copy(reported_before_step)

    def _flat_copy(self, x):
        return torch.as_tensor(x).detach().reshape(-1).to(device=self.flat.device, dtype=self.flat.dtype).clone()

    def wrap(self, cb):
        """A tensor-level callback that records each iterate, then defers to `cb` (may be None)."""
        def tracked(info: dict):
            if info.get("x") is not None:
                if self.use_reported and info.get("objective") is not None:
                    before, self._before = self._before, self._flat_copy(info["x"])
                    if before is not None:
                        self.offer(before, info["objective"])
                else:
                    self.offer(info["x"])
            return None if cb is None else cb(info)
        return tracked

    @property
    def x(self) -> Optional[torch.Tensor]:
        self._judge()
        return self._x

    @property
    def key(self) -> Optional[tuple]:
        self._judge()
        return self._key

    def offer(self, x, objective=None) -> None:
        self.seen += 1
        x = self._flat_copy(x)
        self._pending.append((x, objective))
        if len(self._pending) * max(self.flat.n, 1) > self.PENDING_ENTRIES:
            self._judge()

    def _judge(self) -> None:
        pending, self._pending = self._pending, []
        for x, objective in pending:
            self._judge_one(x, objective)

    def _judge_one(self, x, objective) -> None:
        if x.numel() != self.flat.n or not torch.isfinite(x).all():
            return
        try:
            with torch.no_grad():
                f = float(objective) if objective is not None else float(self.f(x))
                viol = self.violation(x)
        except NonFinite:
            return
        if not np.isfinite(f):
            return
        key = (0, f) if viol <= self.feas_tol * (1 + float(x.abs().max())) else (1, viol)
        if self._key is None or key < self._key:
            self._x, self._key = x, key

    def violation(self, x) -> float:
        lb, ub = self.flat.bounds()
        xn = x.detach().cpu().double().numpy()
        v = max(float(np.max(np.maximum(lb - xn, 0), initial=0)), float(np.max(np.maximum(xn - ub, 0), initial=0)))
        rows = torch.cat([self.flat.eq(x).abs().reshape(-1), self.flat.ineq(x).clamp(min=0).reshape(-1)])
        return max(v, float(rows.max()) if rows.numel() else 0.0)

    def better_than(self, x, objective=None) -> bool:
        """Whether the recorded best beats the point `x` (with its objective, if known) a run ended at."""
        if self.x is None:
            return False
        if x is None:
            return True
        other = BestPoint(self.flat, self.f, self.feas_tol)
        other.offer(x, objective)
        return other.key is None or self.key < other.key


def _numpy(a) -> np.ndarray:
    """A float64 numpy array of a tensor or array (numpy input passes without a torch round trip)."""
    if isinstance(a, np.ndarray):
        return a.astype(float, copy=False)
    return torch.as_tensor(a).detach().cpu().double().numpy()
