"""Smooth backends over torch autograd: ``nlp`` (constrained; SciPy SLSQP/trust-constr underneath)
and ``lbfgs`` (unconstrained or bounds only). Both see the problem as flat-vector callables."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from ..errors import ModelError
from ..problem import RawSolution
from ..solvers import lbfgs, nlp
from ..solvers.autodiff import Objective
from ..solvers.common import SolverOutput, Status, resolve_device
from .base import Backend, Option
from .casadi_derivatives import CasadiDerivatives
from .flatten import BestPoint, FlatProblem

_DERIVATIVES = Option(str, "auto", "derivatives: torch autograd, or CasADi functions compiled once per model "
                      "(auto: CasADi for small CPU float64 models whose terms all have a CasADi form)",
                      ("auto", "autograd", "casadi"))
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

    escapes_saddles = False  # whether `run` itself steps off stationary points with negative curvature
    tracks_best = False      # whether `run` itself returns the best point seen when interrupted

    def run(self, flat: FlatProblem, options, callback, convex, f, scale, x0=None):
        """Run the method on the objective `f` (the model's objective times `scale`) from `x0` (default: the
        model's start)."""
        raise NotImplementedError

    def solve(self, flat: FlatProblem, problem, options, callback):
        scale = flat.objective_scale()
        f = flat.f if scale == 1.0 else (lambda x: scale * flat.f(x))
        best = BestPoint(flat, f)
        cb = _unscaled_callback(flat.callback(callback), scale)
        if not self.tracks_best:  # costs an objective and constraint evaluation per iteration
            cb = best.wrap(cb)
        convex = problem.payload.get("_convex", False)
        x_start = flat.x0()
        rows = flat.row_scaled()  # gradient-based constraint scaling at the start (IPOPT's rule); flat if none
        try:
            out = self.run(rows, options, cb, convex=convex, f=f, scale=scale)
        except KeyboardInterrupt:  # Ctrl-C inside the method (not in a callback): end with the best point seen
            if best.x is None:
                raise
            out = SolverOutput(best.x, Status.INTERRUPTED, objective=float(f(best.x).detach()), iterations=best.seen,
                               message="interrupted (Ctrl-C); the best point seen is returned")
        if not convex and not self.escapes_saddles and out.status == Status.LOCALLY_OPTIMAL and out.x is not None:
            out = self._escape_saddle(rows, options, cb, f, scale, out)
        if rows is not flat:
            out = self._on_user_rows(flat, rows, options, cb, convex, f, scale, out)
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


    def _on_user_rows(self, flat, rows, options, cb, convex, f, scale, out):
        """A run on scaled rows, stated for the user's rows: multipliers sᵢλ̃ᵢ, feasibility measured on the
        unscaled constraints, and a success whose unscaled violation exceeds the tolerance (a row scaled down by
        sᵢ carries the solver's tolerance times 1/sᵢ) continued on the unscaled rows from where it stopped."""
        out.duals = rows.unscale_duals(out.duals)
        if out.x is None or not out.certificates:
            return out
        viol, feas_tol = flat.violation(out.x), options.get("feas_tol", 1e-6)
        if out.status in (Status.OPTIMAL, Status.LOCALLY_OPTIMAL) and viol > feas_tol:
            again = self.run(flat, options, cb, convex=convex, f=f, scale=scale, x0=out.x)
            if again.status == out.status and again.x is not None and flat.violation(again.x) <= feas_tol:
                again.iterations += out.iterations
                again.message = f"{again.message}; continued on the unscaled constraints (violation {viol:.1e})"
                return again
            out.status = Status.SLOW_PROGRESS  # KKT on the scaled rows, but not feasible on the user's
            out.message = (f"{out.message}; KKT point of the scaled constraints, but the unscaled violation "
                           f"{viol:.1e} exceeds feas_tol {feas_tol:g} (and continuing unscaled did not meet it)")
        out.certificates = {**out.certificates, "feasibility": viol}
        if "kkt" in out.certificates:
            out.certificates["kkt"] = max(out.certificates.get("stationarity", 0.0), viol,
                                          out.certificates.get("complementarity", 0.0))
        return out

    def _compiled_derivatives(self, flat, options, scale):
        """CasADi derivatives of the objective (times `scale`) and of the rows `flat` presents (scaled rows
        included) for small CPU float64 models, or None (autograd): each autograd pass costs ~0.5 ms of
        overhead on a 3-variable model, the compiled functions microseconds (`casadi_derivatives`)."""
        mode = options.get("derivatives", "autograd")
        if mode == "autograd" or options.get("hessian", "exact") != "exact":
            return None
        base = getattr(flat, "flat", flat)  # `ScaledRows` wraps the compiled FlatProblem
        d, why = CasadiDerivatives.why_not(base)
        if d is None:
            if mode == "casadi":
                raise ModelError(f"{self.name} derivatives='casadi' does not apply: {why}; use "
                                 "derivatives='autograd'")
            return None
        return d.oracle(scale, getattr(flat, "s_eq", None), getattr(flat, "s_in", None))

    def _escape_saddle(self, flat, options, cb, f, scale, out, max_escapes: int = 3):
        """A KKT point of a nonconvex model with a direction of negative curvature of the Lagrangian along the
        active constraints is a saddle or a maximum, not a local minimum: restart from a lower point along that
        direction (up to `max_escapes` times); if the curvature remains, the status says so."""
        lb, ub = flat.bounds()
        eq = flat.eq if flat.eq_items else None
        ineq = flat.ineq if flat.in_items else None
        obj = Objective(f, flat.device, flat.dtype)
        for k in range(max_escapes + 1):
            x = out.x.detach().cpu().double().numpy().reshape(-1)
            mult = SimpleNamespace(lam=_np(out.duals.get("eq")), mu=_np(out.duals.get("ineq")))
            d = nlp._negative_curvature(f, eq, ineq, x, mult, lb, ub, flat.device, flat.dtype,
                                        derivatives=self._compiled_derivatives(flat, options, scale))
            if d is None:
                if k:
                    out.message = f"{out.message}; restarted {k}x off saddle points (negative curvature)"
                return out
            start = nlp._escape(obj, x, d, lb, ub) if k < max_escapes else None
            again = None if start is None else self.run(
                flat, options, cb, convex=False, f=f, scale=scale,
                x0=torch.as_tensor(start, dtype=flat.dtype, device=flat.device))
            if again is None or again.status != Status.LOCALLY_OPTIMAL or again.objective is None \
                    or not again.objective < out.objective:
                break
            out = again
        out.status = Status.SLOW_PROGRESS
        out.message = f"{out.message}; a stationary point with negative curvature (a saddle), not a local minimum"
        return out


def _np(v):
    return np.zeros(0) if v is None else torch.as_tensor(v).detach().cpu().double().numpy().reshape(-1)


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
               "feas_tol": Option(float, 1e-6, "feasibility tolerance"), "derivatives": _DERIVATIVES}

    escapes_saddles = tracks_best = True  # solvers/nlp.py steps off saddles and keeps the best point itself

    def run(self, flat, options, callback, convex, f, scale, x0=None):
        lb, ub = flat.bounds()
        return nlp.minimize(f, flat.x0() if x0 is None else x0, eq=flat.eq if flat.eq_items else None,
                            ineq=flat.ineq if flat.in_items else None, lb=lb, ub=ub, method=options["method"],
                            max_iter=options["max_iter"], tol=options["tol"], feas_tol=options["feas_tol"],
                            time_limit=options["time_limit"], callback=callback, device=flat.device,
                            dtype=flat.dtype, convex=convex,
                            derivatives=self._compiled_derivatives(flat, options, scale))


class LbfgsBackend(_Smooth):
    name = "lbfgs"
    description = "L-BFGS-B for smooth models without constraints (bounds allowed)"
    supports = frozenset({"bounds", "opaque"})
    cost = 1.0
    options = {**_COMMON, "derivatives": _DERIVATIVES}

    escapes_saddles = tracks_best = True

    def run(self, flat, options, callback, convex, f, scale, x0=None):
        lb, ub = flat.bounds()
        return lbfgs.minimize(f, flat.x0() if x0 is None else x0, lb=lb, ub=ub, max_iter=options["max_iter"], tol=options["tol"],
                              time_limit=options["time_limit"], callback=callback, device=flat.device,
                              dtype=flat.dtype, convex=convex,
                              derivatives=self._compiled_derivatives(flat, options, scale))
BACKENDS = [LbfgsBackend(), NlpBackend()]
