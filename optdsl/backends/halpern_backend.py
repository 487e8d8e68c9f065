"""``halpern``: convex–concave saddle problems min_x max_y L(x, y) (declared with ``m.saddle`` or
``od.maximum_over``) as the monotone inclusion 0 ∈ F(z) + N_X×Y(z), F = (∇ₓL, −∇ᵧL): Halpern iteration
with restarts, extra-anchored gradient, extragradient, and variance-reduced Halpern when L is a finite
sum ``od.mean(loss, over=data, args=(x, y))``.

Each player's feasible set must be a product of projection-friendly sets, one per variable, read off the
model: bounds (box), ``v.sum() == r`` with ``v >= 0`` (simplex) and ``od.norm(v) <= r`` (ball). When L is
affine in each player separately (bilinear games), the duality gap is certified exactly through the sets'
support functions: gap = max_y L(x̄, y) − min_x L(x, ȳ).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..expr.analysis import is_affine
from ..expr.node import Constant, Op, Variable
from ..expr.ops import SPECS
from ..lower.torch import TorchLowering
from ..problem import RawSolution
from ..solvers import halpern as H
from ..solvers.common import resolve_device
from .base import Backend, Option


def _const(e):
    return float(e.data) if isinstance(e, Constant) and e.shape == () else None


def _set_of(v: Variable, items) -> tuple[object, list[str]]:
    """The projection for variable v from its bounds and the constraints that read only v."""
    mine = [c for c in items if set(c.expr.variables()) == {v}]
    for c in mine:
        lhs, rhs = c.expr.args if isinstance(c.expr, Op) and c.expr.name == "sub" else (None, None)
        r = _const(rhs) if rhs is not None else None
        if r is None:
            continue
        if (c.kind == "eq" and isinstance(lhs, Op) and lhs.name == "sum" and lhs.attrs.get("axis") is None
                and lhs.args[0] is v and v.lb is not None and np.all(v.lb == 0) and v.ub is None):
            return H.Simplex(r), [c.name]
        if c.kind == "ineq" and isinstance(lhs, Op) and lhs.name == "norm" and lhs.attrs["p"] == 2 and lhs.args[0] is v \
                and v.lb is None and v.ub is None:
            return H.Ball(r), [c.name]
    if mine:
        return None, [c.name for c in mine]
    lo = -math.inf if v.lb is None else torch.as_tensor(v.lb)
    hi = math.inf if v.ub is None else torch.as_tensor(v.ub)
    return (H.Box(lo, hi) if v.lb is not None or v.ub is not None else H.Identity()), []


class HalpernBackend(Backend):
    name = "halpern"
    description = "convex-concave saddle points: Halpern (restarted), EAG, extragradient, variance-reduced Halpern"
    # constraints are handled by projection (a ball's norm is fine there), so smoothness is asked of L alone
    supports = frozenset({"minmax", "bounds", "equality", "inequality", "opaque", "nonsmooth"})
    structure = frozenset({"minmax"})
    cost = 1.0
    certificates = ("operator_residual", "duality_gap")
    options = {
        "method": Option(str, "auto", "method (auto: vr_halpern for finite sums, else halpern)",
                         ("auto", "halpern", "eag", "eg", "vr_halpern")),
        "max_iter": Option(int, 100_000, "iterations"),
        "tol": Option(float, 1e-6, "operator-residual tolerance"),
        "time_limit": Option(float, None, "wall-clock limit in seconds"),
        "lipschitz": Option(float, None, "Lipschitz constant of F (estimated when omitted)"),
        "batch": Option(int, None, "mini-batch size of the variance-reduced method"),
        "gap_tol": Option(float, None, "also stop once the certified duality gap is below this"),
    }

    def reject_reason(self, problem, tags):
        why = super().reject_reason(problem, tags)
        if why:
            return why
        spec = problem.extensions["minmax"]
        rough = sorted({n.name for n in spec["L"].nodes() if isinstance(n, Op) and not SPECS[n.name].smooth})
        if rough:
            return f"the saddle function must be smooth (it uses {', '.join(rough)})"
        for v in spec["min_vars"] + spec["max_vars"]:
            s, names = _set_of(v, problem.constraints)
            if s is None:
                return (f"the constraints {names} on {v.name!r} are not a box, simplex (sum == r, lb = 0) or "
                        "ball (norm <= r)")
        return None

    def compile(self, problem, *, device="cpu", dtype=None):
        device, dtype = resolve_device(device, dtype)
        return {"device": device, "dtype": dtype, "low": TorchLowering(device, dtype)}

    def solve(self, compiled, problem, options, callback):
        spec = problem.extensions["minmax"]
        mins, maxs = list(spec["min_vars"]), list(spec["max_vars"])
        L_expr = spec["L"]
        low, device, dtype = compiled["low"], compiled["device"], compiled["dtype"]
        sx = [v.size for v in mins]
        sy = [v.size for v in maxs]

        def env(x, y):
            e = {}
            for vs, z, sizes in ((mins, x, sx), (maxs, y, sy)):
                for v, part in zip(vs, torch.split(z.reshape(-1), sizes)):
                    e[v] = part.reshape(v.shape)
            return e

        def L(x, y):
            return low.evaluate(L_expr, env(x, y)).reshape(())

        def start(vs):
            parts = [torch.as_tensor(np.zeros(v.shape) if v.value is None else v.value, dtype=dtype, device=device).reshape(-1)
                     for v in vs]
            return torch.cat(parts) if parts else torch.zeros(0, dtype=dtype, device=device)

        sets_x = [_set_of(v, problem.constraints)[0] for v in mins]
        sets_y = [_set_of(v, problem.constraints)[0] for v in maxs]
        PX = H.Product(sets_x, sx, [v.shape for v in mins])
        PY = H.Product(sets_y, sy, [v.shape for v in maxs])
        x0, y0 = PX(start(mins)), PY(start(maxs))
        gap_fn = None
        bounded = all(_bounded(st) for st in sets_x + sets_y)
        if bounded and is_affine(L_expr, mins) and is_affine(L_expr, maxs):
            gap_fn = _affine_gap(L, PX, PY, x0, y0)
        kw = {}
        fs = L_expr if isinstance(L_expr, Op) and L_expr.name == "finite_sum" else None
        method = options["method"]
        if method == "auto":
            method = "vr_halpern" if fs is not None else "halpern"
        if method == "vr_halpern":
            order = list(fs.args) if fs is not None else []
            if fs is None or len(order) != len(mins + maxs) or any(a is not v for a, v in zip(order, mins + maxs)):
                raise ValueError("method 'vr_halpern' needs L = od.mean(loss, over=data, args=(x, y)) with the "
                                 "min player's variables then the max player's as args")
            data, func = fs.attrs["data"], fs.attrs["func"]

            def component(i, x, y):
                row = tuple(d[i:i + 1] for d in data) if isinstance(data, tuple) else data[i:i + 1]
                ex = env(x, y)
                return func(row, *[ex[v] for v in mins + maxs])
            kw = dict(components=component, n=fs.attrs["n"], batch=options["batch"] or fs.attrs.get("batch"))
        out = H.solve_saddle(L, x0, y0, method=method, project_x=PX, project_y=PY, lipschitz=options["lipschitz"],
                             gap_fn=gap_fn, gap_tol=options["gap_tol"], max_iter=options["max_iter"],
                             tol=options["tol"], time_limit=options["time_limit"], callback=_cb(callback, env),
                             device=device, dtype=dtype, **kw)
        sol = RawSolution(out.status, objective=out.objective, iterations=out.iterations, message=out.message,
                          certificates=dict(out.certificates), counts=dict(out.counts), history=out.history)
        if out.extras.get("tol_residual") is not None:  # tol is relative: tol × the Lipschitz estimate of F
            sol.certificates["residual_tolerance"] = float(out.extras["tol_residual"])
        if out.x is not None and out.status.has_point:
            x, y = out.x
            sol.values = {v: t.detach().cpu().double().numpy() for v, t in env(x, y).items()}
            if gap_fn is not None and "duality_gap" not in sol.certificates:
                sol.certificates["duality_gap"] = float(gap_fn(x, y))
        return sol


def _bounded(s) -> bool:
    """Whether a projection's set is bounded (the duality gap is finite only over bounded sets)."""
    if isinstance(s, (H.Simplex, H.Ball)):
        return True
    if isinstance(s, H.Box):
        return bool(torch.isfinite(torch.as_tensor(s.lo)).all() and torch.isfinite(torch.as_tensor(s.hi)).all())
    return False


def _affine_gap(L, PX, PY, x0, y0):
    """gap(x̄, ȳ) = max_y L(x̄, y) − min_x L(x, ȳ) for L affine in each player (exact via support functions)."""
    def grad_y(x):
        y = torch.zeros_like(y0, requires_grad=True)
        val = L(x, y)
        (g,) = torch.autograd.grad(val, y, allow_unused=True)
        return val.detach(), (torch.zeros_like(y0) if g is None else g)

    def grad_x(y):
        x = torch.zeros_like(x0, requires_grad=True)
        val = L(x, y)
        (g,) = torch.autograd.grad(val, x, allow_unused=True)
        return val.detach(), (torch.zeros_like(x0) if g is None else g)

    def gap(x, y):
        with torch.enable_grad():
            vy, gy = grad_y(x.detach())
            vx, gx = grad_x(y.detach())
        return float(vy + PY.support(gy) - (vx - PX.support(-gx)))
    return gap


def _cb(user, env):
    if user is None:
        return None

    def cb(info):
        return user({k: v for k, v in info.items() if k != "x"})
    return cb


BACKENDS = [HalpernBackend()]
