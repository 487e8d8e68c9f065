"""``zo``: zeroth-order optimization (two-point Gaussian/SPSA, coordinate, sparse, forward-gradient and
rank-based estimators) for models without usable gradients.

Two shapes of model:
* **black-box / flat**: variables, an objective with ``od.blackbox`` (or anything else), bounds (by
  projection) and constraints (by an augmented Lagrangian around the ZO loop);
* **fine-tuning**: ``m.module(net)`` with ``m.minimize(od.mean(loss, over=data, batch=B))``: the module's
  parameters are trained in place with MeZO-style seeded perturbations (memory ≈ inference); mini-batches
  are drawn from `data` by a seeded stream, so a resumed run equals an uninterrupted one.
"""
from __future__ import annotations

import numpy as np
import torch

from ..expr.node import Op
from ..problem import RawSolution
from ..solvers import zo
from ..solvers.common import SolverOutput, Status, resolve_device
from .base import Backend, Option
from .flatten import BestPoint, FlatProblem

_ESTIMATORS = ("gaussian", "rademacher", "coordinate", "sparse", "forward", "rank")


def auto_or_float(value):
    """Type of the ``lr`` option: the string 'auto' or a number."""
    return "auto" if isinstance(value, str) and value.strip() == "auto" else float(value)


auto_or_float.__name__ = "'auto' or number"   # what argparse and option errors call the expected type


class ZoBackend(Backend):
    name = "zo"
    description = "zeroth-order optimization: black-box objectives, in-place fine-tuning of torch modules"
    supports = frozenset({"bounds", "equality", "inequality", "blackbox", "opaque", "nonsmooth", "module"})
    cost = 10.0  # derivative-free: only when nothing with gradients fits, or when asked for
    automatic_for = frozenset({"blackbox", "module"})  # dispatch never picks it for a differentiable model
    certificates = ("feasibility",)
    options = {
        "estimator": Option(str, "gaussian", "gradient estimator", _ESTIMATORS),
        "q": Option(int, 1, "queries (perturbations) per estimate"),
        "eps": Option(float, None, "perturbation radius (default 1e-3; lr='auto' on a noisy black box: from "
                                   "the noise)"),
        "lr": Option(auto_or_float, "auto", "learning rate, or 'auto': RMS-normalized steps of probed length"),
        "optimizer": Option(str, "sgd", "update rule", ("sgd", "momentum", "sign", "adam", "conservative")),
        "schedule": Option(str, None, "learning-rate schedule (default: linear for lr='auto', else constant)",
                           ("constant", "linear", "cosine", "inv_sqrt")),
        "max_iter": Option(int, 1000, "ZO steps"),
        "tol": Option(float, None, "stop when the running mean of the estimated gradient norm falls below"),
        "gtol": Option(float, 1e-2, "lr='auto': LOCALLY_OPTIMAL when the estimated gradient fell by 1/gtol"),
        "time_limit": Option(float, None, "wall-clock limit in seconds"),
        "seed": Option(int, 0, "seed of the perturbation and batch streams"),
        "checkpoint_every": Option(int, None, "fine-tuning: save a checkpoint every K steps"),
        "checkpoint_path": Option(str, None, "fine-tuning: checkpoint file"),
        "resume_from": Option(str, None, "fine-tuning: resume from this checkpoint"),
    }

    def reject_reason(self, problem, tags):
        why = super().reject_reason(problem, tags)
        if why or "module" not in tags.features:
            return why
        if problem.variables or problem.constraints:
            return "fine-tuning a module takes no other variables or constraints"
        if _finite_sum(problem.objective) is None:
            return "fine-tuning a module needs the objective od.mean(loss, over=data, batch=B)"
        return None

    def compile(self, problem, *, device="cpu", dtype=None):
        if problem.extensions.get("module"):
            return {"device": device}
        device, dtype = resolve_device(device, dtype)
        return FlatProblem(problem, device, dtype)

    def solve(self, compiled, problem, options, callback):
        if problem.extensions.get("module"):
            return self._fine_tune(problem, options, callback)
        flat: FlatProblem = compiled
        lb, ub = flat.bounds()
        kw = dict(estimator=options["estimator"], q=options["q"], eps=options["eps"], lr=options["lr"],
                  optimizer=options["optimizer"], schedule=options["schedule"], seed=options["seed"],
                  tol=options["tol"], gtol=options["gtol"], time_limit=options["time_limit"],
                  callback=None, lb=lb, ub=ub, device=flat.device, dtype=flat.dtype)
        f = lambda x: flat.f(x)  # noqa: E731 - evaluated without autograd by the ZO loop
        # the best point seen (by the objective the loop reports: no extra black-box evaluations) is what an
        # interrupted or timed-out run returns
        x0 = flat.x0()
        best = BestPoint(flat, f, reported_before_step=x0)  # the loop reports the loss at the point it steps from
        kw["callback"] = best.wrap(flat.callback(callback))
        try:
            if flat.eq_items or flat.in_items:
                out = zo.minimize_constrained(f, x0.clone(), eq=flat.eq if flat.eq_items else None,
                                              ineq=flat.ineq if flat.in_items else None,
                                              inner_iter=options["max_iter"], **kw)
            else:
                out = zo.minimize(f, x0.clone(), max_iter=options["max_iter"], **kw)
        except KeyboardInterrupt:  # Ctrl-C inside an evaluation
            if best.x is None:
                raise
            out = SolverOutput(best.x, Status.INTERRUPTED, objective=best.key[1] if best.key[0] == 0 else None,
                               iterations=best.seen, message="interrupted (Ctrl-C); the best point seen is returned")
        if out.status in (Status.INTERRUPTED, Status.TIME_LIMIT) and best.better_than(out.x, out.objective):
            out.x, out.objective = best.x, None
            out.message = f"{out.message}; the best point seen is returned"
        elif (problem.payload.get("_convex") and not out.status.is_success and out.x is not None
              and (why := flat.unbounded_ray(x0, out.x))):
            # a convex model: a feasible ray on which the objective falls below -1e20 certifies unboundedness
            out.status, out.certificates, out.objective = Status.UNBOUNDED, {}, -float("inf")
            out.message = f"{out.message}; {why}"
        elif _diverged(out, best):
            # the run ended far above the best objective it saw: a diverged run certifies nothing (an estimated
            # gradient of 0 at a run-away point is not stationarity); hand back the best point seen
            out.status, out.certificates = Status.NUMERICAL_ERROR, {}
            out.message = (f"{out.message}; the run diverged (objective {out.objective:.3g}, best seen "
                           f"{best.key[1]:.3g}); the best point seen is returned")
            out.x, out.objective = best.x, None
        sol = RawSolution(out.status, objective=out.objective, iterations=out.iterations, message=out.message,
                          certificates=dict(out.certificates), counts=dict(out.counts), history=out.history)
        if out.x is not None and out.status.has_point:
            sol.values = flat.values(out.x.reshape(-1))
            sol.duals = flat.duals(out.duals) if out.duals else {}
        return sol

    def _fine_tune(self, problem, options, callback):
        (_, net), = problem.extensions["module"]
        fs = _finite_sum(problem.objective)
        data, n, B, func = fs.attrs["data"], fs.attrs["n"], fs.attrs.get("batch") or fs.attrs["n"], fs.attrs["func"]
        seed = options["seed"]

        def batch(k: int):
            # a seeded stream of mini-batches: batch k depends only on (seed, k), so resuming is exact
            idx = torch.as_tensor(np.random.default_rng([seed, k]).choice(n, size=min(B, n), replace=False))
            return tuple(d[idx] for d in data) if isinstance(data, tuple) else data[idx]

        out = zo.fine_tune(net, lambda module, b: func(b), batch, steps=options["max_iter"],
                           estimator=options["estimator"] if options["estimator"] != "coordinate" else "gaussian",
                           q=options["q"], eps=1e-3 if options["eps"] is None else options["eps"], lr=options["lr"],
                           optimizer=options["optimizer"],
                           schedule=options["schedule"], gtol=options["gtol"], seed=seed,
                           checkpoint_every=options["checkpoint_every"],
                           checkpoint_path=options["checkpoint_path"], resume_from=options["resume_from"],
                           time_limit=options["time_limit"], callback=callback)
        return RawSolution(out.status, objective=out.objective, iterations=out.iterations, message=out.message,
                           certificates=dict(out.certificates), counts=dict(out.counts), history=out.history,
                           extras={"bytes_per_step": out.extras.get("bytes_per_step")})


def _diverged(out, best) -> bool:
    """The final objective is non-finite, or above the best feasible objective seen by more than 10⁶ of its size."""
    if best.x is None or best.key[0] != 0 or out.objective is None or out.x is None:
        return False
    f, fb = float(out.objective), float(best.key[1])
    return not np.isfinite(f) or f > fb + 1e6 * (1.0 + abs(fb))


def _finite_sum(e):
    if isinstance(e, Op) and e.name == "finite_sum" and not e.args:
        return e
    return None


BACKENDS = [ZoBackend()]
