"""CVXPY backend: exact convex solves with any installed cvxpy solver; duals on named constraints."""
from __future__ import annotations

import functools
import threading
import time
import warnings

import numpy as np

from ..passes.convex_to_cvxpy import PASS, CvxpyForm
from ..problem import RawSolution
from ..solvers.common import Status
from ..solvers.lazy import lazy_module
from .base import Backend, Option

cp = lazy_module("cvxpy")   # imported on first use: ~0.7 s that models without a convex step skip

# cvxpy's status strings (cvxpy.settings: cp.OPTIMAL == "optimal", ...), spelt out so that reading this table
# does not import cvxpy
_STATUS = {
    "optimal": Status.OPTIMAL,
    "infeasible": Status.INFEASIBLE,
    "unbounded": Status.UNBOUNDED,
    "user_limit": Status.ITERATION_LIMIT,
    "solver_error": Status.NUMERICAL_ERROR,
}
# "inaccurate" answers did not meet the solver's own tolerances: a point to inspect, not a certificate
_INACCURATE = {
    "optimal_inaccurate": "the solver stopped near an optimum without meeting its tolerances",
    "infeasible_inaccurate": "the solver suspects infeasibility but could not certify it",
    "unbounded_inaccurate": "the solver suspects unboundedness but could not certify it",
}


class CvxpyBackend(Backend):
    name = "cvxpy"
    description = "exact convex optimization through CVXPY (LP, QP, SOCP, exponential cone)"
    supports = frozenset({"bounds", "equality", "inequality", "nonsmooth", "cvxpy_lowered", "psd", "matrix_structure"})
    requires = frozenset({"cvxpy_form"})
    cost = 1.0
    devices = ("cpu",)
    certificates = ("duality (solver-certified optimality)",)
    options = {
        "cvxpy_solver": Option(str, None, "cvxpy solver name (default: cvxpy's choice)"),
        "max_iter": Option(int, None, "solver iteration limit, where the solver takes one"),
        "tol": Option(float, None, "solver tolerance, where the solver takes one"),
        "time_limit": Option(float, None, "time limit in seconds, where the solver takes one"),
        "solver_verbose": Option(bool, False, "print the cvxpy solver's own log"),
    }

    def reject_reason(self, problem, tags):
        if "cvxpy_form" not in tags.properties and "convex" not in tags.properties:
            return f"needs a convex (DCP) model: {tags.notes.get('convex', 'not convex')}"
        return super().reject_reason(problem, tags)

    # Large smooth equality-constrained QPs/NLPs: canonicalizing the matrix products and OSQP's first-order
    # iterations grow faster than IPOPT's sparse Newton steps. Poisson control (problems/poisson_control.py),
    # one run, total seconds cvxpy / ipopt: n = 2048: 0.12 / 0.14; n = 8192: 0.94 / 0.67; n = 18432: 3.2 / 0.84;
    # n = 32768: 11.5 / 1.0 (and cvxpy's point violates the constraint by 3.5e-6).
    LARGE_SMOOTH = 5000

    # Small smooth convex models with constraints (the DCP Hock-Schittkowski problems, a 5-asset portfolio QP):
    # IPOPT's few Newton steps cost less than cvxpy's canonicalization, with the same optimum. CPU ms, median of
    # 5 interleaved runs (benchmarks/bench_nlp.py --only-convex), cvxpy / ipopt: hs021 17.2 / 13.6, hs028
    # 10.1 / 6.2, hs049 18.5 / 12.0 (and KKT stationarity 2e-4 / 2e-8), hs050 17.5 / 12.2, qp_portfolio
    # 9.1 / 5.4, dense QP n = 5: 9.2 / 7.6. From about 150 dense matrix entries on, cvxpy ties or wins (dense QP
    # n = 10: 10.3 / 10.3; n = 20: 9.6 / 9.2; n = 100: 14.7 / 50.1; n = 500: 304 / 18041; the 200x6 data of
    # problems/constrained_logistic.py: 23.9 / 136), and so it does on vector-written models.
    SMALL_DENSE = 100          # nonzeros of dense constant factors (matrix products, quadratic forms)
    SMALL_ENTRIES = 500        # entries over the expression's op nodes (a scalar-written model's graph size)
    SMALL_SURCHARGE = 0.4      # 1.5 + 0.4 = 1.9: above ipopt (1.8), below alsketch (2.0)

    def size_cost(self, problem, tags):
        from ..expr.analysis import is_affine
        n = tags.sizes.get("variables", 0)
        if (n >= self.LARGE_SMOOTH and "smooth" in tags.properties and "equality" in tags.features
                and "inequality" not in tags.features and not is_affine(problem.objective)):
            return 1.0, (f"a smooth equality-constrained model with {n} variables (>= {self.LARGE_SMOOTH}): "
                         "IPOPT's sparse Newton steps are faster there than canonicalization + OSQP")
        small = _small_twice_differentiable(problem, tags, self.SMALL_DENSE, self.SMALL_ENTRIES)
        if small:
            return self.SMALL_SURCHARGE, (f"a small convex model, twice differentiable everywhere ({small}): "
                                          "IPOPT's Newton steps are faster there than canonicalization")
        return None

    def available(self):
        return None if _installed_solvers() else "no cvxpy solver is installed"

    def solve(self, compiled, problem, options, callback):
        form = problem.payload["cvxpy"]
        # one compiled cvxpy problem is shared by every solve of the model: solves from several threads take
        # turns (cvxpy's problem is not thread-safe: "Already mutably borrowed"), and each reads its own values
        with _lock_for(form):
            sol = self._solve_locked(form, options)
            if sol.status.has_point and isinstance(form, CvxpyForm):
                PASS.invert(sol, form)  # copy values and duals out before another thread's solve overwrites them
            return sol

    def _solve_locked(self, form, options):
        form.refresh()
        solver = options.get("cvxpy_solver")
        if solver is not None and solver.upper() not in cp.installed_solvers():
            raise ValueError(f"cvxpy solver {solver!r} is not installed; installed: {cp.installed_solvers()}")
        if solver is None and any(options.get(k) is not None for k in ("max_iter", "tol", "time_limit")):
            solver = _default_solver(form.problem)  # so the limits reach the solver cvxpy would pick
        kw = _solver_kwargs(solver, options)
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():  # "Solution may be inaccurate": the status says so
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                form.problem.solve(solver=solver.upper() if solver else None,
                                   verbose=bool(options.get("solver_verbose")), **kw)
        except cp.SolverError as e:
            return RawSolution(Status.NUMERICAL_ERROR, message=f"cvxpy solver error: {e}")
        except KeyboardInterrupt:
            return RawSolution(Status.INTERRUPTED, message="interrupted (Ctrl-C) inside the cvxpy solver, which "
                               "hands back no intermediate point")
        elapsed = time.perf_counter() - start
        raw = form.problem.status
        stats = form.problem.solver_stats
        msg = f"cvxpy status {raw} ({stats.solver_name})"
        if raw in _INACCURATE:
            status = Status.SLOW_PROGRESS
            msg = f"{msg}: {_INACCURATE[raw]}"
        else:
            status = _STATUS.get(raw, Status.OTHER_ERROR)
        if status == Status.ITERATION_LIMIT and options.get("time_limit") is not None and elapsed >= options["time_limit"]:
            status = Status.TIME_LIMIT
        obj = form.problem.value if status.has_point and raw not in (cp.INFEASIBLE_INACCURATE, cp.UNBOUNDED_INACCURATE) else None
        if obj is not None and not np.isfinite(obj):
            obj = None
        return RawSolution(status, objective=None if obj is None else float(obj), message=msg,
                           iterations=int(stats.num_iters or 0),
                           extras={"cvxpy_solver": stats.solver_name, "cvxpy_status": raw, "solver_time": elapsed})


# atoms twice differentiable on all of their arguments' space (no kinks, no domain boundary that cvxpy keeps
# implicitly: log, sqrt, entr, inv_pos, power(x, 1.5) are left out); linear ops are added below
_EVERYWHERE_SMOOTH = frozenset({"mul", "div", "matmul", "square", "sum_squares", "quad_form", "exp", "logsumexp",
                                "logistic"})


def _small_twice_differentiable(problem, tags, max_dense: int, max_entries: int):
    """A short description (variables, the dense-entry bound) when `problem` is a constrained model of
    everywhere-twice-differentiable atoms (integer powers >= 2 even, or 1), with at least one nonlinear term,
    at most `max_dense` dense constant entries in products and `max_entries` entries over its op nodes; else None.
    LPs are left out (a vertex solution and infeasibility certificates from the LP solver)."""
    from ..expr.analysis import is_affine
    from ..expr.node import Op
    from ..expr.ops import SPECS
    if tags.features - {"bounds", "equality", "inequality", "cvxpy_lowered"} or not (
            {"equality", "inequality"} & tags.features) or "smooth" not in tags.properties:
        return None
    if tags.sizes.get("variables", 0) > max_entries:
        return None
    from ..lower.casadi import dense_work, entries_per_op
    exprs = [problem.objective] + [c.expr for c in problem.constraints]
    names = frozenset().union(*(e.op_names() for e in exprs))
    rough = {name for name in names if not SPECS[name].linear} - _EVERYWHERE_SMOOTH
    if rough - {"power"}:
        return None
    if rough:   # powers: integer and even (or 1) only
        for e in exprs:
            for node in e.nodes():
                if isinstance(node, Op) and node.name == "power":
                    p = node.attrs["p"]
                    if not (p == 1 or (p >= 2 and p == int(p) and int(p) % 2 == 0)):
                        return None
    if (all(is_affine(e) for e in exprs) or dense_work(exprs) > max_dense
            or entries_per_op(exprs)[0] > max_entries):
        return None
    return f"{tags.sizes.get('variables', 0)} variables, at most {max_dense} dense matrix entries"


_LOCKS_GUARD = threading.Lock()


def _lock_for(form) -> threading.Lock:
    with _LOCKS_GUARD:
        lock = form.__dict__.get("_optdsl_lock")
        if lock is None:
            lock = form.__dict__["_optdsl_lock"] = threading.Lock()
    return lock


@functools.lru_cache(maxsize=1)
def _installed_solvers() -> tuple:
    """cvxpy probes every solver's import on each call (~10 ms, several times per dispatch); what is installed
    does not change within a process."""
    return tuple(cp.installed_solvers())


def _default_solver(problem) -> str | None:
    """The solver cvxpy would choose for this problem (its solving chain), or None if that cannot be told."""
    try:
        return problem._construct_chain().solver.name()
    except Exception:  # noqa: BLE001 - a private cvxpy API: fall back to cvxpy's own choice without limits
        return None


def _solver_kwargs(solver, options):
    """The shared options (max_iter, tol, time_limit) under each solver's own names."""
    name = (solver or "").upper()
    kw = {}
    if options.get("max_iter") is not None:
        key = {"SCS": "max_iters", "OSQP": "max_iter", "CLARABEL": "max_iter", "ECOS": "max_iters",
               "HIGHS": "ipm_iteration_limit"}.get(name)
        if key:
            kw[key] = options["max_iter"]
        elif name == "SCIPY":
            kw.setdefault("scipy_options", {})["maxiter"] = options["max_iter"]
    if options.get("tol") is not None:
        t = options["tol"]
        if name == "CLARABEL":
            kw.update(tol_gap_abs=t, tol_gap_rel=t, tol_feas=t)
        elif name in ("OSQP", "SCS"):
            kw.update(eps_abs=t, eps_rel=t)
        elif name == "ECOS":
            kw.update(abstol=t, reltol=t, feastol=t)
        elif name == "HIGHS":
            kw.update(primal_feasibility_tolerance=t, dual_feasibility_tolerance=t)
    if options.get("time_limit") is not None:
        key = {"CLARABEL": "time_limit", "HIGHS": "time_limit", "OSQP": "time_limit", "SCS": "time_limit_secs"}.get(name)
        if key:
            kw[key] = options["time_limit"]
    return kw


BACKENDS = [CvxpyBackend()]
