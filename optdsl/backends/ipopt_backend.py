"""``ipopt``: IPOPT (interior point, MUMPS) through the CasADi lowering, with exact sparse derivatives.

The problem ``min f(x; p)  s.t.  c_eq(x; p) = 0,  c_in(x; p) <= 0,  lb <= x <= ub`` goes to CasADi's
``nlpsol("ipopt")`` as ``g = [c_eq; c_in]`` with bounds ``[0; -inf] <= g <= [0; 0]``; CasADi's algorithmic
differentiation supplies the sparse constraint Jacobian and the sparse Hessian of the Lagrangian.

Multipliers: CasADi's convention is L = f + λ_gᵀg + λ_xᵀx with λ_x > 0 at an active upper bound, which is
optdsl's (L = f + λᵀc_eq + μᵀc_in, μ >= 0) for the rows; the bound multipliers are split into
``"x.lb"`` = max(-λ_x, 0) and ``"x.ub"`` = max(λ_x, 0), as the other backends report them.

Compilation (cached with the model) lowers the problem once; a solver is built per set of IPOPT options
and reused, so a parameter change (parameters are CasADi's ``p``) re-solves without rebuilding, and a
re-solve starts from the last primal and dual point.
"""
from __future__ import annotations

import ast
import functools
import itertools
from typing import Any, Optional

import numpy as np

from ..problem import RawSolution
from ..solvers.autodiff import DOMAIN_HINT
from ..solvers.common import Status
from .base import Backend, Option
from .flatten import FlatProblem
from .ipopt_option_errors import build_nlpsol
from .secant_start import SecantStart

try:  # a declared dependency; `available()` says so if the install is broken
    import casadi as ca
except ImportError:  # pragma: no cover
    ca = None

# IPOPT's return statuses (CasADi's stats()["return_status"]) -> optdsl statuses; the ones that depend on
# the point (success: convex or not; diverging: feasible or not) are decided in `_status`.
_STATUS = {
    "Solved_To_Acceptable_Level": Status.SLOW_PROGRESS,
    "Search_Direction_Becomes_Too_Small": Status.SLOW_PROGRESS,
    "Infeasible_Problem_Detected": Status.INFEASIBLE,
    "Maximum_Iterations_Exceeded": Status.ITERATION_LIMIT,
    "Maximum_CpuTime_Exceeded": Status.TIME_LIMIT,
    "Maximum_WallTime_Exceeded": Status.TIME_LIMIT,
    "User_Requested_Stop": Status.INTERRUPTED,
    "Feasible_Point_Found": Status.LOCALLY_OPTIMAL,      # square system: a feasible point is the answer
    "Restoration_Failed": Status.NUMERICAL_ERROR,
    "Error_In_Step_Computation": Status.NUMERICAL_ERROR,
    "Invalid_Number_Detected": Status.NUMERICAL_ERROR,
}
_MESSAGES = {
    "Infeasible_Problem_Detected": "IPOPT converged to a stationary point of the constraint violation with a "
                                   "positive violation (locally infeasible)",
    "Restoration_Failed": "IPOPT's restoration phase failed to reduce the constraint violation",
    "Invalid_Number_Detected": "NaN or inf in the model's functions or derivatives",
    "Diverging_Iterates": "the iterates grew beyond 1e20",
    "Not_Enough_Degrees_Of_Freedom": "more equality constraints than variables",
}


_METIS_FROM = 4500  # variables from which MUMPS orders by METIS (the user's ipopt.mumps_pivot_order wins)

class IpoptForm:
    """The lowered problem (CasADi symbols, constraint bounds, the flat layout) and its built solvers.

    Lowered to scalar SX graphs (cheapest to build and evaluate for scalar-written models) unless the model is
    written with vectors (ops of many entries each: MX keeps one node per op, and CasADi builds IPOPT's
    derivative functions from it several times faster — Poisson control N = 128: 0.26 s instead of 2.9 s;
    hanging chain N = 2000: 0.07 s instead of 0.28 s, the same iterations) or multiplies by large dense
    matrices; either is built on request."""

    # nonzeros of dense constant factors in products above which MX is faster: a dense QP ½xᵀPx + Ax ≤ b,
    # total seconds SX / MX: 345 entries 0.047 / 0.030; 620: 0.066 / 0.045; n = 50: 0.41 / 0.10; n = 200: 22.7 / 2.0
    DENSE_SX_LIMIT = 300
    VECTOR_ENTRIES = 500       # MX when the ops hold at least this many entries in all ...
    VECTOR_WIDTH = 16          # ... and this many per op on average (scalar-written models stay SX)

    def __init__(self, problem):
        from ..lower.casadi import dense_work, entries_per_op
        self.problem = problem
        self.flat = flat = FlatProblem(problem)
        self.items = flat.eq_items + flat.in_items
        params, seen = [], set()
        for e in [problem.objective] + [c.expr for c in self.items]:
            for prm in e.parameters():
                if prm.id not in seen:
                    seen.add(prm.id)
                    params.append(prm)
        self.params = params
        self.m_eq = sum(c.expr.size for c in flat.eq_items)
        self.m = self.m_eq + sum(c.expr.size for c in flat.in_items)
        self.lbg = np.concatenate([np.zeros(self.m_eq), np.full(self.m - self.m_eq, -np.inf)])
        self.ubg = np.zeros(self.m)
        self.dense_work = dense_work([problem.objective] + [c.expr for c in self.items])
        self.entries, self.ops = entries_per_op([problem.objective] + [c.expr for c in self.items])
        self.graphs: dict = {}
        self.solvers: dict = {}
        self.builds = 0          # how many CasADi solvers were built (re-solves must not add to it)
        self.called: set = set()  # ids of the built solvers already called once
        self._grad_fns: dict = {}  # id(solver) -> its buffered nlp_grad (`_nlp_grad`)
        self.secant = SecantStart()    # the last two solutions, for a re-solve along a parameter sweep
        # any finite variable bound (set again by each solve): without, the bound parts of the violation,
        # complementarity and start checks are zeros and skipped
        self.has_bounds = True
        self.last: Optional[dict] = None   # last primal-dual point, for warm starts
        self._callback_slot: list = [None]
        self.graph(self.auto_kind())      # lower now: compile-time work, and errors surface here

    def nonlinear_rows(self) -> bool:
        """Whether any constraint is not affine in the variables (computed once)."""
        if not hasattr(self, "_nonlinear_rows"):
            from ..expr.analysis import is_affine
            self._nonlinear_rows = any(not is_affine(c.expr) for c in self.items)
        return self._nonlinear_rows

    def auto_kind(self) -> str:
        vectorized = self.entries >= self.VECTOR_ENTRIES and self.entries >= self.VECTOR_WIDTH * max(self.ops, 1)
        return "MX" if vectorized or self.dense_work > self.DENSE_SX_LIMIT else "SX"

    def graph(self, kind: str):
        """(lowering, f, g) with CasADi `kind` ("SX" or "MX") symbols."""
        if kind not in self.graphs:
            from ..lower.casadi import CasadiLowering, _flat
            low = CasadiLowering(self.flat.variables, self.flat.offsets, self.flat.n, self.params, getattr(ca, kind))
            memo: dict = {}
            f = self._lower(low, self.problem.objective, memo, "the objective")
            if f.shape != (1, 1):
                raise ValueError(f"the objective must be a scalar, it has shape {self.problem.objective.shape}")
            from ..expr.batching import batch_constraints
            entry = {}  # loop-built scalar rows of one form: lowered once as a vector, one entry per row
            for batch in batch_constraints(self.items):
                if batch.batched:
                    vec = self._lower(low, batch.expr, memo, f"constraint {batch.items[0].name!r} (and its kind)")
                    entry.update({id(c): vec[i] for i, c in enumerate(batch.items)})
            rows = [entry[id(c)] if id(c) in entry else
                    _flat(self._lower(low, c.expr, memo, f"constraint {c.name!r}"), c.expr.shape)  # row-major
                    for c in self.items]
            self.graphs[kind] = (low, f, ca.vertcat(*rows) if rows else low.sym(0, 1))
        return self.graphs[kind]

    def at_point(self, solver, x: np.ndarray, lam_g: np.ndarray, duals: dict) -> dict:
        """The model-level certificates at `x` (what `optdsl.certificates` computes by a torch lowering),
        from the built solver's own ``nlp_grad`` function (f, g and ∇ₓ(f + λ_gᵀg) by CasADi AD): each
        constraint's and bound's largest violation by name, and ‖∇f + Σ λ_c ∇c - z_lb + z_ub‖∞ with the
        multipliers as reported (`duals`, by name)."""
        f, g, grad = self._nlp_grad(solver)(x, self.parameter_values(), lam_g)
        viol: dict[str, float] = {}
        k = 0
        for c in self.items:
            rows = g[k:k + c.expr.size]
            k += c.expr.size
            viol[c.name] = float(np.max(np.abs(rows) if c.kind == "eq" else np.maximum(rows, 0.0), initial=0.0))
        for v, o in zip(self.flat.variables, self.flat.offsets):
            xv = x[o:o + v.size]
            if v.lb is not None:
                viol[f"{v.name}.lb"] = float(np.max(np.maximum(np.ravel(v.lb) - xv, 0), initial=0.0))
            if v.ub is not None:
                viol[f"{v.name}.ub"] = float(np.max(np.maximum(xv - np.ravel(v.ub), 0), initial=0.0))
            for which, sign in (("lb", -1.0), ("ub", 1.0)):
                z = duals.get(f"{v.name}.{which}")
                if z is not None and np.shape(z) == tuple(v.shape):
                    grad[o:o + v.size] += sign * np.ravel(z)
        st = float(np.max(np.abs(grad), initial=0.0)) if np.all(np.isfinite(grad)) else float("inf")
        return {"objective": float(f[0]), "violations": viol, "stationarity": st}

    def where_not_finite(self, solver, x: np.ndarray, iterations: int) -> str:
        """For IPOPT's Invalid_Number_Detected: which of the objective, a constraint row or their first
        derivatives is NaN or inf at `x` (the point IPOPT stopped at), by the user's names, and what to do."""
        p = self.parameter_values()
        with np.errstate(all="ignore"):
            f, grad_f = (_vec(v) for v in solver.get_function("nlp_grad_f")(x, p))
            g, jac = solver.get_function("nlp_jac_g")(x, p)
            g, jac = _vec(g), jac.sparse()
        what = None
        if not np.isfinite(f[0]):
            what = f"the objective is {f[0]}"
        elif not np.all(np.isfinite(g)):
            k = int(np.flatnonzero(~np.isfinite(g))[0])
            what = f"{_row_name(self.flat, self, k)} is {g[k]}"
        elif not np.all(np.isfinite(grad_f)):
            j = int(np.flatnonzero(~np.isfinite(grad_f))[0])
            what = f"the objective's derivative in {self.flat.row_name('x', j)} is {grad_f[j]}"
        elif jac.nnz and not np.all(np.isfinite(jac.data)):
            jac = jac.tocoo()
            bad = int(np.flatnonzero(~np.isfinite(jac.data))[0])
            k, j = int(jac.row[bad]), int(jac.col[bad])
            what = f"the derivative of {_row_name(self.flat, self, k)} in {self.flat.row_name('x', j)} is {jac.data[bad]}"
        if what is None:
            return ""
        where = "the start point" if iterations == 0 else f"the point of iteration {iterations}"
        return f"; at {where} {what}: {DOMAIN_HINT}"

    def _nlp_grad(self, solver):
        """The solver's ``nlp_grad`` through a buffer kept per solver (a call: ~20 µs, where CasADi's Python call and
        the conversions of its outputs took ~0.16 ms on a 1000-variable model): (x, p, λ_g) -> fresh dense arrays
        (f, g, ∇ₓ(f + λ_gᵀg))."""
        fn = self._grad_fns.get(id(solver))
        if fn is None:
            from .casadi_buffer import Buffered
            nlp_grad = solver.get_function("nlp_grad")
            call = Buffered(nlp_grad)
            rows = [None if nlp_grad.sparsity_out(i).is_dense() else np.asarray(nlp_grad.sparsity_out(i).row())
                    for i in range(3)]
            sizes = [nlp_grad.size1_out(i) for i in range(3)]

            def fn(x, p, lam_g):
                res = call(x, p, 1.0, lam_g)
                out = []
                for r, idx, size in zip(res[:3], rows, sizes):  # (structurally absent entries are zeros)
                    if idx is None:
                        out.append(r.copy())
                    else:
                        d = np.zeros(size)
                        d[idx] = r
                        out.append(d)
                return out

            self._grad_fns[id(solver)] = fn
        return fn

    def admissible(self, guess, args) -> tuple:
        """An extrapolated (x, λ_x, λ_g) made a valid IPOPT start: x within its bounds, inequality multipliers
        ≥ 0, and bound multipliers kept only where they keep the last solution's sign (an active bound)."""
        x, lam_x, lam_g = guess
        if self.m > self.m_eq:
            lam_g[self.m_eq:] = np.maximum(lam_g[self.m_eq:], 0.0)
        if not self.has_bounds:
            return x, lam_x, lam_g
        x = np.clip(x, args["lbx"], args["ubx"])
        lam_x = np.where(np.sign(lam_x) == np.sign(args["lam_x0"]), lam_x, 0.0)
        return x, lam_x, lam_g

    def kkt_residual(self, solver, x, lam_x, lam_g, args) -> float:
        """max(‖∇f + Jᵀλ_g + λ_x‖∞, constraint violation, complementarity) at (x, λ) and parameters ``args["p"]``
        (CasADi's signs: λ_x < 0 on an active lower bound, λ_g ≥ 0 on an inequality ``g ≤ 0``)."""
        _, g, grad = self._nlp_grad(solver)(x, args["p"], lam_g)
        grad += lam_x
        parts = [grad, g[:self.m_eq]]
        if self.m > self.m_eq:
            ineq = g[self.m_eq:]
            parts += [np.maximum(ineq, 0.0), lam_g[self.m_eq:] * ineq]
        if lam_x.any():   # (zero bound multipliers: nothing to be complementary)
            with np.errstate(invalid="ignore"):   # (inf * 0 where a side is unbounded: the multiplier is 0 there)
                gap = np.where(lam_x < 0, x - args["lbx"], np.where(lam_x > 0, args["ubx"] - x, 0.0))
            parts.append(lam_x * np.nan_to_num(gap))
        r = max(float(np.max(np.abs(a), initial=0.0)) for a in parts)
        return r if np.isfinite(r) else np.inf

    def parameter_values(self) -> np.ndarray:
        if not self.params:
            return np.zeros(0)
        return np.concatenate([np.asarray(prm.value, float).ravel() for prm in self.params])

    @staticmethod
    def _lower(low, expr, memo, where):
        from ..lower.casadi import NotRepresentable
        try:
            return low.lower(expr, memo)
        except NotRepresentable as e:
            raise NotRepresentable(f"{where}: {e}") from None

    def solver(self, opts: dict, kind: str, callback: bool):
        key = (tuple(sorted((k, repr(v)) for k, v in opts.items())), kind, callback)
        s = self.solvers.get(key)
        if s is None:
            # (calc_lam_p: CasADi's multipliers of the parameters, a gradient evaluation after every solve that
            # nothing reads: 0.2-0.4 ms of a warm re-solve of the hanging chain at N = 500 ... 2000)
            # (show_eval_warnings: CasADi's own stderr lines on a NaN/inf; the result's message names the term)
            full = {"print_time": False, "calc_lam_p": False, "show_eval_warnings": False,
                    **{f"ipopt.{k}": v for k, v in opts.items()}}
            if callback:
                self._iter_cb = _IterationCallback(self.flat.n, self.m, self._callback_slot)
                full["iteration_callback"] = self._iter_cb
            low, f, g = self.graph(kind)
            s = build_nlpsol("optdsl_ipopt", {"x": low.x, "p": low.p, "f": f, "g": g}, full)
            self.solvers[key] = s
            self.builds += 1
        return s


def _unlowerable(problem) -> Optional[str]:
    """Which term of the problem has no CasADi form (a scan, cached on the problem), or None."""
    from ..lower.casadi import unlowerable
    key = "_casadi_unlowerable"
    if key not in problem.payload:
        why = None
        for where, e in [("the objective", problem.objective)] + [(f"constraint {c.name!r}", c.expr)
                                                                 for c in problem.constraints]:
            r = unlowerable(e)
            if r is not None:
                why = f"{where}: {r}"
                break
        problem.payload[key] = why
    return problem.payload[key]


class IpoptBackend(Backend):
    name = "ipopt"
    description = "IPOPT interior point (MUMPS) through a CasADi lowering: exact sparse Jacobians and Hessians"
    supports = frozenset({"bounds", "equality", "inequality"})
    requires = frozenset({"smooth"})
    # preferred for smooth constrained models: above the DCP route (convex_to_cvxpy 0.5 + cvxpy 1.0), below
    # alsketch (2.0) and nlp (3.0); unconstrained models keep lbfgs (1.0)
    cost = 1.8
    devices = ("cpu",)
    certificates = ("feasibility", "complementarity")
    options = {
        "tol": Option(float, 1e-8, "IPOPT's relative optimality tolerance (ipopt.tol)"),
        "max_iter": Option(int, 3000, "maximum iterations"),
        "time_limit": Option(float, None, "wall-clock limit in seconds (ipopt.max_wall_time)"),
        "print_level": Option(int, 0, "IPOPT's output level, 0 (silent) to 12"),
        "hessian": Option(str, "exact", "exact Lagrangian Hessian by AD, or IPOPT's limited-memory quasi-Newton",
                          ("exact", "limited-memory")),
        "warm_start": Option(bool, True, "start a re-solve from the previous primal and dual point"),
        "extrapolate": Option(bool, True, "on a re-solve whose parameters continue the line of the last two "
                              "solves' (a sweep), start from the two solutions' secant extrapolation when its KKT "
                              "residual is the smaller"),
        "graph": Option(str, "auto", "CasADi graph: scalar SX (fast to build and evaluate) or matrix MX (compact "
                        "with large dense matrices); auto picks SX unless the model multiplies by large dense "
                        "matrices", ("auto", "SX", "MX")),
        "ipopt_options": Option(str, None, "any IPOPT option, as 'name=value;name=value' (or a dict from Python); "
                                "options named 'ipopt.<name>' are also accepted directly"),
    }

    def available(self):
        return _availability()

    def reject_reason(self, problem, tags):
        if ca is None:   # (dispatch asks before available(): the lowering below needs casadi)
            return _availability()
        lowerable = tags.features - {"opaque", "blackbox"}
        base = Backend.reject_reason(self, problem, _Tags(lowerable, tags))
        if base is not None:
            return super().reject_reason(problem, tags)
        why = _unlowerable(problem)
        if why is not None:
            return f"cannot lower to CasADi: {why}"
        return super().reject_reason(problem, tags)

    def check_options(self, options: dict) -> dict:
        passthrough = {k[len("ipopt."):]: v for k, v in options.items() if k.startswith("ipopt.")}
        out = super().check_options({k: v for k, v in options.items() if not k.startswith("ipopt.")})
        extra = _parse_ipopt_options(out.get("ipopt_options"))
        out["ipopt_options"] = {**extra, **passthrough}
        return out

    def compile(self, problem, *, device="cpu", dtype=None):
        from ..lower.casadi import NotRepresentable
        try:
            return IpoptForm(problem)
        except NotRepresentable as e:
            from ..errors import ModelError
            raise ModelError(f"ipopt: cannot lower to CasADi: {e}") from None

    def solve(self, form: IpoptForm, problem, options, callback):
        flat = form.flat
        opts = {"tol": options["tol"], "max_iter": options["max_iter"], "print_level": options["print_level"],
                "sb": "yes"}
        if options["time_limit"] is not None:
            opts["max_wall_time"] = float(options["time_limit"])
        if options["hessian"] != "exact":
            opts["hessian_approximation"] = "limited-memory"
        warm = options["warm_start"] and form.last is not None
        if warm:
            # min_refinement_steps=0: IPOPT still computes each linear solve's residual and refines while its ratio
            # exceeds residual_ratio_max (1e-10); only the one refinement step forced on top of that goes. Near the
            # solution that step bought nothing: -10 % of a warm re-solve of the chain (N = 500, 2000), same iterates
            opts.update(warm_start_init_point="yes", warm_start_bound_push=1e-9, warm_start_mult_bound_push=1e-9,
                        warm_start_slack_bound_push=1e-9, mu_init=1e-6, min_refinement_steps=0)
        if flat.n >= _METIS_FROM and form.nonlinear_rows():
            # MUMPS's automatic ordering stalls the hanging chain from N = 2500 links on (5002 variables,
            # nonlinear equalities, a zero Hessian block at the start): 16 s at N = 2500, no first iteration in
            # minutes at N = 3000..10000. METIS ordering: 0.2 s, 0.3 s, 0.8 s (N = 5000), 4.5 s (N = 10000),
            # same iterates. Below ~2000 links and with affine constraints (Poisson control, N = 224: 1.05 s vs
            # 1.8 s) the automatic ordering is as fast or faster, so it is kept there.
            opts["mumps_pivot_order"] = 5
        opts.update(options["ipopt_options"])
        kind = form.auto_kind() if options["graph"] == "auto" else options["graph"]
        solver = form.solver(opts, kind, callback is not None)
        lbx, ubx = flat.bounds()
        form.has_bounds = bool(np.isfinite(lbx).any() or np.isfinite(ubx).any())
        args = dict(x0=flat.x0_numpy(), p=form.parameter_values(), lbx=lbx, ubx=ubx, lbg=form.lbg, ubg=form.ubg)
        start = "cold"
        if warm:
            args.update(lam_x0=form.last["lam_x"], lam_g0=form.last["lam_g"])
            start = "warm"
            guess = form.secant.propose(args["p"], args["x0"]) if options["extrapolate"] else None
            if guess is not None:
                guess = form.admissible(guess, args)
                if form.kkt_residual(solver, *guess, args) < form.kkt_residual(
                        solver, args["x0"], args["lam_x0"], args["lam_g0"], args):
                    args.update(x0=guess[0], lam_x0=guess[1], lam_g0=guess[2])
                    start = "extrapolated"
        form._callback_slot[0] = flat.callback(callback)
        if callback is not None:
            form._iter_cb.iteration = 0
        # the buffer API from a solver's second call on: its first buffer checks out a second IPOPT memory, which
        # costs more than the conversions it saves on a one-off solve (~0.5 ms on the HS models)
        buffered = callback is None and id(solver) in form.called
        form.called.add(id(solver))
        try:
            if buffered:
                out, stats = _call_buffered(solver, args)
            else:   # (lists: CasADi converts them in C; a numpy argument costs ~40 µs in its Python typemap)
                out = solver(**{k: v.tolist() for k, v in args.items()})
                stats = solver.stats()
        except RuntimeError as e:  # CasADi raises when an evaluation fails outright
            return RawSolution(Status.NUMERICAL_ERROR, message=f"ipopt: {str(e).splitlines()[-1]}")
        finally:
            form._callback_slot[0] = None
        # IPOPT relaxes bounds by 1e-8 (bound_relax_factor) while iterating: hand back a point within them
        x = np.clip(_vec(out["x"]), lbx, ubx)
        lam_g, lam_x, g = _vec(out["lam_g"]), _vec(out["lam_x"]), _vec(out["g"])
        ret = stats.get("return_status", "unknown")
        viol = _violation(x, g, lbx, ubx, form)
        status = _status(ret, problem, viol, x)
        msg = f"IPOPT: {ret}" + (f" ({_MESSAGES[ret]})" if ret in _MESSAGES else "")
        counts = {k: int(stats.get(f"n_call_nlp_{s}", 0)) for k, s in
                  (("f", "f"), ("grad", "grad_f"), ("jac", "jac_g"), ("hess", "hess_l"))}
        sol = RawSolution(status, objective=float(_vec(out["f"])[0]), iterations=int(stats.get("iter_count", 0)),
                          message=msg, counts=counts,
                          extras={"ipopt_status": ret, "builds": form.builds, "start": start},
                          history=_history(stats))
        if ret == "Invalid_Number_Detected" and np.all(np.isfinite(x)):
            sol.message += form.where_not_finite(solver, x, iterations=sol.iterations)
        if viol.size and status in (Status.INFEASIBLE, Status.NUMERICAL_ERROR):
            worst = int(np.argmax(viol))
            if viol[worst] > 0:
                name = _row_name(flat, form, worst)
                sol.extras["worst_constraint"] = name
                sol.message += f"; largest violation {viol[worst]:.3g} in {name}"
        if status.has_point:
            sol.values = flat.values(x)
            ineq = lam_g[form.m_eq:]
            sol.duals = flat.duals({"eq": lam_g[:form.m_eq], "ineq": ineq,
                                    "lb": np.maximum(-lam_x, 0.0), "ub": np.maximum(lam_x, 0.0)})
            sol.certificates = {"feasibility": float(viol.max(initial=0.0)),
                                "complementarity": _complementarity(x, g, lam_g, lam_x, lbx, ubx, form)}
            form.last = {"lam_x": lam_x, "lam_g": lam_g} if np.all(np.isfinite(x)) else None
            if ret == "Solve_Succeeded":
                form.secant.record(args["p"], x, lam_x, lam_g)
            else:   # a point off the solution path: nothing to extrapolate from
                form.secant.forget()
            if np.all(np.isfinite(x)):  # read (and removed) by the model's result when no pass rewrote the problem
                sol.extras["at_point"] = form.at_point(solver, x, lam_g, sol.duals)
        else:
            form.last = None
            form.secant.forget()
        return sol


def _vec(dm) -> np.ndarray:
    """A CasADi column as a flat float array (`nonzeros` for the dense outputs: 2 µs where `full` takes 6);
    arrays (from `_call_buffered`) pass as they are."""
    if isinstance(dm, np.ndarray):
        return dm
    return np.array(dm.nonzeros()) if dm.is_dense() else np.asarray(dm.full()).ravel()


def _call_buffered(solver, args: dict) -> tuple[dict, dict]:
    """One IPOPT solve through CasADi's buffer API (`casadi_buffer.Buffered`; a warm re-solve of the hanging chain
    at N = 500: 5.5 ms instead of 6.9). Returns (outputs by name, the solve's statistics). A fresh buffer per
    call (6 µs), so concurrent solves share nothing; Ctrl-C inside the solve reaches the caller as itself."""
    from .casadi_buffer import Buffered
    call = Buffered(solver)
    res = call(*(args.get(name, 0.0) for name in solver.name_in()))   # (absent: lam_x0/lam_g0, zero as by default)
    return dict(zip(solver.name_out(), res)), call.stats()


@functools.lru_cache(maxsize=None)
def _availability() -> Optional[str]:
    """Whether IPOPT can be loaded (probing the plugin loads a shared library: once per process, not per plan)."""
    if ca is None:
        return "casadi is not installed"
    return None if ca.has_nlpsol("ipopt") else "this casadi build has no IPOPT plugin"


class _Tags:
    """`Tags` with some features hidden (to ask the base checks whether anything else is in the way)."""

    def __init__(self, features, tags):
        self.features, self.properties, self.notes = frozenset(features), tags.properties, tags.notes


def _status(ret: str, problem, viol: np.ndarray, x: np.ndarray) -> Status:
    if ret == "Solve_Succeeded":
        return Status.OPTIMAL if problem.payload.get("_convex") else Status.LOCALLY_OPTIMAL
    if ret == "Diverging_Iterates":
        # |x| passed 1e20 at a feasible point: the objective decreases without bound along feasible points
        # (infeasible, it is only divergence)
        return Status.UNBOUNDED if viol.max(initial=0.0) <= 1e-6 else Status.NUMERICAL_ERROR
    return _STATUS.get(ret, Status.OTHER_ERROR)


# IPOPT's per-iteration log (CasADi's stats()["iterations"]) -> history keys; objective, inf_pr (the
# unscaled constraint violation) and inf_du (the scaled dual infeasibility) are the names the plot reads
_HISTORY_KEYS = (("obj", "objective"), ("inf_pr", "inf_pr"), ("inf_du", "inf_du"), ("mu", "mu"),
                 ("alpha_pr", "alpha_pr"), ("alpha_du", "alpha_du"))


def _history(stats: dict) -> list[dict]:
    """One record per IPOPT iteration (iteration 0 is the start point) from the solver's statistics."""
    its = stats.get("iterations") or {}
    series = [(name, its[key]) for key, name in _HISTORY_KEYS if its.get(key) is not None]
    if not series:
        return []
    keys = ("iteration",) + tuple(name for name, _ in series)
    return [dict(zip(keys, row)) for row in zip(itertools.count(), *(map(float, values) for _, values in series))]


def _violation(x, g, lbx, ubx, form) -> np.ndarray:
    """Per-row violation: constraint rows, then lower and upper bounds (inf - inf never occurs: inf bounds give 0)."""
    with np.errstate(invalid="ignore"):
        rows = [np.abs(g[:form.m_eq]), np.maximum(g[form.m_eq:], 0.0)]
        if form.has_bounds:
            rows += [np.where(np.isfinite(lbx), np.maximum(lbx - x, 0.0), 0.0),
                     np.where(np.isfinite(ubx), np.maximum(x - ubx, 0.0), 0.0)]
        else:
            rows.append(np.zeros(2 * x.size))
    out = np.concatenate(rows)
    return out if np.isfinite(out).all() else np.nan_to_num(out, nan=np.inf)


def _row_name(flat, form, k: int) -> str:
    if k < form.m_eq:
        return f"constraint {flat.row_name('eq', k)}"
    if k < form.m:
        return f"constraint {flat.row_name('ineq', k - form.m_eq)}"
    k -= form.m
    return f"bound {flat.row_name('lb', k) if k < flat.n else flat.row_name('ub', k - flat.n)}"


def _complementarity(x, g, lam_g, lam_x, lbx, ubx, form) -> float:
    """max |μᵢ cᵢ(x)| over inequality rows and |zⱼ (xⱼ - boundⱼ)| over bounds."""
    parts = [np.abs(lam_g[form.m_eq:] * g[form.m_eq:])]
    if form.has_bounds:
        with np.errstate(invalid="ignore"):
            parts.append(np.where(np.isfinite(ubx), np.abs(np.maximum(lam_x, 0) * (x - ubx)), 0.0))
            parts.append(np.where(np.isfinite(lbx), np.abs(np.maximum(-lam_x, 0) * (x - lbx)), 0.0))
    return float(max((p.max(initial=0.0) for p in parts), default=0.0))


def _parse_ipopt_options(spec) -> dict:
    """'mu_strategy=adaptive; acceptable_tol=1e-6' (or a dict) -> {name: value}, numbers parsed."""
    if spec is None:
        return {}
    if isinstance(spec, dict):
        return {str(k).removeprefix("ipopt."): v for k, v in spec.items()}
    out = {}
    for part in str(spec).replace(",", ";").split(";"):
        if not part.strip():
            continue
        name, sep, text = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"ipopt_options: expected name=value, got {part.strip()!r}")
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = text.strip()
        out[name.strip().removeprefix("ipopt.")] = value
    return out


if ca is not None:
    class _IterationCallback(ca.Callback):
        """Forwards IPOPT's iterates to the solve's callback (held in a slot, so one built solver serves
        every solve); a callback returning False stops IPOPT (User_Requested_Stop -> INTERRUPTED)."""

        def __init__(self, nx: int, ng: int, slot: list):
            ca.Callback.__init__(self)
            self.nx, self.ng, self.slot, self.iteration = nx, ng, slot, 0
            self.construct("optdsl_iteration", {})

        def get_n_in(self): return ca.nlpsol_n_out()
        def get_n_out(self): return 1
        def get_name_in(self, i): return ca.nlpsol_out(i)
        def get_name_out(self, i): return "ret"

        def get_sparsity_in(self, i):
            name = ca.nlpsol_out(i)
            if name == "f":
                return ca.Sparsity.scalar()
            if name in ("x", "lam_x"):
                return ca.Sparsity.dense(self.nx)
            if name in ("g", "lam_g"):
                return ca.Sparsity.dense(self.ng)
            return ca.Sparsity(0, 0)

        def eval(self, arg):
            cb = self.slot[0]
            if cb is None:
                return [0]
            import torch
            info = {"iteration": self.iteration, "objective": float(arg[ca.nlpsol_out().index("f")]),
                    "x": torch.as_tensor(np.asarray(arg[0].full()).ravel())}
            self.iteration += 1
            return [1 if cb(info) is False else 0]


BACKENDS = [IpoptBackend()]
