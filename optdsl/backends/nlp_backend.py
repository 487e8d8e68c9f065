"""Smooth backends over torch autograd: ``nlp`` (constrained; SciPy SLSQP/trust-constr underneath)
and ``lbfgs`` (unconstrained or bounds only). Both see the problem as flat-vector callables."""
from __future__ import annotations

from ..problem import RawSolution
from ..solvers import lbfgs, nlp
from ..solvers.common import SolverOutput, Status, resolve_device
from .base import Backend, Option
from .flatten import BestPoint, FlatProblem

_COMMON = {
    "max_iter": Option(int, 500, "maximum iterations"),
    "tol": Option(float, 1e-8, "optimality tolerance"),
    "time_limit": Option(float, None, "wall-clock limit in seconds"),
}


class _Smooth(Backend):
    requires = frozenset({"smooth"})
    certificates = ("stationarity", "feasibility", "complementarity")

    def compile(self, problem, *, device="cpu", dtype=None):
        device, dtype = resolve_device(device, dtype)
        return FlatProblem(problem, device, dtype)

    def run(self, flat: FlatProblem, options, callback, convex, f, scale):
        """Run the method on the objective `f` (the model's objective times `scale`)."""
        raise NotImplementedError

    def solve(self, flat: FlatProblem, problem, options, callback):
        scale = flat.objective_scale()
        f = flat.f if scale == 1.0 else (lambda x: scale * flat.f(x))
        best = BestPoint(flat, f)
        cb = best.wrap(_unscaled_callback(flat.callback(callback), scale))
        convex = problem.payload.get("_convex", False)
        x_start = flat.x0()
        try:
            out = self.run(flat, options, cb, convex=convex, f=f, scale=scale)
        except KeyboardInterrupt:  # Ctrl-C inside the method (not in a callback): end with the best point seen
            if best.x is None:
                raise
            out = SolverOutput(best.x, Status.INTERRUPTED, objective=float(f(best.x).detach()), iterations=best.seen,
                               message="interrupted (Ctrl-C); the best point seen is returned")
        if out.status in (Status.INTERRUPTED, Status.TIME_LIMIT) and best.better_than(out.x):
            out.x, out.objective = best.x, float(f(best.x).detach())
            out.message = f"{out.message}; the best point seen is returned"
        if convex and out.status not in (Status.OPTIMAL, Status.LOCALLY_OPTIMAL, Status.UNBOUNDED) and out.x is not None:
            why = flat.unbounded_ray(x_start, out.x)
            if why:  # a convex model whose run wandered off: certified unbounded, whatever this method says
                out.status, out.message, out.certificates = Status.UNBOUNDED, f"{out.message}; {why}", {}
        if out.status == Status.UNBOUNDED:
            out.objective = -float("inf") / scale  # the infimum, not wherever the run happened to stop
        certs = dict(out.certificates)
        for k in ("stationarity", "complementarity"):  # measured on the scaled objective's Lagrangian
            if k in certs and scale != 1.0:
                certs[k] = certs[k] / scale
        history = [{**h, "objective": h["objective"] / scale} if "objective" in h and scale != 1.0 else h
                   for h in out.history]
        sol = RawSolution(out.status, objective=None if out.objective is None else out.objective / scale,
                          iterations=out.iterations, message=out.message, certificates=certs,
                          counts=dict(out.counts), history=history,
                          extras={k: v for k, v in out.extras.items() if isinstance(v, (bool, int, float, str))})
        if scale != 1.0:
            sol.extras["objective_scale"] = scale
        worst = out.extras.get("worst_constraint")
        if isinstance(worst, tuple) and len(worst) == 2 and worst[1] >= 0:
            # the solver counts rows ("ineq[3]"); the user named constraints
            name = flat.row_name(*worst)
            sol.extras["worst_constraint"] = name
            sol.message = sol.message.replace(f"constraint {worst[0]}[{worst[1]}]", f"constraint {name}")
        if out.x is not None and out.status.has_point:
            sol.values = flat.values(out.x)
            duals = out.duals if scale == 1.0 else {k: v / scale for k, v in out.duals.items()}
            sol.duals = flat.duals(duals)
        return sol


def _unscaled_callback(cb, scale):
    """The user's callback sees the model's own objective, not the scaled one the method iterates on."""
    if cb is None or scale == 1.0:
        return cb
    return lambda info: cb({**info, "objective": info["objective"] / scale} if "objective" in info else info)


class NlpBackend(_Smooth):
    name = "nlp"
    description = "smooth constrained NLP: torch autograd derivatives, SciPy SLSQP / trust-constr iterations"
    supports = frozenset({"bounds", "equality", "inequality", "opaque"})
    cost = 3.0
    options = {**_COMMON, "method": Option(str, "slsqp", "SciPy method", ("slsqp", "trust-constr")),
               "feas_tol": Option(float, 1e-6, "feasibility tolerance")}

    def run(self, flat, options, callback, convex, f, scale):
        lb, ub = flat.bounds()
        return nlp.minimize(f, flat.x0(), eq=flat.eq if flat.eq_items else None,
                            ineq=flat.ineq if flat.in_items else None, lb=lb, ub=ub, method=options["method"],
                            max_iter=options["max_iter"], tol=options["tol"], feas_tol=options["feas_tol"],
                            time_limit=options["time_limit"], callback=callback, device=flat.device,
                            dtype=flat.dtype, convex=convex)


class LbfgsBackend(_Smooth):
    name = "lbfgs"
    description = "L-BFGS-B for smooth models without constraints (bounds allowed)"
    supports = frozenset({"bounds", "opaque"})
    cost = 1.0
    options = dict(_COMMON)

    def run(self, flat, options, callback, convex, f, scale):
        lb, ub = flat.bounds()
        return lbfgs.minimize(f, flat.x0(), lb=lb, ub=ub, max_iter=options["max_iter"], tol=options["tol"],
                              time_limit=options["time_limit"], callback=callback, device=flat.device,
                              dtype=flat.dtype, convex=convex)
BACKENDS = [LbfgsBackend(), NlpBackend()]
