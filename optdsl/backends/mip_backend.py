"""``mip``: mixed-integer models (``integer=True`` / ``boolean=True`` variables, and the binaries of the
KKT rewrite of linear bilevel models) through cvxpy's mixed-integer interface.

HiGHS (a dependency) solves mixed-integer LPs by branch and bound; a mixed-integer model with a quadratic
or conic part needs a MIQP/MISOCP solver (SCIP, Gurobi, ...), used when cvxpy has one installed.
The solver's optimality gap and dual bound are reported as certificates: OPTIMAL means the incumbent is
within ``mip_gap`` (relative) of the bound, so the bound certifies how far from the global optimum it can be.
Multipliers are not defined for a mixed-integer program; none are reported.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings

import numpy as np

from ..problem import RawSolution
from ..solvers.common import Status
from ..solvers.lazy import lazy_module
from .base import Backend, Option
from .cvxpy_backend import _STATUS

cp = lazy_module("cvxpy")   # imported on first use: ~0.7 s that models without a convex step skip

_MIQP_SOLVERS = ("GUROBI", "SCIP", "MOSEK", "XPRESS", "CPLEX", "COPT")


_BANNER_SHOWN = False


@contextlib.contextmanager
def _banner_to_stderr(solver: str, verbose: bool):
    """HiGHS prints its copyright banner on the process's stdout (C level) at its first use, whatever
    ``verbose`` says; `optdsl solve --json -` writes JSON there, so the first quiet HiGHS solve sends fd 1
    to stderr for its duration."""
    global _BANNER_SHOWN
    if solver != "HIGHS" or verbose or _BANNER_SHOWN:
        yield
        return
    _BANNER_SHOWN = True
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def is_milp(problem: cp.Problem) -> bool:
    """Objective and constraints piecewise-linear (an LP after cvxpy's rewrites), integers aside."""
    if not problem.objective.expr.is_pwl():
        return False
    for c in problem.constraints:
        if not isinstance(c, (cp.constraints.Equality, cp.constraints.Inequality, cp.constraints.Zero,
                              cp.constraints.NonPos, cp.constraints.NonNeg)):
            return False
        if not all(a.is_pwl() for a in c.args):
            return False
    return True


def miqp_solver() -> str | None:
    installed = set(cp.installed_solvers())
    return next((s for s in _MIQP_SOLVERS if s in installed), None)


def _linear(problem) -> bool:
    """The model is a MILP: read off its cvxpy form, or (before the rewrite) off its own expressions."""
    form = problem.payload.get("cvxpy")
    if form is not None:
        return is_milp(form.problem)
    from ..lower.cvxpy import CvxpyLowering, NotRepresentable
    low = CvxpyLowering()
    try:
        return all(low.lower(e).is_pwl() for e in [problem.objective] + [c.expr for c in problem.constraints])
    except NotRepresentable:
        return True  # not for this backend anyway: the generic checks say why


class MipBackend(Backend):
    name = "mip"
    description = "mixed-integer LPs through cvxpy + HiGHS (MIQP/MISOCP with SCIP/Gurobi when installed); gap and bound"
    supports = frozenset({"bounds", "equality", "inequality", "nonsmooth", "cvxpy_lowered", "integer"})
    requires = frozenset({"cvxpy_form"})
    structure = frozenset({"integer"})
    cost = 0.9
    devices = ("cpu",)
    certificates = ("mip_gap", "mip_bound")
    options = {
        "cvxpy_solver": Option(str, None, "cvxpy mixed-integer solver (default: HIGHS for MILP)"),
        "mip_gap": Option(float, 1e-6, "relative optimality gap at which branch and bound stops"),
        "time_limit": Option(float, None, "time limit in seconds"),
        "solver_verbose": Option(bool, False, "print the solver's own log"),
    }

    def reject_reason(self, problem, tags):
        if "integer" in tags.features and miqp_solver() is None and not _linear(problem):
            return ("a mixed-integer model with a quadratic or conic part needs a MIQP solver (SCIP: pip install "
                    "pyscipopt, or Gurobi); HiGHS takes mixed-integer LPs only")
        return super().reject_reason(problem, tags)

    def solve(self, compiled, problem, options, callback):
        form = problem.payload["cvxpy"]
        form.refresh()
        solver = (options.get("cvxpy_solver") or ("HIGHS" if is_milp(form.problem) else miqp_solver())).upper()
        if solver not in cp.installed_solvers():
            raise ValueError(f"cvxpy solver {solver!r} is not installed; installed: {cp.installed_solvers()}")
        kw = {}
        if solver == "HIGHS":
            kw.update(getattr(form, "solver_options", {}))  # what a rewrite needs (e.g. tighter integrality)
            kw["mip_rel_gap"] = options["mip_gap"]
            if options.get("time_limit") is not None:
                kw["time_limit"] = float(options["time_limit"])
        start = time.perf_counter()
        again = getattr(form, "after_solve", lambda: False)  # a rewrite may revise its data (big-M) and ask again
        try:
            with warnings.catch_warnings():  # a time limit is reported as a status, not as cvxpy's warning
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                with _banner_to_stderr(solver, bool(options.get("solver_verbose"))):
                    form.problem.solve(solver=solver, verbose=bool(options.get("solver_verbose")), **kw)
                while again():
                    form.problem.solve(solver=solver, verbose=bool(options.get("solver_verbose")), **kw)
        except cp.SolverError as e:
            return RawSolution(Status.NUMERICAL_ERROR, message=f"cvxpy solver error ({solver}): {e}")
        status = _STATUS.get(form.problem.status, Status.OTHER_ERROR)
        if form.problem.status == cp.USER_LIMIT and options.get("time_limit") is not None:
            status = Status.TIME_LIMIT
        stats = form.problem.solver_stats
        info = stats.extra_stats
        incumbent = info is not None and np.isfinite(getattr(info, "objective_function_value", np.nan)) \
            and getattr(info, "mip_node_count", 0) >= 0 and form.problem.value is not None \
            and np.isfinite(form.problem.value)
        obj = form.problem.value if (status.is_success or incumbent) else None
        sol = RawSolution(status, objective=None if obj is None else float(obj),
                          message=f"cvxpy status {form.problem.status} ({stats.solver_name})",
                          extras={"cvxpy_solver": stats.solver_name, "solver_time": time.perf_counter() - start})
        if not status.is_success and obj is None:
            for cv in form.problem.variables():  # stopped before any incumbent: no point to hand back
                cv.value = None
        if status.has_point:
            _round_integers(form, sol)
        if obj is not None and info is not None and hasattr(info, "mip_dual_bound"):
            # HiGHS reports in its own objective (cvxpy's constant offset removed): the difference carries over
            bound = float(obj) - (float(info.objective_function_value) - float(info.mip_dual_bound))
            sol.certificates.update(mip_gap=float(info.mip_gap), mip_bound=bound)
            sol.extras["mip_nodes"] = int(info.mip_node_count)
        return sol


def _round_integers(form, sol) -> None:
    """Integer variables come back within the solver's integrality tolerance (1e-6 for HiGHS) of an integer:
    report that distance and hand back the integer itself."""
    worst = 0.0
    for cv in form.problem.variables():
        if (cv.attributes.get("integer") or cv.attributes.get("boolean")) and cv.value is not None:
            r = np.round(cv.value)
            worst = max(worst, float(np.max(np.abs(cv.value - r), initial=0.0)))
            cv.value = r + 0.0  # + 0.0: no negative zeros
    sol.certificates["integrality_violation"] = worst


BACKENDS = [MipBackend()]
