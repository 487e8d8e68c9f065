"""CVXPY backend: exact convex solves with any installed cvxpy solver; duals on named constraints."""
from __future__ import annotations

import time

import cvxpy as cp

from ..problem import RawSolution
from ..solvers.common import Status
from .base import Backend, Option

_STATUS = {
    cp.OPTIMAL: Status.OPTIMAL,
    cp.OPTIMAL_INACCURATE: Status.OPTIMAL,
    cp.INFEASIBLE: Status.INFEASIBLE,
    cp.INFEASIBLE_INACCURATE: Status.INFEASIBLE,
    cp.UNBOUNDED: Status.UNBOUNDED,
    cp.UNBOUNDED_INACCURATE: Status.UNBOUNDED,
    cp.USER_LIMIT: Status.ITERATION_LIMIT,
    cp.SOLVER_ERROR: Status.NUMERICAL_ERROR,
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

    def available(self):
        return None if cp.installed_solvers() else "no cvxpy solver is installed"

    def solve(self, compiled, problem, options, callback):
        form = problem.payload["cvxpy"]
        form.refresh()
        solver = options.get("cvxpy_solver")
        if solver is not None and solver.upper() not in cp.installed_solvers():
            raise ValueError(f"cvxpy solver {solver!r} is not installed; installed: {cp.installed_solvers()}")
        kw = _solver_kwargs(solver, options)
        start = time.perf_counter()
        try:
            form.problem.solve(solver=solver.upper() if solver else None, verbose=bool(options.get("solver_verbose")), **kw)
        except cp.SolverError as e:
            return RawSolution(Status.NUMERICAL_ERROR, message=f"cvxpy solver error: {e}")
        status = _STATUS.get(form.problem.status, Status.OTHER_ERROR)
        stats = form.problem.solver_stats
        msg = f"cvxpy status {form.problem.status} ({stats.solver_name})"
        obj = form.problem.value if status.is_success else None
        return RawSolution(status, objective=None if obj is None else float(obj), message=msg,
                           iterations=int(stats.num_iters or 0),
                           extras={"cvxpy_solver": stats.solver_name, "solver_time": time.perf_counter() - start})


def _solver_kwargs(solver, options):
    name = (solver or "").upper()
    kw = {}
    if options.get("max_iter") is not None:
        key = {"SCS": "max_iters", "OSQP": "max_iter", "CLARABEL": "max_iter", "ECOS": "max_iters"}.get(name)
        if key:
            kw[key] = options["max_iter"]
    if options.get("tol") is not None:
        if name == "CLARABEL":
            kw.update(tol_gap_abs=options["tol"], tol_gap_rel=options["tol"], tol_feas=options["tol"])
        elif name in ("OSQP", "SCS"):
            kw.update(eps_abs=options["tol"], eps_rel=options["tol"])
    if options.get("time_limit") is not None and name in ("CLARABEL", "HIGHS"):
        kw["time_limit"] = options["time_limit"]
    return kw
BACKENDS = [CvxpyBackend()]
