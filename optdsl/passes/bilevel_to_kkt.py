r"""Bilevel with an LP / convex-QP follower  ->  one mixed-integer program (KKT conditions + big-M).

Source (optimistic bilevel, one follower level):

    min_{x, y}  f(x, y)   s.t.  G(x, y) ≤ 0,  H(x, y) = 0,  x within its bounds        (leader; may read y)
                y ∈ argmin_y { g(x, y) :  A x + B y ≤ b,  E x + F y = e,  lb ≤ y ≤ ub }    (follower)

with g(x, y) = ½ yᵀQy + yᵀ(P x + q) + φ(x), Q ⪰ 0 (Q = 0: an LP follower), f and G convex, H affine (DCP).

Target. The follower is convex with affine constraints, so (no constraint qualification needed) y is one of
its optima iff multipliers λ ≥ 0, ν exist with

    Q y + P x + q + Bᵀλ + Fᵀν = 0                  stationarity
    A x + B y ≤ b,   E x + F y = e                  primal feasibility (follower bounds are rows of A, B)
    λ ≥ 0                                           dual feasibility
    λᵢ sᵢ = 0,   sᵢ = (b − A x − B y)ᵢ              complementarity

and complementarity becomes linear with one binary uᵢ per inequality row (Fortuny-Amat & McCarl 1981):

    λᵢ ≤ Mᵢ^λ uᵢ,     sᵢ ≤ Mᵢ^s (1 − uᵢ).

The result is a MILP when f, G are piecewise linear (solved by HiGHS through the ``mip`` backend), a MIQP
otherwise. Among the follower's optima the leader picks its best (the optimistic convention).

Big-M from the model. Every bilevel-feasible (x, y) with its multipliers lies in the relaxation
R = {leader constraints and bounds, primal and dual feasibility, stationarity} (complementarity and
integrality dropped). On R every sᵢ ≥ 0 and λᵢ ≥ 0, so two LPs bound them all:

    Mᵢ^s = min( sᵢ's interval bound over the variable bounds,  max_R Σⱼ sⱼ ),     Mᵢ^λ = max_R Σⱼ λⱼ

(times 1.01, plus 1e-6). For an LP follower whose rows do not read the leader, R also carries the dual-value
floor λᵀb + νᵀe ≥ L (strong duality, L an interval bound on the follower's optimum: `_dual_value_floor`), which
bounds the multipliers of transportation-like followers. For 64–400 follower rows each row's M is then tightened to its own LP bound max_R sᵢ,
max_R λᵢ (fewer branch-and-bound nodes: toll pricing with 20 tolled arcs 120 s at the time limit → 74 s optimal).
When both are finite the MILP is an exact reformulation: its optimum is the
certified global optimum of the bilevel model (status OPTIMAL within the MIP gap), and an infeasible MILP
proves the bilevel model infeasible. When one is unbounded (unbounded variables, or degenerate follower
constraints whose multipliers are unbounded) M starts at 10³ and is raised ×10 (up to 10⁷) while it is
active at the solution (λᵢ or sᵢ within 0.1% of M); the answer is then reported LOCALLY_OPTIMAL, since
no finite M is proven valid.

Bilinear leader objectives (pricing, toll setting). A leader objective f(z) = ½ zᵀHz + hᵀz + c whose
leader×follower block is a multiple of the follower's, xᵀH_xy y = α·yᵀJ_x x (J_x = ∂∇_y g/∂x: e.g. revenue
Tᵀq for a follower paying (c + T)ᵀq), is not convex, but on the KKT set it is linear. Dot stationarity with
y and use complementarity λᵀ(A_y y + b) = 0 and E_y y = −e, which hold when the follower's constraints do not
read the leader's variables (A_x = 0, E_x = 0):

    yᵀJ_x x = −yᵀQy − g0ᵀy + λᵀb + νᵀe          (strong duality: the follower's cost equals its dual value)

so f is replaced by ½ zᵀH̃z + hᵀz + c + α(−yᵀQy − g0ᵀy + λᵀb + νᵀe), H̃ = H without the cross blocks:
equal to f at every point of the MILP (an exact rewrite), linear for an LP follower and a bilinear f.

`invert` reports the follower's multipliers under its own constraint names (bounds as ``"y.lb"``/``"y.ub"``)
and certificates: ``lower_level_gap`` (g(x, y) minus the follower's optimum at x, by one convex solve),
``follower_stationarity`` and ``complementarity`` (max λᵢ sᵢ).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import scipy.sparse as sp
import torch

from ..expr.node import Op, Parameter
from ..lower.cvxpy import CvxpyLowering, NotRepresentable
from ..lower.sparse_affine import NotAffine, SparseAffineLowering
from ..lower.torch import TorchLowering
from ..problem import RawSolution
from ..solvers.common import Status
from ..solvers.lazy import lazy_module
from .base import Pass
from .bounds_to_constraints import bound_constraints

cp = lazy_module("cvxpy")   # imported on first use: ~0.7 s that models without a convex step skip

_LEADER_FEATURES = frozenset({"bilevel", "bounds", "equality", "inequality", "nonsmooth", "integer"})
_M_FALLBACK, _M_MAX = 1e3, 1e7
# follower rows for which each row's M is its own LP bound: tighter M, fewer branch-and-bound nodes (below 64 rows
# the m LPs cost more than they save)
_PER_ROW = (64, 400)
# ops a quadratic follower objective may use (anything else: not an LP/QP follower, refused before autograd)
_POLYNOMIAL = frozenset({"add", "sub", "mul", "div", "neg", "power", "matmul", "sum", "mean", "transpose", "reshape",
                         "index", "stack", "concat", "square", "sum_squares", "quad_form"})


class _Relaxed(CvxpyLowering):
    """Lowering with integrality dropped (the big-M bounding LPs run over the continuous relaxation)."""

    def leaf(self, leaf):
        if leaf in self.variables or not getattr(leaf, "integer", False):
            return super().leaf(leaf)
        v = self.variables[leaf] = cp.Variable(leaf.shape, name=leaf.name)
        return v


@dataclass
class _Rows:
    """Follower constraint rows ``A z + b (≤ | =) 0`` with the user's name for each block."""
    A: sp.csr_matrix
    b: np.ndarray
    blocks: list = field(default_factory=list)   # (name, row slice, shape, entry positions or None)


@dataclass
class FollowerData:
    """The follower read off the model: z = all variables flattened; ∇_y g(z) = J z + g0 (exact)."""
    variables: list
    offsets: list
    n: int
    ycols: np.ndarray
    J: np.ndarray
    g0: np.ndarray
    ineq: _Rows
    eq: _Rows
    level: object


def _flat_positions(variables, offsets, which):
    return np.concatenate([np.arange(o, o + v.size) for v, o in zip(variables, offsets) if v in which] or [np.zeros(0, int)])


def _stack(items, low, n):
    As, bs, blocks, k = [], [], [], 0
    for name, expr, shape, where in items:
        aff = low.lower(expr)
        m = aff.b.size
        As.append(aff.A)
        bs.append(aff.b.reshape(-1))
        blocks.append((name, slice(k, k + m), shape, where))
        k += m
    A = sp.vstack(As).tocsr() if As else sp.csr_matrix((0, n))
    return _Rows(A, np.concatenate(bs) if bs else np.zeros(0), blocks)


def follower_data(problem) -> tuple[Optional[FollowerData], Optional[str]]:
    """Read the follower as an LP/convex QP in its own variables, or say why it is not one."""
    levels = problem.extensions.get("bilevel") or ()
    if len(levels) != 1:
        return None, "the KKT rewrite takes one follower level"
    (lv,) = levels
    ys = set(lv.variables)
    if any(getattr(v, "integer", False) for v in lv.variables):
        return None, (f"follower {lv.name!r} has integer variables: its KKT conditions do not describe its optima "
                      "(nearest supported form: continuous follower variables, integer leader variables)")
    for e in [lv.objective] + [c.expr for c in lv.constraints]:
        if any(isinstance(o, Op) and o.name in ("blackbox", "fn", "finite_sum") for o in e.nodes()):
            return None, f"follower {lv.name!r} uses an opaque or black-box function"
    variables = list(problem.variables)
    offsets, n = [], 0
    for v in variables:
        offsets.append(n)
        n += v.size
    ycols = _flat_positions(variables, offsets, ys)
    # the follower's gradient in y must be affine in (x, y): read J, g0 by autograd, check at two random points
    low = TorchLowering()
    sign = -1.0 if lv.sense == "max" else 1.0

    def grad_y(z):
        env = {v: z[o:o + v.size].reshape(v.shape) for v, o in zip(variables, offsets)}
        g = sign * low.evaluate(lv.objective, env).reshape(())
        (gr,) = torch.autograd.grad(g, z, create_graph=True, allow_unused=True)
        return torch.zeros(len(ycols), dtype=torch.float64) if gr is None else gr[torch.as_tensor(ycols)]
    not_qp = (f"the objective of follower {lv.name!r} is not quadratic in (leader, follower) variables: "
              "the KKT rewrite needs an LP or convex-QP follower")
    if any(isinstance(o, Op) and (o.name not in _POLYNOMIAL or (o.name == "power" and o.attrs["p"] not in (1, 2)))
           for o in lv.objective.nodes()):
        return None, not_qp

    def at(z):
        return grad_y(torch.tensor(z, requires_grad=True)).detach().numpy()
    try:
        rng = np.random.default_rng(0)
        za, zb = rng.normal(size=n), rng.normal(size=n)
        mid, ends = at(0.5 * (za + zb)), 0.5 * (at(za) + at(zb))  # affine along a line: three gradients, cheap
        if not np.allclose(mid, ends, rtol=1e-7, atol=1e-7 * (1 + np.abs(ends).max(initial=0))):
            return None, not_qp
        z0 = torch.zeros(n, dtype=torch.float64, requires_grad=True)
        g0 = grad_y(z0).detach().numpy()
        J = torch.autograd.functional.jacobian(grad_y, torch.zeros(n, dtype=torch.float64), vectorize=True).numpy()
        zr = rng.normal(size=n)
        want = J @ zr + g0
        if not np.allclose(at(zr), want, rtol=1e-7, atol=1e-7 * (1 + np.abs(want).max(initial=0))):
            return None, not_qp
    except (RuntimeError, ValueError, TypeError) as e:
        return None, f"the objective of follower {lv.name!r} could not be differentiated ({e})"
    Q = J[:, ycols]
    if len(ycols) and np.linalg.eigvalsh(0.5 * (Q + Q.T)).min() < -1e-9 * (1 + np.abs(Q).max()):
        return None, f"the objective of follower {lv.name!r} is not convex in its own variables"
    # constraints: affine in (x, y); follower bounds are follower rows
    alow = SparseAffineLowering(variables, offsets, n)
    ineq, eq = [], []
    for c in lv.constraints:
        (eq if c.kind == "eq" else ineq).append((c.name, c.expr, c.expr.shape, None))
    for item in bound_constraints(problem.with_(variables=tuple(lv.variables))):
        v = next(u for u in lv.variables if item.name.startswith(f"{u.name}."))
        b = v.lb if item.name.endswith(".lb") else v.ub
        ineq.append((item.name, item.expr, v.shape, np.flatnonzero(np.isfinite(b).reshape(-1))))
    try:
        rows_in, rows_eq = _stack(ineq, alow, n), _stack(eq, alow, n)
    except NotAffine as e:
        return None, f"a constraint of follower {lv.name!r} is not affine ({e}): the KKT rewrite needs linear constraints"
    return FollowerData(variables, offsets, n, ycols, J, g0, rows_in, rows_eq, lv), None


@dataclass
class BilinearLeader:
    """f(z) = ½ zᵀHz + hᵀz + c with leader×follower block α·J_xᵀ, rewritten by strong duality (module
    docstring). `P` = H̃ − 2α·Q (on the follower block): the quadratic part after the rewrite, PSD."""
    H: np.ndarray
    h: np.ndarray
    c: float
    alpha: float
    P: np.ndarray


def _quadratic_model(expr, variables, offsets, n):
    """(c, h, H) with expr(z) = c + hᵀz + ½ zᵀHz exactly (checked at a random point), or None."""
    if any(isinstance(o, Op) and (o.name not in _POLYNOMIAL or (o.name == "power" and o.attrs["p"] not in (1, 2)))
           for o in expr.nodes()):
        return None
    low = TorchLowering()

    def f(z):
        env = {v: z[o:o + v.size].reshape(v.shape) for v, o in zip(variables, offsets)}
        return low.evaluate(expr, env).reshape(())
    try:
        z0 = torch.zeros(n, dtype=torch.float64, requires_grad=True)
        c = f(z0)
        (h,) = torch.autograd.grad(c, z0, allow_unused=True)
        h = np.zeros(n) if h is None else h.detach().numpy()
        H = torch.autograd.functional.hessian(f, torch.zeros(n, dtype=torch.float64)).numpy().reshape(n, n)
        zr = np.random.default_rng(1).normal(size=n)
        want = float(c.detach()) + h @ zr + 0.5 * zr @ H @ zr
        got = float(f(torch.tensor(zr)).detach())
    except (RuntimeError, ValueError, TypeError):
        return None
    if not np.isclose(got, want, rtol=1e-8, atol=1e-8 * (1 + abs(want))):
        return None
    return float(c.detach()), h, 0.5 * (H + H.T)


def bilinear_leader(problem, d: FollowerData) -> tuple[Optional[BilinearLeader], Optional[str]]:
    """The strong-duality form of a leader objective that is bilinear in (leader, follower), or why not."""
    head = "the leader objective is not convex (DCP) in (leader, follower) variables"
    q = _quadratic_model(problem.objective, d.variables, d.offsets, d.n)
    if q is None:
        return None, head
    c, h, H = q
    xc = np.setdiff1d(np.arange(d.n), d.ycols)
    K, Jx = H[np.ix_(xc, d.ycols)], d.J[:, xc].T           # leader×follower blocks: xᵀK y and xᵀJ_xᵀ y
    scale = np.abs(Jx).max(initial=0.0)
    alpha = float(np.sum(K * Jx) / np.sum(Jx * Jx)) if scale > 0 else 0.0
    if not np.any(K) or not np.allclose(K, alpha * Jx, rtol=0, atol=1e-9 * (1 + np.abs(K).max())):
        return None, (f"{head}, and its leader×follower products are not a multiple of those in follower "
                      f"{d.level.name!r}'s objective (the strong-duality rewrite needs e.g. revenue Tᵀq with the "
                      "follower paying (c + T)ᵀq)")
    for rows, kind in ((d.ineq, "inequality"), (d.eq, "equality")):
        if rows.A.shape[0] and abs(rows.A[:, xc]).max() > 0:
            return None, (f"{head}: the strong-duality rewrite of its bilinear terms needs follower constraints "
                          f"that do not read leader variables (an {kind} row of {d.level.name!r} does)")
    Ht = H.copy()
    Ht[np.ix_(xc, d.ycols)] = 0.0
    Ht[np.ix_(d.ycols, xc)] = 0.0
    P = Ht.copy()
    P[np.ix_(d.ycols, d.ycols)] -= 2 * alpha * 0.5 * (d.J[:, d.ycols] + d.J[:, d.ycols].T)
    P[np.abs(P) <= 1e-12 * (1 + np.abs(P).max(initial=0.0))] = 0.0
    if np.any(P) and np.linalg.eigvalsh(P).min() < -1e-9 * (1 + np.abs(P).max()):
        return None, f"{head}, and not convex after the strong-duality rewrite of its bilinear terms"
    return BilinearLeader(H, h, c, alpha, P), None


def _objective_is_convex(problem) -> bool:
    try:
        return _Relaxed().lower(problem.objective).is_convex()
    except NotRepresentable:   # e.g. a product cvxpy will not form: the bilinear route may still take it
        return False


def _flat(low, d: FollowerData):
    return cp.hstack([cp.vec(low.leaf(v), order="C") if v.shape else cp.reshape(low.leaf(v), (1,), order="C")
                      for v in d.variables])


def _leader_reason(problem, data: Optional[FollowerData] = None) -> Optional[str]:
    low = _Relaxed()
    try:
        if not _objective_is_convex(problem):
            if data is None:
                return "the leader objective is not convex (DCP) in (leader, follower) variables"
            why = bilinear_leader(problem, data)[1]
            if why:
                return why
        for c in problem.constraints:
            e = low.lower(c.expr)
            if (c.kind == "eq" and not e.is_affine()) or (c.kind == "ineq" and not e.is_convex()):
                return f"leader constraint {c.name!r} is not {'affine' if c.kind == 'eq' else 'convex (DCP)'}"
    except NotRepresentable as e:
        return f"the leader is not representable in cvxpy ({e})"
    return None


def _params(problem):
    exprs = [problem.objective] + [c.expr for c in problem.constraints]
    for lv in problem.extensions.get("bilevel") or ():
        exprs += [lv.objective] + [c.expr for c in lv.constraints]
    return sorted({p for e in exprs for p in e.parameters()}, key=lambda p: p.name)


class KKTForm:
    """The single-level mixed-integer program as cvxpy objects (the ``mip`` backend reads `.problem`).
    Follower data are numbers read off the model: `refresh` rebuilds when a parameter value changed."""

    def __init__(self, problem):
        self.source = problem
        self._build()

    # --- building --------------------------------------------------------------------------------
    def _build(self):
        problem = self.source
        self.param_values = [np.array(p.value, copy=True) for p in _params(problem)]
        data, why = follower_data(problem)
        if data is None:
            raise ValueError(why)
        self.data = data
        self.lowering = CvxpyLowering()
        core, named, self.lam, self.nu, slack = self._assemble(self.lowering)
        m = data.ineq.A.shape[0]
        self.M_lam, self.M_s = cp.Parameter(m, nonneg=True), cp.Parameter(m, nonneg=True)
        self.constraints = named
        cons = list(core)
        self.u = None
        if m:
            u = self.u = cp.Variable(m, boolean=True, name="kkt_active")
            cons += [self.lam <= cp.multiply(self.M_lam, u), slack <= cp.multiply(self.M_s, 1 - u)]
        self.bilinear = None
        if not _objective_is_convex(problem):
            self.bilinear, why = bilinear_leader(problem, data)
            if self.bilinear is None:
                raise ValueError(why)
        self.problem = cp.Problem(cp.Minimize(self._objective(self.lowering, self.lam, self.nu)), cons)
        self.certified, self.big_m = self._derive_big_m(), {}
        self.growths, self.optimistic_gap = 0, None

    def _objective(self, low, lam, nu):
        """The leader's objective; a bilinear one in its strong-duality form (module docstring)."""
        bl, d = self.bilinear, self.data
        if bl is None:
            return low.lower(self.source.objective)
        z = _flat(low, d)
        y = z[d.ycols] if len(d.ycols) < d.n else z
        dual = -bl.alpha * (d.g0 @ y)
        if lam is not None:
            dual = dual + bl.alpha * (d.ineq.b @ lam)
        if nu is not None:
            dual = dual + bl.alpha * (d.eq.b @ nu)
        quad = 0.5 * cp.quad_form(z, cp.psd_wrap(bl.P)) if np.any(bl.P) else 0.0
        return bl.c + bl.h @ z + quad + dual

    def _assemble(self, low):
        """Leader constraints and bounds, follower feasibility and stationarity (no complementarity)."""
        d, problem = self.data, self.source
        parts = []
        for v in d.variables:
            cv = low.leaf(v)
            parts.append(cp.vec(cv, order="C") if v.shape else cp.reshape(cv, (1,), order="C"))
        z = cp.hstack(parts) if parts else None
        named = {}
        leader_vars = tuple(v for v in problem.variables if v not in set(d.level.variables))
        for item in list(problem.constraints) + bound_constraints(problem.with_(variables=leader_vars)):
            e = low.lower(item.expr)
            named[item.name] = (e == 0) if item.kind == "eq" else (e <= 0)
        cons = list(named.values())
        m_in, m_eq = d.ineq.A.shape[0], d.eq.A.shape[0]
        lam = cp.Variable(m_in, nonneg=True, name="kkt_lambda") if m_in else None
        nu = cp.Variable(m_eq, name="kkt_nu") if m_eq else None
        grad = d.J @ z + d.g0
        slack = None
        if m_in:
            slack = -(d.ineq.A @ z + d.ineq.b)
            cons.append(slack >= 0)
            grad = grad + d.ineq.A[:, d.ycols].T @ lam
        if m_eq:
            cons.append(d.eq.A @ z + d.eq.b == 0)
            grad = grad + d.eq.A[:, d.ycols].T @ nu
        if len(d.ycols):
            cons.append(grad == 0)
        return cons, named, lam, nu, slack

    def _derive_big_m(self) -> bool:
        """M^s and M^λ over the relaxation R (module docstring); True when both are finite (exact rewrite)."""
        d = self.data
        m = d.ineq.A.shape[0]
        if not m:
            return True
        interval = self._interval_slack_bounds()
        low = _Relaxed()
        core, _, lam, nu, slack = self._assemble(low)
        core = core + self._dual_value_floor(lam, nu)
        sum_s = _maximize(cp.sum(slack), core)
        samples = [_z_of(low, d)]           # a point of R, where the follower's multipliers are sampled below
        sum_l = _maximize(cp.sum(lam), core)
        if sum_s == -np.inf or sum_l == -np.inf:  # R is empty: the bilevel model is infeasible; any M proves it
            sum_s = sum_l = 0.0
        Ms = np.minimum(interval, sum_s)
        Ml = np.full(m, sum_l)
        if np.isfinite(sum_l) and np.isfinite(sum_s) and _PER_ROW[0] <= m <= _PER_ROW[1]:
            Ms, Ml = np.minimum(Ms, _per_row_max(slack, core)), np.minimum(Ml, _per_row_max(lam, core))
        if not np.isfinite(sum_l):
            vertex = self._vertex_multiplier_bounds(low, core)
            if vertex is not None:
                Ml = np.minimum(Ml, vertex)
        certified = bool(np.all(np.isfinite(Ms)) and np.all(np.isfinite(Ml)))
        fallback = _M_FALLBACK
        if not np.all(np.isfinite(Ml)):
            # no valid bound: start from 10x the follower's largest multiplier at sampled leader decisions (a weak
            # M makes branch and bound slow: 1e3 took HiGHS 36 s at ny = 25); after_solve raises it while active
            samples.append(np.where(np.isfinite(self._bounds()[0] + self._bounds()[1]),
                                    0.5 * (self._bounds()[0] + self._bounds()[1]), 0.0))
            lams = [_follower_at(d, z)[1] for z in samples if z is not None]
            seen = [float(np.max(lam_, initial=0.0)) for lam_ in lams if lam_ is not None]
            if seen:
                fallback = 10.0 * max(1.0, max(seen))
        self.M_s.value = np.where(np.isfinite(Ms), 1.01 * Ms + 1e-6, _M_FALLBACK)
        self.M_lam.value = np.where(np.isfinite(Ml), 1.01 * Ml + 1e-6, fallback)
        return certified

    def _dual_value_floor(self, lam, nu) -> list:
        """[λᵀb + νᵀe ≥ L] for an LP follower whose rows do not read leader variables: at every KKT point the
        dual value equals the follower's optimum (strong duality), which is at least L = Σⱼ min over the boxes
        of (g0 + J_x x)ⱼ yⱼ (interval arithmetic). Valid on R, and it cuts the rays along which multipliers grow
        while the dual value falls (a demand row's ν with the bounds' λ in transportation-like followers), so
        max Σλ over R becomes finite where it was not: big-M derived, the answer certified."""
        d = self.data
        yc, xc = d.ycols, np.setdiff1d(np.arange(d.n), d.ycols)
        if np.any(d.J[:, yc]) or (lam is None and nu is None):
            return []
        if any(rows.A.shape[0] and abs(rows.A[:, xc]).max() > 0 for rows in (d.ineq, d.eq)):
            return []
        lo, hi = self._bounds()
        Jx = d.J[:, xc]
        with np.errstate(invalid="ignore"):
            low_x = np.where(Jx == 0, 0.0, np.where(Jx > 0, Jx * lo[xc], Jx * hi[xc])).sum(axis=1)
            high_x = np.where(Jx == 0, 0.0, np.where(Jx > 0, Jx * hi[xc], Jx * lo[xc])).sum(axis=1)
            coef_lo, coef_hi = d.g0 + low_x, d.g0 + high_x
            corners = [np.where((c == 0) | (y == 0), 0.0, c * y) for c in (coef_lo, coef_hi) for y in (lo[yc], hi[yc])]
        L = float(np.sum(np.min(corners, axis=0)))
        if not np.isfinite(L):
            return []
        value = 0
        if lam is not None:
            value = value + d.ineq.b @ lam
        if nu is not None:
            value = value + d.eq.b @ nu
        return [value >= L - 1e-9 * (1 + abs(L))]

    def _bounds(self):
        d = self.data
        lo, hi = np.full(d.n, -np.inf), np.full(d.n, np.inf)
        for v, o in zip(d.variables, d.offsets):
            if v.lb is not None:
                lo[o:o + v.size] = v.lb.reshape(-1)
            if v.ub is not None:
                hi[o:o + v.size] = v.ub.reshape(-1)
        return lo, hi

    def _vertex_multiplier_bounds(self, low, core) -> Optional[np.ndarray]:
        """Σλ over R is unbounded whenever two follower rows pull y in opposite directions, yet one valid
        multiplier per optimum suffices: by Carathéodory, −r = Bᵀλ + Fᵀν (r = ∇_y g) has a solution supported
        on rows S (with the equality rows) whose y-gradients are linearly independent, λ_S = −(G_Sᵀ)⁺ r.
        So Mᵢ = max over such S ∋ i of Σⱼ |(G_Sᵀ)⁺ᵢⱼ| max_R |rⱼ| is valid. Enumerated for small followers only
        (≤ 5000 row sets); None otherwise, or when r is unbounded over R."""
        from itertools import combinations
        from math import comb
        d = self.data
        B, F = d.ineq.A[:, d.ycols].toarray(), d.eq.A[:, d.ycols].toarray()
        m, ny = B.shape
        rf = np.linalg.matrix_rank(F) if F.size else 0
        if rf < F.shape[0] or sum(comb(m, k) for k in range(1, ny - rf + 1)) > 5000:
            return None
        z = cp.hstack([cp.vec(low.leaf(v), order="C") if v.shape else cp.reshape(low.leaf(v), (1,), order="C")
                       for v in d.variables])
        R = np.abs(d.g0).astype(float)
        for j in np.flatnonzero(np.any(d.J != 0, axis=1)):
            r = d.J[j] @ z + d.g0[j]
            R[j] = max(_maximize(r, core), _maximize(-r, core))
        if not np.all(np.isfinite(R)):
            return None
        M = np.zeros(m)
        for k in range(1, ny - rf + 1):
            for S in combinations(range(m), k):
                G = np.vstack([B[list(S)], F])
                if np.linalg.matrix_rank(G) < k + rf:
                    continue
                P = np.linalg.pinv(G.T)[:k]
                M[list(S)] = np.maximum(M[list(S)], np.abs(P) @ R)
        return M

    def _interval_slack_bounds(self) -> np.ndarray:
        """sᵢ = −(A z + b)ᵢ ≤ −bᵢ − Σⱼ min(Aᵢⱼ loⱼ, Aᵢⱼ hiⱼ) over the variables' bounds (inf where unbounded)."""
        d = self.data
        lo, hi = self._bounds()
        A = d.ineq.A.tocoo()
        with np.errstate(invalid="ignore"):
            low_terms = np.where(A.data > 0, A.data * lo[A.col], A.data * hi[A.col])
        low_terms = np.where(np.isnan(low_terms), 0.0, low_terms)
        min_Az = np.zeros(A.shape[0])
        np.add.at(min_Az, A.row, low_terms)
        return -d.ineq.b - min_Az

    # --- hooks the mip backend calls ---------------------------------------------------------------
    def refresh(self) -> None:
        if any(not np.array_equal(p.value, old) for p, old in zip(_params(self.source), self.param_values)):
            self._build()
        self.lowering.refresh_parameters()

    # branch and bound accepts binaries within 1e-6 of 0/1, which lets λᵢ·sᵢ reach 1e-6·M: tighter here
    solver_options = {"mip_feasibility_tolerance": 1e-9}

    def polish(self) -> None:
        """Fix the binaries at their rounded values and re-solve: complementarity then holds exactly (λᵢ = 0 or
        sᵢ = 0), not within the integrality tolerance times M."""
        if self.u is None or self.u.value is None:
            return
        fixed = cp.Problem(self.problem.objective, self.problem.constraints + [self.u == np.round(self.u.value)])
        try:
            fixed.solve(solver="HIGHS")
        except cp.SolverError:
            pass

    def after_solve(self) -> bool:
        """Polish; with model-derived M nothing else to do; with fallback M raise it where it is active, or
        everywhere when the leader could do better at its own x (True: solve again)."""
        if self.problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE, cp.USER_LIMIT):
            self.polish()
        if self.certified or self.lam is None or self.growths >= 4:
            return False
        status = self.problem.status
        if status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            lam, s = self.lam.value, -(self.data.ineq.A @ self._z() + self.data.ineq.b)
            active = (lam >= 0.999 * self.M_lam.value) | (s >= 0.999 * self.M_s.value)
            # at the leader's x, a follower optimum better for the leader that these M exclude (its multipliers
            # exceed M_λ, since the dual optimal set does not depend on which follower optimum is taken): raise all
            best = self.optimistic_value()
            self.optimistic_gap = None if best is None else max(float(self.problem.value) - best, 0.0)
            if self.optimistic_gap is not None and self.optimistic_gap > 1e-7 * (1 + abs(self.problem.value)):
                active = np.ones(len(self.M_lam.value), bool)
        elif status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            active = np.ones(len(self.M_lam.value), bool)
        else:
            return False
        if not active.any() or self.M_lam.value.max() >= _M_MAX:
            return False
        self.M_lam.value = np.minimum(self.M_lam.value * np.where(active, 10.0, 1.0), _M_MAX)
        self.M_s.value = np.minimum(self.M_s.value * np.where(active, 10.0, 1.0), _M_MAX)
        self.growths += 1
        return True

    def optimistic_value(self) -> Optional[float]:
        """The leader's best value at the returned leader decision over all follower optima (one convex solve):
        min f(x̂, y) s.t. leader constraints, y follower-feasible, g(x̂, y) <= min g(x̂, ·)."""
        d, z = self.data, self._z()
        phi, lam = _follower_at(d, z)
        if phi is None:
            return None
        low = _Relaxed()
        core, _, _, _, _ = self._assemble(low)
        cons = list(core)
        zl = cp.hstack([cp.vec(low.leaf(v), order="C") if v.shape else cp.reshape(low.leaf(v), (1,), order="C")
                        for v in d.variables])
        ys = set(d.level.variables)
        for v in d.variables:
            if v not in ys:
                cons.append(low.leaf(v) == self.lowering.variables[v].value)
        yc = d.ycols
        y = cp.hstack([cp.vec(low.leaf(v), order="C") if v.shape else cp.reshape(low.leaf(v), (1,), order="C")
                       for v in d.variables if v in ys])
        Q, zx = 0.5 * (d.J[:, yc] + d.J[:, yc].T), z.copy()
        zx[yc] = 0.0
        if np.any(Q) or lam is None:
            g = (d.J @ zx + d.g0) @ y + (0.5 * cp.quad_form(y, cp.psd_wrap(Q)) if np.any(Q) else 0)
            cons.append(g <= phi + 1e-9 * (1 + abs(phi)))
        else:
            # an LP follower's optimal set at x̂ is its feasible set with the rows of a dual optimum λ̂ > 0 active
            # (exact, where a value constraint g <= φ + tol would let a degenerate face leak)
            tight = np.flatnonzero(lam > 1e-9 * (1 + lam.max(initial=0)))
            if len(tight):
                cons.append(d.ineq.A[tight] @ zl + d.ineq.b[tight] == 0)
        if self.bilinear is None:
            obj = low.lower(self.source.objective)
        else:  # f(x̂, y) = ½ yᵀH_yy y + (H_yx x̂ + h_y)ᵀy + const: the leader part fixed, no product left
            bl = self.bilinear
            Hyy = bl.H[np.ix_(yc, yc)]
            obj = (bl.H[yc] @ zx + bl.h[yc]) @ y
            if np.any(Hyy):
                if np.linalg.eigvalsh(Hyy).min() < -1e-9 * (1 + np.abs(Hyy).max()):
                    return None   # not a convex problem in y: no cheap optimistic check
                obj = obj + 0.5 * cp.quad_form(y, cp.psd_wrap(Hyy))
        prob = cp.Problem(cp.Minimize(obj), cons)
        try:
            prob.solve()
        except cp.SolverError:
            return None
        return float(prob.value) if prob.value is not None and np.isfinite(prob.value) else None

    def _z(self) -> np.ndarray:
        return np.concatenate([np.asarray(self.lowering.variables[v].value, float).reshape(-1)
                               if v in self.lowering.variables else np.zeros(v.size) for v in self.data.variables])


def _per_row_max(vec, cons) -> np.ndarray:
    """max vecᵢ over cons for every i: one LP compiled once (the objective row a parameter), m solves."""
    e = cp.Parameter(vec.shape[0])
    prob = cp.Problem(cp.Maximize(e @ vec), cons)
    out = np.full(vec.shape[0], np.inf)
    for i in range(vec.shape[0]):
        e.value = np.eye(1, vec.shape[0], i).ravel()
        try:
            prob.solve(solver="HIGHS")
        except cp.SolverError:
            continue
        if prob.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) and prob.value is not None:
            out[i] = max(float(prob.value), 0.0)
    return out


def _maximize(expr, cons) -> float:
    """max expr over cons (inf when unbounded, -inf when empty)."""
    prob = cp.Problem(cp.Maximize(expr), cons)
    try:
        prob.solve(solver="HIGHS" if prob.is_dcp() and _is_lp(prob) else None)
    except cp.SolverError:
        return np.inf
    if prob.status in (cp.UNBOUNDED, cp.UNBOUNDED_INACCURATE, "infeasible_or_unbounded"):
        return np.inf
    if prob.status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        return -np.inf
    return float(prob.value) if prob.value is not None else np.inf


def _is_lp(prob) -> bool:
    from ..backends.mip_backend import is_milp
    return is_milp(prob)


class BilevelToKKT(Pass):
    name = "bilevel_to_kkt"
    cost = 0.05  # exact and fast where it applies: preferred over the first-order bilevel methods

    def _why(self, problem, tags) -> Optional[str]:
        cached = problem.payload.get("_kkt_why")
        if cached is not None:
            return cached or None
        why = None
        extra = sorted(tags.features - _LEADER_FEATURES)
        if extra:
            why = (f"the leader has {', '.join(extra)}" if extra != ["maximize"]
                   else "the leader maximizes (rewritten to minimize first)")
        if why is None:
            data, why = follower_data(problem)
            why = why or _leader_reason(problem, data)
        if why is None:
            from ..backends.mip_backend import miqp_solver
            low = _Relaxed()
            if not _objective_is_convex(problem):  # accepted as bilinear: linear after the rewrite unless a
                obj_pwl = not np.any(bilinear_leader(problem, data)[0].P)  # quadratic part is left
            else:
                obj_pwl = low.lower(problem.objective).is_pwl()
            if miqp_solver() is None and not (obj_pwl
                                              and all(low.lower(c.expr).is_pwl() for c in problem.constraints)):
                why = ("the leader objective or constraints are not piecewise linear: the KKT rewrite is a "
                       "mixed-integer QP, which needs SCIP or Gurobi (HiGHS takes mixed-integer LPs)")
        problem.payload["_kkt_why"] = why or ""
        return why

    def accepts(self, problem, tags):
        # problem.bounds False: bounds_to_constraints moved the follower's bounds into the leader's constraints,
        # which changes the follower's problem; the rewrite reads bounds where the user declared them
        return ("bilevel" in tags.features and not problem.extensions.get("value_penalty") and problem.bounds
                and self._why(problem, tags) is None)

    def why_not(self, problem, tags):
        if "bilevel" not in tags.features or problem.extensions.get("value_penalty"):
            return None
        return self._why(problem, tags)

    def apply(self, problem):
        form = KKTForm(problem)
        ext = {k: v for k, v in problem.extensions.items() if k != "bilevel"}
        ext.update(cvxpy_lowered=True, integer=True)
        return problem.with_(payload={"cvxpy": form}, extensions=ext, applied=problem.applied + (self.name,)), form

    def invert(self, solution: RawSolution, form: KKTForm):
        d = form.data
        if solution.status.has_point and not solution.values:
            for v, cv in form.lowering.variables.items():
                if cv.value is not None:
                    solution.values[v] = np.asarray(cv.value, dtype=float).reshape(v.shape) + 0.0  # no -0.0
        if not solution.values:
            if solution.status == Status.INFEASIBLE and not form.certified:
                solution.status = Status.OTHER_ERROR
                solution.message += (f"; no bilevel-feasible point with follower multipliers up to M = {_M_MAX:g} "
                                     "(big-M not derivable from the model, so infeasibility is not proven)")
            return solution
        z = form._z()
        lam = np.zeros(0) if form.lam is None else np.maximum(np.asarray(form.lam.value, float), 0.0)
        nu = np.zeros(0) if form.nu is None else np.asarray(form.nu.value, float)
        for rows, mult in ((d.ineq, lam), (d.eq, nu)):
            for name, sl, shape, where in rows.blocks:
                if where is None:
                    solution.duals[name] = mult[sl].reshape(shape)
                else:  # a bound on some entries only: zeros elsewhere
                    full = np.zeros(int(np.prod(shape)) if shape else 1)
                    full[where] = mult[sl]
                    solution.duals[name] = full.reshape(shape)
        s = -(d.ineq.A @ z + d.ineq.b)
        grad = d.J @ z + d.g0 + d.ineq.A[:, d.ycols].T @ lam + d.eq.A[:, d.ycols].T @ nu
        solution.certificates["complementarity"] = float(np.max(np.abs(lam * s), initial=0.0))
        solution.certificates["follower_stationarity"] = float(np.max(np.abs(grad), initial=0.0))
        gap = _lower_level_gap(d, z)
        if gap is not None:
            solution.certificates["lower_level_gap"] = gap
            if gap > 1e-6 * (1 + np.abs(z).max(initial=0)):  # e.g. a time limit before any incumbent
                solution.values = {}
                solution.message += f"; no point where the follower is optimal was found (lower-level gap {gap:.2g})"
                if solution.status.is_success:
                    solution.status = Status.NUMERICAL_ERROR
                return solution
        if getattr(form, "optimistic_gap", None) is not None:
            solution.certificates["optimistic_gap"] = form.optimistic_gap
        solution.extras["big_m"] = {"certified": form.certified, "raised": form.growths,
                                    "max_M_lambda": float(form.M_lam.value.max(initial=0)) if form.lam is not None else 0.0,
                                    "max_M_slack": float(form.M_s.value.max(initial=0)) if form.lam is not None else 0.0}
        if not form.certified and solution.status == Status.OPTIMAL:
            solution.status = Status.LOCALLY_OPTIMAL
            solution.message += ("; big-M not derivable from the model (unbounded variables or multipliers): optimal "
                                 f"among points with follower slacks up to {form.M_s.value.max():g} and multipliers up "
                                 f"to {form.M_lam.value.max():g} (not active there), not certified global")
        return solution


def _z_of(low, d: FollowerData) -> Optional[np.ndarray]:
    """The flat point a cvxpy solve left in a lowering's variables (None when it left none)."""
    parts = []
    for v in d.variables:
        cv = low.variables.get(v)
        if cv is None or cv.value is None:
            return None
        parts.append(np.asarray(cv.value, float).reshape(-1))
    return np.concatenate(parts) if parts else None


def _lower_level_gap(d: FollowerData, z: np.ndarray) -> Optional[float]:
    """g(x, y) − min_y' g(x, y') at the returned x, from the exact quadratic model of g in y."""
    best = _follower_at(d, z)[0]
    if best is None:
        return None
    yc = d.ycols
    Q, zx = 0.5 * (d.J[:, yc] + d.J[:, yc].T), z.copy()
    zx[yc] = 0.0
    yv = z[yc]
    here = float((d.J @ zx + d.g0) @ yv + 0.5 * yv @ Q @ yv)
    return max(here - best, 0.0)


def _follower_at(d: FollowerData, z: np.ndarray):
    """The follower solved at the leader part of z: (optimal value of its y-terms, inequality multipliers),
    (None, None) when it has no optimum there."""
    yc = d.ycols
    if not len(yc):
        return None, None
    Q = d.J[:, yc]
    Q = 0.5 * (Q + Q.T)
    zx = z.copy()
    zx[yc] = 0.0
    lin = d.J @ zx + d.g0            # ∇_y g at (x, 0)
    y = cp.Variable(len(yc))

    def rows(R):
        Ax = R.A @ zx + R.b
        return R.A[:, yc] @ y + Ax
    cons = []
    if d.ineq.A.shape[0]:
        cons.append(rows(d.ineq) <= 0)
    if d.eq.A.shape[0]:
        cons.append(rows(d.eq) == 0)
    obj = lin @ y + (0.5 * cp.quad_form(y, cp.psd_wrap(Q)) if np.any(Q) else 0)
    prob = cp.Problem(cp.Minimize(obj), cons)
    try:
        prob.solve()
    except cp.SolverError:
        return None, None
    if prob.value is None or not np.isfinite(prob.value):
        return None, None
    lam = None
    if d.ineq.A.shape[0] and cons[0].dual_value is not None:
        lam = np.asarray(cons[0].dual_value, float).reshape(-1)
    return float(prob.value), lam


PASS = BilevelToKKT()
