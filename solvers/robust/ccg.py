"""Two-stage robust optimization by column-and-constraint generation (CCG).

Problem (matrix form; x first stage, y recourse, u uncertainty):

    min_{x ∈ X}  cᵀx + max_{u ∈ U} min_{y ∈ Y(x,u)} dᵀy,
    Y(x, u) = {y ≥ 0 : G y ≥ h − E x − M u},
    X = {x : A x ≥ b, lb ≤ x ≤ ub, x_j ∈ ℤ for j ∈ integer}.

CCG (Zeng & Zhao, "Solving two-stage robust optimization problems using a column-and-constraint generation
method", Oper. Res. Lett. 41, 2013) keeps a scenario list u_1..u_r and alternates

* master  MP_r: min cᵀx + η  s.t. x ∈ X, η ≥ dᵀy^l, G y^l ≥ h − E x − M u_l, y^l ≥ 0 (l = 1..r)
  — a relaxation, so its value is a LOWER bound LB;
* adversary Q(x*) = max_{u∈U} min_{y∈Y(x*,u)} dᵀy at the master's x* — UB = min(UB, cᵀx* + Q(x*)) —
  and its maximiser u_{r+1} joins the list with a NEW recourse copy y^{r+1} (the "columns").

It stops when UB − LB ≤ tol·max(1, |UB|); for polyhedral U it ends after at most |vertices(U)| iterations since
Q(x, ·) is convex in u and a maximiser can be taken at a vertex.

The adversary is solved either
* ``"vertices"``: by enumerating the vertices of U (one LP each; exact; detects infeasible recourse, which is
  then added as a feasibility scenario), or
* ``"milp"``: as one MILP through cvxpy/HiGHS from the KKT conditions of the inner LP with big-M
  complementarity (the paper's SP2): G y − r(u) ≤ M(1 − w), π ≤ M w, y ≤ M v, d − Gᵀπ ≤ M(1 − v), with
  r(u) = h − E x* − M u, w, v binary. Relatively complete recourse is assumed. The big-M is multiplied by 10 (up
  to 3 times) when a bound is active at the solution, and the returned u is re-evaluated with an exact LP.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from scipy.optimize import linprog

from ..common import Budget, Callback, SolverOutput, Status
from ..lazy import lazy_module
from .sets import UncertaintySet

cp = lazy_module("cvxpy")   # imported on first use: ~0.7 s that models without a convex step skip

__all__ = ["TwoStageProblem", "ccg", "solve_extensive_form", "recourse_value"]


def _arr(name, v, shape):
    a = np.array(v, dtype=float, copy=True)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    if np.isnan(a).any():
        raise ValueError(f"{name} contains NaN")
    return a


@dataclass
class TwoStageProblem:
    """Data of min_{x∈X} cᵀx + max_{u∈U} min_{y≥0, Gy ≥ h − Ex − Mu} dᵀy (see the module docstring).

    Shapes: c (n,), d (p,), G (q, p), h (q,), E (q, n), M (q, uset.dim), A (r, n), b (r,), lb/ub (n,) with ±inf
    allowed, integer: a boolean mask (n,) or a list of indices of integer first-stage variables.
    """

    c: np.ndarray
    d: np.ndarray
    G: np.ndarray
    h: np.ndarray
    E: np.ndarray
    M: np.ndarray
    uset: UncertaintySet
    A: Optional[np.ndarray] = None
    b: Optional[np.ndarray] = None
    lb: Optional[np.ndarray] = None
    ub: Optional[np.ndarray] = None
    integer: Optional[object] = None
    int_idx: np.ndarray = field(init=False)

    def __post_init__(self):
        if not isinstance(self.uset, UncertaintySet):
            raise TypeError(f"uset must be an UncertaintySet, got {type(self.uset).__name__}")
        c = np.array(self.c, dtype=float)
        d = np.array(self.d, dtype=float)
        if c.ndim != 1 or d.ndim != 1:
            raise ValueError(f"c and d must be vectors, got shapes {c.shape} and {d.shape}")
        n, p = c.shape[0], d.shape[0]
        G = np.array(self.G, dtype=float)
        if G.ndim != 2 or G.shape[1] != p:
            raise ValueError(f"G must have shape (q, {p}) (columns = len(d)), got {G.shape}")
        q = G.shape[0]
        self.c, self.d, self.G = _arr("c", c, (n,)), _arr("d", d, (p,)), _arr("G", G, (q, p))
        self.h = _arr("h", self.h, (q,))
        self.E = _arr("E", self.E, (q, n))
        self.M = _arr("M", self.M, (q, self.uset.dim))
        if (self.A is None) != (self.b is None):
            raise ValueError("give both A and b (A x >= b) or neither")
        if self.A is not None:
            A = np.array(self.A, dtype=float)
            if A.ndim != 2 or A.shape[1] != n:
                raise ValueError(f"A must have shape (r, {n}), got {A.shape}")
            self.A, self.b = _arr("A", A, A.shape), _arr("b", self.b, (A.shape[0],))
        self.lb = np.full(n, -np.inf) if self.lb is None else _arr("lb", np.broadcast_to(self.lb, (n,)), (n,))
        self.ub = np.full(n, np.inf) if self.ub is None else _arr("ub", np.broadcast_to(self.ub, (n,)), (n,))
        if (self.lb > self.ub).any():
            raise ValueError("lb must be <= ub elementwise")
        if self.integer is None:
            self.int_idx = np.zeros(0, dtype=int)
        else:
            mask = np.asarray(self.integer)
            if mask.dtype == bool:
                if mask.shape != (n,):
                    raise ValueError(f"integer mask must have shape ({n},), got {mask.shape}")
                self.int_idx = np.flatnonzero(mask)
            else:
                self.int_idx = np.unique(mask.astype(int))
                if self.int_idx.size and (self.int_idx.min() < 0 or self.int_idx.max() >= n):
                    raise ValueError(f"integer indices must lie in [0, {n}), got {self.int_idx}")

    @property
    def sizes(self) -> tuple[int, int, int]:
        """(n first-stage, p recourse, q recourse constraints)."""
        return self.c.shape[0], self.d.shape[0], self.G.shape[0]


def recourse_value(prob: TwoStageProblem, x, u) -> tuple[float, Optional[np.ndarray]]:
    """min_{y≥0} {dᵀy : G y ≥ h − E x − M u} by an LP: (value, y); value = +inf when infeasible, −inf unbounded."""
    rhs = prob.h - prob.E @ np.asarray(x, dtype=float) - prob.M @ np.asarray(u, dtype=float)
    res = linprog(prob.d, A_ub=-prob.G, b_ub=-rhs, bounds=[(0, None)] * prob.d.shape[0], method="highs")
    if res.status == 2:
        return math.inf, None
    if res.status == 3:
        return -math.inf, None
    if res.status != 0:
        raise RuntimeError(f"recourse LP failed: {res.message}")
    return float(res.fun), res.x


def _master(prob: TwoStageProblem, scenarios: np.ndarray, solver: Optional[str], eta_lb: float = -math.inf):
    """Build and solve the master over a list of scenarios (rows of ``scenarios``); (status, value, x, eta)."""
    n, p, q = prob.sizes
    x = cp.Variable(n)
    cons = []
    if prob.int_idx.size:
        xi = cp.Variable(prob.int_idx.size, integer=True)
        cons.append(x[prob.int_idx] == xi)
    if prob.A is not None:
        cons.append(prob.A @ x >= prob.b)
    fin_lo, fin_hi = np.isfinite(prob.lb), np.isfinite(prob.ub)
    if fin_lo.any():
        cons.append(x[fin_lo] >= prob.lb[fin_lo])
    if fin_hi.any():
        cons.append(x[fin_hi] <= prob.ub[fin_hi])
    L = scenarios.shape[0]
    eta = cp.Variable()
    if L:
        Y = cp.Variable((p, L), nonneg=True)  # one recourse copy (column block) per scenario
        rhs = prob.h[:, None] - prob.M @ scenarios.T
        cons += [prob.G @ Y + cp.reshape(prob.E @ x, (q, 1), order="F") @ np.ones((1, L)) >= rhs,
                 eta >= prob.d @ Y]
    if math.isfinite(eta_lb):
        cons.append(eta >= eta_lb)
    elif not L:
        cons.append(eta == 0)  # unreachable from ccg(): it starts from a scenario when no bound is known
    pr = cp.Problem(cp.Minimize(prob.c @ x + eta), cons)
    try:
        pr.solve(solver=solver or "HIGHS")
    except cp.SolverError as exc:
        return Status.NUMERICAL_ERROR, None, None, None, str(exc)
    st = {cp.INFEASIBLE: Status.INFEASIBLE, cp.UNBOUNDED: Status.UNBOUNDED,
          cp.settings.INFEASIBLE_OR_UNBOUNDED: Status.INFEASIBLE_OR_UNBOUNDED,
          cp.INFEASIBLE_INACCURATE: Status.INFEASIBLE, cp.UNBOUNDED_INACCURATE: Status.UNBOUNDED}.get(pr.status)
    if st is not None:
        return st, None, None, None, f"master problem {pr.status}"
    if x.value is None:
        return Status.NUMERICAL_ERROR, None, None, None, f"master solver returned status {pr.status}"
    xv = np.array(x.value, dtype=float)
    xv[prob.int_idx] = np.round(xv[prob.int_idx])
    return Status.OPTIMAL, float(pr.value), xv, float(eta.value), ""


def _adversary_vertices(prob, x, verts):
    best, arg = -math.inf, None
    for u in verts:
        val, _ = recourse_value(prob, x, u)
        if val > best:
            best, arg = val, u
            if val == math.inf:  # infeasible recourse: this scenario becomes a feasibility cut
                break
    return best, arg, len(verts)


def _adversary_milp(prob, x, big_m, solver):
    n, p, q = prob.sizes
    r_x = prob.h - prob.E @ x
    for attempt in range(4):
        u = cp.Variable(prob.uset.dim)
        y, pi = cp.Variable(p, nonneg=True), cp.Variable(q, nonneg=True)
        w, v = cp.Variable(q, boolean=True), cp.Variable(p, boolean=True)
        slack = prob.G @ y - (r_x - prob.M @ u)
        cons = prob.uset.constraints(u) + [
            slack >= 0, prob.G.T @ pi <= prob.d,          # primal / dual feasibility
            slack <= big_m * (1 - w), pi <= big_m * w,     # π_i (Gy − r)_i = 0
            y <= big_m * v, prob.d - prob.G.T @ pi <= big_m * (1 - v)]  # y_j (d − Gᵀπ)_j = 0
        pr = cp.Problem(cp.Maximize(prob.d @ y), cons)
        try:
            pr.solve(solver=solver or "HIGHS")
        except cp.SolverError as exc:
            return None, None, f"adversarial MILP failed: {exc}", big_m
        if u.value is None:
            if attempt < 3:  # a too-small big-M also cuts off every KKT point
                big_m *= 10.0
                continue
            return None, None, (f"adversarial MILP {pr.status}: no KKT point within big_m={big_m:g}; the MILP "
                                "subproblem assumes relatively complete recourse (try subproblem='vertices')"), big_m
        active = max(np.max(pi.value, initial=0), np.max(y.value, initial=0),
                     np.max(np.abs(slack.value), initial=0)) >= 0.999 * big_m
        if not active or attempt == 3:
            break
        big_m *= 10.0  # a big-M bound is active: it may have cut off the true worst case
    uv = np.array(u.value, dtype=float)
    val, _ = recourse_value(prob, x, uv)
    return val, uv, (f"big-M still active at {big_m:g}: the worst case may be missed" if active else ""), big_m


def ccg(prob: TwoStageProblem, *, tol: float = 1e-6, max_iter: int = 50, time_limit: Optional[float] = None,
        callback: Optional[Callback] = None, subproblem: str = "auto", big_m: float = 1e4,
        initial_scenarios=None, eta_lb: Optional[float] = None, max_vertices: int = 4096,
        solver: Optional[str] = None) -> SolverOutput:
    """Column-and-constraint generation for a `TwoStageProblem`.

    Args:
        tol: stop when UB − LB ≤ tol·max(1, |UB|).
        subproblem: "vertices" (enumerate U's vertices, exact), "milp" (KKT big-M MILP via HiGHS), or "auto"
            (vertices when U has at most ``max_vertices`` vertices, else milp).
        big_m: initial big-M of the KKT MILP (raised automatically when active).
        initial_scenarios: (r, dim) array of starting scenarios (r may be 0). Default: none when a lower bound
            on the recourse cost is known (as in Zeng & Zhao), else one point of U (its centre).
        eta_lb: a valid lower bound on the recourse cost, added as η ≥ eta_lb; default 0 when d ≥ 0 (then
            dᵀy ≥ 0 for y ≥ 0), else none.
        solver: cvxpy solver name for master and MILP (default "HIGHS").
    Returns:
        SolverOutput with x (numpy first-stage decision), objective = best UB, history rows holding
        lower_bound / upper_bound / gap / scenarios per iteration, certificates {"gap", "relative_gap",
        "lower_bound", "upper_bound"}, extras {"scenarios", "worst_case_u", "y_worst"}.
    """
    if not isinstance(prob, TwoStageProblem):
        raise TypeError(f"prob must be a TwoStageProblem, got {type(prob).__name__}")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    if subproblem not in ("auto", "vertices", "milp"):
        raise ValueError(f"subproblem must be 'auto', 'vertices' or 'milp', got {subproblem!r}")
    if big_m <= 0:
        raise ValueError(f"big_m must be > 0, got {big_m}")
    verts = None
    if subproblem in ("auto", "vertices"):
        try:
            verts = prob.uset.vertices(max_count=max_vertices)
        except ValueError as exc:
            if subproblem == "vertices":
                raise ValueError(f"subproblem='vertices' needs a small polyhedral set: {exc}") from None
    if verts is None and not prob.uset.is_polyhedral:
        raise ValueError(f"CCG needs a polyhedral uncertainty set (Box, Budget, Polyhedron), got {prob.uset!r}")
    mode = "vertices" if verts is not None else "milp"
    dim = prob.uset.dim
    if eta_lb is None:
        eta_lb = 0.0 if (prob.d >= 0).all() else -math.inf
    if initial_scenarios is None:
        scen = np.zeros((0, dim)) if math.isfinite(eta_lb) else prob.uset.point()[None, :]
    else:
        scen = np.array(initial_scenarios, dtype=float, copy=True).reshape(-1, dim)
        if scen.shape[0] == 0 and not math.isfinite(eta_lb):
            raise ValueError("initial_scenarios is empty and no finite eta_lb is given: the first master "
                             "problem would be unbounded")
    t0 = time.perf_counter()
    budget = Budget(max_iter, time_limit, callback)
    lb, ub = -math.inf, math.inf
    best_x, best_u, status, msg = None, None, None, ""
    counts = {"master": 0, "subproblem": 0, "lp": 0}
    x, max_m, warnings = None, big_m, []
    for k in budget:
        st, val, x, eta, why = _master(prob, scen, solver, eta_lb)
        counts["master"] += 1
        if st is not Status.OPTIMAL:
            status, msg = st, why
            break
        lb = max(lb, val)
        if mode == "vertices":
            q_val, u_new, nlp = _adversary_vertices(prob, x, verts)
            counts["lp"] += nlp
        else:
            q_val, u_new, why, used_m = _adversary_milp(prob, x, big_m, solver)
            counts["lp"] += 1
            max_m = max(max_m, used_m)
            if u_new is None:
                status, msg = Status.OTHER_ERROR, why
                break
            if why:
                warnings.append(f"iteration {k}: {why}")
        counts["subproblem"] += 1
        if q_val == -math.inf:
            status, msg = Status.UNBOUNDED, "the recourse problem is unbounded below for some u"
            break
        cand = float(prob.c @ x) + q_val
        if cand < ub:
            ub, best_x, best_u = cand, x, u_new
        gap = ub - lb
        if budget.report(k, x=x, lower_bound=lb, upper_bound=ub, gap=gap, subproblem_value=q_val,
                         scenarios=int(scen.shape[0])):
            break
        if math.isfinite(ub) and gap <= tol * max(1.0, abs(ub)):
            status = Status.OPTIMAL
            break
        if any(np.allclose(u_new, s, atol=1e-9, rtol=1e-9) for s in scen):
            # Theory says LB = UB here; a gap means solver tolerances disagree.
            status, msg = Status.NUMERICAL_ERROR, f"worst-case scenario repeated with gap {gap:.3g} still open"
            break
        scen = np.vstack([scen, u_new])
    status = status or budget.status or Status.ITERATION_LIMIT
    if best_x is None and status.has_point:
        best_x = x  # no finite upper bound yet: report the last master point
    y_worst = None
    if best_x is not None and best_u is not None:
        y_worst = recourse_value(prob, best_x, best_u)[1]
    gap = ub - lb
    certs = {"lower_bound": float(lb), "upper_bound": float(ub), "gap": float(gap),
             "relative_gap": float(gap / max(1.0, abs(ub))) if math.isfinite(gap) else math.inf}
    if not msg:
        msg = {Status.OPTIMAL: f"gap closed ({gap:.3g}) after {len(budget.history)} iterations ({mode} adversary)",
               Status.ITERATION_LIMIT: f"max_iter reached with gap {gap:.3g}"}.get(status, status.value)
    if warnings:
        msg += "; " + "; ".join(warnings)
    return SolverOutput(x=best_x, status=status, objective=float(ub) if math.isfinite(ub) else None,
                        iterations=len(budget.history), message=msg, certificates=certs, counts=counts,
                        history=budget.history, solve_time=time.perf_counter() - t0,
                        extras={"scenarios": scen, "worst_case_u": best_u, "y_worst": y_worst,
                                "subproblem": mode, "big_m": max_m if mode == "milp" else None,
                                "warnings": warnings})


def solve_extensive_form(prob: TwoStageProblem, scenarios=None, *, max_vertices: int = 100_000,
                         solver: Optional[str] = None) -> SolverOutput:
    """The deterministic equivalent: one recourse copy per scenario (default: every vertex of U), one solve.

    Exact for polyhedral U when ``scenarios`` are all its vertices (Q(x, ·) is convex in u).
    """
    if not isinstance(prob, TwoStageProblem):
        raise TypeError(f"prob must be a TwoStageProblem, got {type(prob).__name__}")
    t0 = time.perf_counter()
    scen = prob.uset.vertices(max_count=max_vertices) if scenarios is None else \
        np.array(scenarios, dtype=float, copy=True).reshape(-1, prob.uset.dim)
    st, val, x, _, why = _master(prob, scen, solver)
    return SolverOutput(x=x, status=st, objective=val, iterations=1, message=why or f"{len(scen)} scenarios",
                        counts={"master": 1}, solve_time=time.perf_counter() - t0,
                        extras={"scenarios": scen})
