"""``bilevel``: models with levels (``m.level(...)``): min_x f(x, y) with y ∈ argmin_y {g(x, y) : h(x, y) ≤ 0}.

Methods (``optdsl.solvers.bilevel``), chosen by structure with ``method="auto"`` (the default): the exact
hyper-objective method ``hyper`` (L-BFGS-B over the leader's bounds on f(x, y*(x)), the follower solved by
Newton or, with constraints, by SLSQP and differentiated through its KKT system) when the follower is smooth
and strongly convex; otherwise the value-function penalty (Kwon et al. 2024) with σ driven to zero, or
LV-HBA for a large constrained follower. Named methods (penalty, BO-REP, LV-HBA, ScaleBiO, the implicit and
unrolled baselines) run as asked or raise saying why. Three levels (a chain, one variable each) are solved
exactly by replacing the bottom level with its stationarity condition; more by nested penalties. Bounds on
leader or follower variables are handled by projection (the leader's box directly by L-BFGS-B); the leader
may have no other constraints (a follower variable in a leader constraint cannot be handled by these
methods).

A leader objective with an ``od.blackbox`` term has no gradient: ``method="zo"`` (chosen by ``auto``) runs a
zeroth-order loop over the hyper-objective F(x) = f(x, y*(x)) within the leader's bounds, the follower solved
by its own gradient method (Newton, or SLSQP with constraints) at every evaluation (`solvers.bilevel.zo_outer`);
leader constraints, which may read the follower's variables, are evaluated at (x, y*(x)) by zo's augmented
Lagrangian.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..expr.node import Op
from ..expr.ops import SPECS
from ..lower.torch import TorchLowering
from ..problem import RawSolution
from ..solvers import bilevel
from ..solvers.common import resolve_device
from .base import Backend, Option

_METHODS = ("auto", "hyper", "penalty", "borep", "lvhba", "scalebio", "implicit", "unrolled", "zo")


def _has_op(exprs, name: str) -> bool:
    return any(isinstance(n, Op) and n.name == name for e in exprs for n in e.nodes())


def _proj(vars_, free: int = 0):
    """Projection onto the variables' bounds, on a tuple of tensors (None when unbounded); `free` more parts
    (a module's parameters) follow them, unbounded."""
    if all(v.lb is None and v.ub is None for v in vars_):
        return None
    lo = [None if v.lb is None else torch.as_tensor(v.lb) for v in vars_] + [None] * free
    hi = [None if v.ub is None else torch.as_tensor(v.ub) for v in vars_] + [None] * free

    def P(ts):
        single = isinstance(ts, torch.Tensor)
        parts = (ts,) if single else tuple(ts)
        out = tuple(p.clamp(min=None if a is None else a.to(p), max=None if b is None else b.to(p))
                    for p, a, b in zip(parts, lo, hi))
        return out[0] if single else out
    return P


def _bounds(vars_):
    """(lo, hi) per variable (None where unbounded): the leader's box for the hyper-objective method."""
    return ([None if v.lb is None else np.asarray(v.lb, dtype=float) for v in vars_],
            [None if v.ub is None else np.asarray(v.ub, dtype=float) for v in vars_])


class BilevelBackend(Backend):
    name = "bilevel"
    description = ("bilevel / multilevel models: exact hyper-objective method (default), value-function penalty, "
                   "BO-REP, LV-HBA, ScaleBiO; implicit and unrolled baselines")
    supports = frozenset({"bilevel", "value_penalty", "bounds", "opaque", "blackbox"})
    requires = frozenset({"smooth"})
    structure = frozenset({"bilevel"})
    cost = 1.0
    certificates = ("lower_level_gap", "stationarity")
    options = {
        "method": Option(str, "auto", "bilevel method (auto: by structure - hyper for a strongly convex follower, "
                     "lvhba with follower constraints, else penalty with sigma driven to 0; zo for a black-box "
                     "leader objective)", _METHODS),
        "seed": Option(int, 0, "zo: seed of the zeroth-order leader's perturbations"),
        "sigma": Option(float, None, "penalty parameter σ (multiplies f: small = strong penalty; penalty methods)"),
        "sigma_decay": Option(float, 0.0, "σ schedule σ_k = max(sigma_min, σ/(k+1)^decay); 0 keeps σ fixed"),
        "sigma_min": Option(float, 1e-3, "floor of the σ schedule"),
        "lr_x": Option(float, None, "leader step size"),
        "lr_y": Option(float, None, "follower step size"),
        "inner_steps": Option(int, None, "follower steps per leader step"),
        "linear_solver": Option(str, None, "implicit: hypergradient linear solver (sor = bandit-tuned SOR on the "
                                "follower Hessian, learning omega across leader steps)", ("cg", "neumann", "sor")),
        "max_iter": Option(int, None, "leader iterations"),
        "tol": Option(float, None, "stationarity tolerance"),
        "time_limit": Option(float, None, "wall-clock limit in seconds"),
    }

    def reject_reason(self, problem, tags):
        levels = problem.extensions.get("bilevel") or ()
        follower_vars = {v for lv in levels for v in lv.variables}
        zo_leader = "blackbox" in tags.features   # the zeroth-order leader takes leader constraints (at y*(x))
        for c in () if zo_leader else problem.constraints:  # before the generic check: the message names it
            if set(c.expr.variables()) & follower_vars:
                return (f"leader constraint {c.name!r} reads follower variables; the bilevel methods cannot "
                        "handle coupled leader constraints (move it into the follower's level)")
            if levels:
                return f"leader constraint {c.name!r}: the leader may have bounds only"
        if zo_leader:   # a zeroth-order leader: the leader's objective need not be smooth
            why = _zo_leader_reason(problem, levels)
            if why:
                return why
            tags = type(tags)(tags.features - {"blackbox", "nonsmooth", "inequality", "equality"},
                              tags.properties | {"smooth"})
        why = super().reject_reason(problem, tags)
        if why:
            return why
        from ..passes.bilevel_to_value_penalty import BilevelToValuePenalty
        if BilevelToValuePenalty.applies(problem):
            return "a two-level model is first rewritten by bilevel_to_value_penalty"
        if len(levels) > 1 and any(lv.modules for lv in levels):
            return "a module follower (level.module) is solved in two-level models only"
        if len(levels) > 1:
            for a, b in zip(levels, levels[1:]):
                if b.parent != a.name:
                    return "three or more levels must form a chain (each level inside the previous one)"
            if any(len(lv.variables) != 1 or lv.constraints for lv in levels):
                return "multilevel models: one variable per level and no follower constraints"
        return None

    def compile(self, problem, *, device="cpu", dtype=None):
        device, dtype = resolve_device(device, dtype)
        return {"device": device, "dtype": dtype, "low": TorchLowering(device, dtype)}

    def solve(self, compiled, problem, options, callback):
        levels = problem.extensions["bilevel"]
        low, device, dtype = compiled["low"], compiled["device"], compiled["dtype"]
        leader = [v for v in problem.variables if getattr(v, "level", None) is None]
        sign = lambda s: -1.0 if s == "max" else 1.0  # noqa: E731

        def start(v):
            val = np.zeros(v.shape) if v.value is None else v.value
            return torch.as_tensor(val, dtype=dtype, device=device)

        def ev(expr, env, s=1.0):
            return s * low.evaluate(expr, env).reshape(())

        kw = {k: options[k] for k in ("sigma", "lr_x", "lr_y", "inner_steps", "max_iter", "tol", "time_limit")
              if options[k] is not None}
        if options["linear_solver"] is not None:
            if options["method"] != "implicit":
                raise ValueError("linear_solver applies to method='implicit' only")
            kw["linear_solver"] = options["linear_solver"]
        if options["sigma_decay"] and options["method"] == "penalty":
            kw["sigma"] = bilevel.sigma_schedule(options["sigma"] or 1.0, options["sigma_min"], options["sigma_decay"])
        kw.update(callback=callback, device=device, dtype=dtype)
        leader_exprs = [problem.objective] + [c.expr for c in problem.constraints]
        if options["method"] == "zo" or (options["method"] == "auto" and _has_op(leader_exprs, "blackbox")):
            return self._solve_zo(problem, levels[0], leader, low, device, dtype, options, callback, start, ev, sign)
        if problem.constraints or _has_op(leader_exprs, "blackbox"):
            raise ValueError(f"method={options['method']!r} needs the leader's gradient and takes its bounds only; a "
                             "leader with a black-box term or constraints is solved by method='zo' (the default)")
        if len(levels) == 1:
            (lv,) = levels
            follower = list(lv.variables)
            host = _ModuleHost(lv, dtype, device) if lv.modules else None
            n_v = len(follower)

            def run(fn):
                """fn(x, y) on the follower's variables; with modules, inside a call that puts the parameter tensors
                (the rest of y) in the networks' place (torch.func.functional_call)."""
                if host is None:
                    return fn
                return lambda x, y: host.call(lambda: fn(x, y[:n_v]), y[n_v:])
            f = run(lambda x, y: ev(problem.objective, {**dict(zip(leader, x)), **dict(zip(follower, y))},
                                    sign(problem.sense)))
            g = run(lambda x, y: ev(lv.objective, {**dict(zip(leader, x)), **dict(zip(follower, y))}, sign(lv.sense)))
            ineq = [c for c in lv.constraints if c.kind == "ineq"]
            eq = [c for c in lv.constraints if c.kind == "eq"]

            def rows(items):
                if not items:
                    return None
                return run(lambda x, y: torch.cat([low.evaluate(c.expr, {**dict(zip(leader, x)),
                                                                         **dict(zip(follower, y))}).reshape(-1)
                                                   for c in items]))
            method = options["method"]
            extra = {}
            if method in ("auto", "hyper"):
                extra["bounds_x"] = _bounds(leader)
            if eq:
                extra["lower_equalities"] = rows(eq)
            y0 = tuple(start(v) for v in follower) + (host.start() if host else ())
            out = bilevel.solve(f, g, tuple(start(v) for v in leader), y0,
                                method=method, lower_constraints=rows(ineq), proj_x=_proj(leader),
                                proj_y=_proj(follower, len(y0) - n_v), **extra, **kw)
            x, y = out.x if out.x is not None else (None, None)
            pairs = list(zip(leader, x or ())) + list(zip(follower, (y or ())[:n_v]))
            if host is not None and y is not None and out.status.has_point:
                host.write_back(y[n_v:])   # the networks hold the follower's answer, in place
        else:
            if options["method"] not in ("auto", "hyper", "penalty"):
                raise ValueError(f"three or more levels are solved exactly (auto/hyper: three levels) or by nested "
                                 f"value-function penalties (penalty); method={options['method']!r} is only "
                                 f"available for two levels")
            chain = [leader] + [list(lv.variables) for lv in levels]
            exprs = [(problem.objective, sign(problem.sense))] + [(lv.objective, sign(lv.sense)) for lv in levels]

            def level_fn(expr, s):
                def fn(*us):
                    env = {}
                    for block, u in zip(chain, us):
                        parts = (u,) if isinstance(u, torch.Tensor) else tuple(u)
                        env.update(zip(block, parts))
                    return ev(expr, env, s)
                return fn
            starts = [start(block[0]) if len(block) == 1 else tuple(start(v) for v in block) for block in chain]
            if options["method"] == "penalty":
                # nested penalties need gentler steps than two levels (the tested settings of solve_multilevel)
                kw = {**bilevel.multilevel.NESTED_DEFAULTS, **kw}
                kw["sigmas"] = [kw["sigma"]] * (len(chain) - 2)
            out = bilevel.solve_multilevel([level_fn(e, s) for e, s in exprs], starts, inner_lr=1.0,
                                           method=options["method"], **kw)
            pairs = []
            if out.x is not None:
                u1, rest = out.x
                us = [u1] + list(rest)
                for block, u in zip(chain, us):
                    parts = (u,) if isinstance(u, torch.Tensor) else tuple(u)
                    pairs += list(zip(block, parts))
        ran = out.extras.get("method")   # what "auto" chose (and why it changed course, if it did)
        message = out.message if not ran else (f"method {ran}: {out.message}" + (
            f" (after: {out.extras['fallback']})" if out.extras.get("fallback") else ""))
        sol = RawSolution(out.status, objective=out.objective, iterations=out.iterations, message=message,
                          certificates={k: v for k, v in out.certificates.items() if isinstance(v, (int, float)) and math.isfinite(v)},
                          counts=dict(out.counts), history=out.history)
        if out.status.has_point and pairs:
            sol.values = {v: t.detach().cpu().double().numpy().reshape(v.shape) for v, t in pairs}
        lower = (out.duals or {}).get("lower")
        if lower is not None and len(levels) == 1:
            # LV-HBA's follower multipliers, row by row, back onto the follower's own constraint names
            rows = torch.as_tensor(lower).detach().cpu().double().reshape(-1).numpy()
            k = 0
            for c in [c for c in levels[0].constraints if c.kind == "ineq"]:
                sol.duals[c.name] = rows[k:k + c.expr.size].reshape(c.expr.shape)
                k += c.expr.size
        return sol

    def _solve_zo(self, problem, lv, leader, low, device, dtype, options, callback, start, ev, sign):
        """A zeroth-order leader over F(x) = f(x, y*(x)) (`solvers.bilevel.zo_outer`); follower bounds become
        rows of its constraints (SLSQP takes them with the others)."""
        if len(problem.extensions["bilevel"]) != 1:
            raise ValueError("method='zo' takes two levels (one follower)")
        follower = list(lv.variables)
        host = _ModuleHost(lv, dtype, device) if lv.modules else None
        n_v = len(follower)

        def run(fn):   # as in `solve`: a module follower's parameters are the rest of y
            return fn if host is None else (lambda x, y: host.call(lambda: fn(x, y), y[n_v:]))
        env = lambda x, y: {**dict(zip(leader, x)), **dict(zip(follower, y))}  # noqa: E731
        f = run(lambda x, y: ev(problem.objective, env(x, y), sign(problem.sense)))
        g = run(lambda x, y: ev(lv.objective, env(x, y), sign(lv.sense)))
        ineq = [c for c in lv.constraints if c.kind == "ineq"]
        eq = [c for c in lv.constraints if c.kind == "eq"]
        bounded = [(k, v) for k, v in enumerate(follower) if v.lb is not None or v.ub is not None]

        @run
        def h(x, y):
            e = env(x, y)
            rows = [low.evaluate(c.expr, e).reshape(-1) for c in ineq]
            for k, v in bounded:
                if v.lb is not None:
                    rows.append((torch.as_tensor(v.lb).to(y[k]) - y[k]).reshape(-1))
                if v.ub is not None:
                    rows.append((y[k] - torch.as_tensor(v.ub).to(y[k])).reshape(-1))
            return torch.cat(rows)

        @run
        def h_eq(x, y):
            return torch.cat([low.evaluate(c.expr, env(x, y)).reshape(-1) for c in eq])
        lead_in = [c for c in problem.constraints if c.kind == "ineq"]
        lead_eq = [c for c in problem.constraints if c.kind == "eq"]

        def leader_rows(items):
            if not items:
                return None
            return run(lambda x, y: torch.cat([low.evaluate(c.expr, env(x, y)).reshape(-1) for c in items]))
        kw = {k: options[k] for k in ("max_iter", "tol", "time_limit") if options[k] is not None}
        if options["lr_x"] is not None:
            kw["lr"] = options["lr_x"]
        out = bilevel.hyper_zo(f, g, tuple(start(v) for v in leader),
                               tuple(start(v) for v in follower) + (host.start() if host else ()),
                               bounds_x=_bounds(leader), lower_constraints=h if ineq or bounded else None,
                               lower_equalities=h_eq if eq else None, leader_constraints=leader_rows(lead_in),
                               leader_equalities=leader_rows(lead_eq), seed=options["seed"],
                               callback=callback, device=device, dtype=dtype, **kw)
        x, y = out.x
        sol = RawSolution(out.status, objective=out.objective, iterations=out.iterations,
                          message=f"method zo: {out.message}",
                          certificates={k: v for k, v in out.certificates.items()
                                        if isinstance(v, (int, float)) and math.isfinite(v)},
                          counts=dict(out.counts), history=out.history)
        if out.status.has_point:
            sol.values = {v: t.detach().cpu().double().numpy().reshape(v.shape)
                          for v, t in list(zip(leader, x)) + list(zip(follower, y[:n_v]))}
            if host is not None:
                host.write_back(y[n_v:])
        for key, items in (("lower", ineq), ("leader_ineq", lead_in), ("leader_eq", lead_eq)):
            if out.duals.get(key) is None:
                continue
            rows, k = torch.as_tensor(out.duals[key]).detach().cpu().double().reshape(-1).numpy(), 0
            for c in items:   # back onto the user's constraint names, row by row
                sol.duals[c.name] = rows[k:k + c.expr.size].reshape(c.expr.shape)
                k += c.expr.size
        return sol


class _ModuleHost(torch.nn.Module):
    """The networks of a module follower, so that `torch.func.functional_call` can evaluate any closure that runs
    them (an ``od.fn`` term) with given parameter tensors in place of their own."""

    def __init__(self, level, dtype, device):
        super().__init__()
        self.nets = torch.nn.ModuleList([net for _, net in level.modules])
        self.names, self.params = [], []
        for k, (label, net) in enumerate(level.modules):
            for pname, p in net.named_parameters():
                if not p.requires_grad:
                    continue
                if p.dtype != dtype:
                    raise ValueError(f"level {level.name!r}: module {label!r} has {p.dtype} parameters and the solve "
                                     f"runs in {dtype}: convert the network (net.to({dtype})) or pass dtype=...")
                self.names.append(f"nets.{k}.{pname}")
                self.params.append(p)
        self.to(device)

    def forward(self, thunk):
        return thunk()

    def call(self, thunk, tensors):
        return torch.func.functional_call(self, dict(zip(self.names, tensors)), (thunk,))

    def start(self) -> tuple:
        return tuple(p.detach().clone() for p in self.params)

    def write_back(self, tensors) -> None:
        with torch.no_grad():
            for p, t in zip(self.params, tensors):
                p.copy_(t.detach().to(p))


def _zo_leader_reason(problem, levels):
    """Why a model with a black-box term cannot take the zeroth-order leader (None when it can)."""
    if len(levels) != 1:
        return "a black-box leader objective is solved for two levels (one follower) only"
    lv = levels[0]
    if _has_op([lv.objective] + [c.expr for c in lv.constraints], "blackbox"):
        return (f"level {lv.name!r} reads a black-box term: the follower is solved by gradients (write it with "
                "od.fn, a differentiable torch function); only the leader's objective may be a black box")
    bad = sorted({n.name for e in [lv.objective] + [c.expr for c in lv.constraints] for n in e.nodes()
                  if isinstance(n, Op) and not SPECS[n.name].smooth})
    if bad:
        return f"level {lv.name!r} is not smooth ({', '.join(bad)}): the follower is solved by gradients"
    return None


BACKENDS = [BilevelBackend()]
