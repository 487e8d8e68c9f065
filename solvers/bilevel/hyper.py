"""Exact bilevel solve for a smooth follower that is strongly convex in its own variables: a quasi-Newton
method on the hyper-objective.

    F(x) = f(x, y*(x)),      y*(x) = argmin_y g(x, y)          (unique: grad2_yy g positive definite)

    grad F(x) = grad_x f(x, y*) - grad2_xy g(x, y*) v,      grad2_yy g(x, y*) v = grad_y f(x, y*)

(implicit function theorem; Pedregosa 2016, HOAG; Blondel et al. 2022). Each evaluation of F:

* follower: Newton-CG on g(x, .) from the previous y* (warm start), Hessian-vector products by autograd,
  Armijo backtracking on g, stopped when the Newton step is below ``ytol`` relative to |y| (the Newton step
  does not change when g is scaled, so neither does the test). CG meeting non-positive curvature means the
  follower is not strongly convex there: `NotStronglyConvex` (``auto`` then falls back to the penalty);
* adjoint: CG on grad2_yy g v = grad_y f (`implicit._hypergrad`), warm-started from the previous v.

Leader: scipy's L-BFGS-B over the leader's box (``bounds_x``), on F / s with s = |F(x0)| (or the first
nonzero of |grad F(x0)|, 1). L-BFGS-B's iterates do not change when F is scaled (first step 1/|d|, the
quasi-Newton scaling y's/y'y); only its tolerances would, and on F / s they are relative to the start.
With a general projection ``proj_x`` and no box, projected gradient with Barzilai-Borwein trial steps and
Armijo backtracking along the projection arc replaces L-BFGS-B.

Converged (LOCALLY_OPTIMAL: F is nonconvex in general) when the projected gradient of F / s is at most
``tol`` in the max-norm and the follower's last Newton step met ``ytol`` — or at most 10 tol when L-BFGS-B
can no longer decrease F in floating point (the message says which).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..common import Status
from ._core import NonFinite, Setup
from .newton_follower import (LinearSolver, NotStronglyConvex, _flat, _unflat, hypergradient_at,
                              newton_follower)


def _box(bounds, like) -> tuple[np.ndarray, np.ndarray]:
    """Flat (lo, hi) arrays from per-part bounds (None = unbounded), broadcast to each part's shape."""
    lo, hi = [], []
    for i, p in enumerate(like):
        for side, out, fill in ((0, lo, -np.inf), (1, hi, np.inf)):
            b = None if bounds is None else bounds[side][i]
            out.append(np.broadcast_to(fill if b is None else np.asarray(b, dtype=float), tuple(p.shape)).reshape(-1))
    return np.concatenate(lo), np.concatenate(hi)


KKT_MAX_FOLLOWER = 500   # a constrained follower is solved with dense KKT algebra: small ones only


def hyper(f, g, x0, y0, *, bounds_x=None, proj_x=None, proj_y=None, lower_constraints=None, lower_equalities=None,
          ytol: float = 1e-11, max_iter: int = 500, tol: float = 1e-6, time_limit=None, callback=None, device=None,
          dtype=None, certify_gap: bool = True, max_linear_iter=None, batches=None, eval_batch=None):
    """L-BFGS-B on the hyper-objective F(x) = f(x, y*(x)) (see the module docstring).

    ``bounds_x = (lo, hi)``: per leader part, a number/array or None (the box L-BFGS-B works in); ``proj_x``
    a general projection (projected gradient then). The follower must be unconstrained (``proj_y`` None) and
    strongly convex in y; oracles deterministic (no ``batches``). Returns ``x = (x, y)``; certificates
    ``stationarity`` (max-norm projected gradient of F), ``relative_stationarity`` (of F / s, the test),
    ``residual_y`` (|grad_y g| at y), ``lower_level_gap``. With ``lower_constraints(x, y) <= 0`` and/or
    ``lower_equalities(x, y) == 0`` the follower (up to KKT_MAX_FOLLOWER variables) is solved by SLSQP and
    differentiated through its KKT system (`kkt_follower`); ``duals["lower"]`` holds its multipliers.
    """
    if batches is not None:
        raise ValueError("method='hyper' needs deterministic oracles; with batches use method='penalty'")
    if proj_y is not None:
        raise ValueError("method='hyper' needs an unconstrained follower (proj_y given); use method='penalty'")
    from .gap import stacked
    h_in, m_in = lower_constraints, 0
    h_all = stacked(lower_constraints, lower_equalities)
    S = Setup(f, g, x0, y0, proj_x=proj_x if bounds_x is None else None, max_iter=max_iter, tol=tol,
              time_limit=time_limit, callback=callback, device=device, dtype=dtype, lower_constraints=h_all)
    o = S.orc
    kkt = None
    if h_all is not None:
        from .kkt_follower import KKTFollower
        if S.ys.numel > KKT_MAX_FOLLOWER:
            raise ValueError(f"method='hyper' with follower constraints takes followers of up to {KKT_MAX_FOLLOWER} "
                             f"variables (dense KKT algebra), this one has {S.ys.numel}: use method='lvhba'")
        with torch.no_grad():
            m_in = 0 if h_in is None else h_in(S.xs.pack(S.x0), S.ys.pack(S.y0)).reshape(-1).numel()
        kkt = KKTFollower(o, S.y0, m_in)
    like = S.x0
    lo, hi = _box(bounds_x, like)
    x_flat = np.clip(_flat(S.x0), lo, hi)
    state = {"y": S.y0, "v": None, "x": None, "F": None, "grad": None, "info": {}, "evals": 0}
    eps = torch.finfo(S.dtype).eps
    ytol = max(ytol, 10 * eps)
    lin = LinearSolver(sum(p.numel() for p in S.y0), max_iter=max_linear_iter, eps=eps)

    def evaluate(xv: np.ndarray):
        """(F, grad F) at the flat leader point xv; caches the follower point and the adjoint."""
        if state["x"] is not None and np.array_equal(xv, state["x"]):
            return state["F"], state["grad"]
        x = _unflat(xv, like)
        if kkt is not None:
            F, hg, y, info = kkt.evaluate(x, state["y"])
            info["converged"] = info["kkt_residual"] <= 1e-7 and info["lower_infeasibility"] <= 1e-8
            info["residual"] = info["kkt_residual"]
            state.update(x=xv.copy(), y=y, F=F, grad=_flat(hg), info=info)
            state["evals"] += 1
            return state["F"], state["grad"]
        y, info = newton_follower(o, x, state["y"], lin, ytol=ytol)
        F, hg, v, hinfo = hypergradient_at(o, x, y, lin, v0=state["v"])
        state.update(x=xv.copy(), y=y, v=v, F=F, grad=_flat(hg), info={**info, **hinfo})
        state["evals"] += 1
        return state["F"], state["grad"]

    general = bounds_x is None and proj_x is not None

    def pgrad(xv, gv):
        """Max-norm of the projected gradient step P(x - grad) - x (the leader's box or projection)."""
        if not xv.size:
            return 0.0
        xn = _flat(S.px(_unflat(xv - gv, like))) if general else np.clip(xv - gv, lo, hi)
        return float(np.abs(xn - xv).max())

    status, msg, k, scale = None, "", 0, 1.0
    try:
        F0, G0 = evaluate(x_flat)
        gmax = float(np.abs(G0).max()) if G0.size else 0.0
        scale = abs(F0) if F0 != 0 else (gmax if gmax > 0 else 1.0)
        it = {"k": 0}

        def report(xv):
            F, G = evaluate(xv)
            pg = pgrad(xv, G / scale)
            stop = S.budget.report(it["k"], x=S.xs.pack(_unflat(xv, like)), y=S.ys.pack(state["y"]), objective=F,
                                   stationarity=pg * scale, relative_stationarity=pg,
                                   residual_y=state["info"].get("residual", math.nan))
            it["k"] += 1
            return stop or it["k"] >= max_iter

        if pgrad(x_flat, G0 / scale) <= tol:
            xf = x_flat
        elif general:
            xf = _projected_gradient(evaluate, x_flat, scale, S, like, report, tol)
        else:
            from scipy.optimize import minimize

            def fun(xv):
                F, G = evaluate(xv)
                return F / scale, G / scale

            def cb(intermediate_result):
                if report(intermediate_result.x):
                    raise StopIteration
            res = minimize(fun, x_flat, jac=True, method="L-BFGS-B",
                           bounds=None if not (np.isfinite(lo).any() or np.isfinite(hi).any()) else list(zip(lo, hi)),
                           callback=cb, options={"maxiter": max_iter + 1, "maxfun": 20 * max_iter + 100,
                                                 "gtol": tol * 1e-2, "ftol": 1e-15, "maxcor": 20})
            xf = np.clip(res.x, lo, hi)
            msg = str(res.message)
        k = max(it["k"] - 1, 0)
        F, G = evaluate(xf)
        pg = pgrad(xf, G / scale)
        ok_y = bool(state["info"].get("converged"))
        if S.budget.status is not None:
            status = S.budget.status
        elif pg <= tol and ok_y:
            status, msg = Status.LOCALLY_OPTIMAL, (f"hyper-objective stationary: projected hypergradient "
                                                   f"{pg:.2g} (relative to |F(x0)|) <= tol={tol:g}")
        elif pg <= 10 * tol and ok_y and "REDUCTION OF F" in msg:
            # L-BFGS-B can no longer decrease F in floating point: stationary as far as F resolves it
            status, msg = Status.LOCALLY_OPTIMAL, (f"hyper-objective stationary to the precision of F: projected "
                                                   f"hypergradient {pg:.2g} (relative to |F(x0)|, tol={tol:g}) "
                                                   f"and no further decrease of F in floating point")
        elif it["k"] >= max_iter:
            status = Status.ITERATION_LIMIT
        else:
            status, msg = Status.SLOW_PROGRESS, (f"stopped with projected hypergradient {pg:.2g} > tol={tol:g} "
                                                 f"(relative to |F(x0)|): {msg}")
        x, y = _unflat(xf, like), state["y"]
    except NotStronglyConvex:
        raise
    except NonFinite as e:
        status, msg = Status.NUMERICAL_ERROR, f"{e} at leader iteration {k}"
        x, y, pg = _unflat(state["x"], like) if state["x"] is not None else S.x0, state["y"], math.nan
    except KeyboardInterrupt:
        S.budget.interrupt()
        x, y, pg = _unflat(state["x"], like) if state["x"] is not None else S.x0, state["y"], math.nan
    certs = {"stationarity": pg * scale, "relative_stationarity": pg,
             "residual_y": state["info"].get("residual", math.nan),
             "linear_residual": state["info"].get("linear_residual", math.nan)}
    if kkt is not None:
        certs["lower_infeasibility"] = state["info"].get("lower_infeasibility", math.nan)
    out = S.conclude(o, x, y, status, msg, k, certs, {"v": None if state["v"] is None else S.ys.pack(state["v"]),
                                                       "method": "hyper", "scale": scale,
                                                       "factorizations": lin.factorizations},
                     certify_gap=certify_gap and kkt is None)
    if kkt is not None:
        m = int(h_all(S.xs.pack(x), S.ys.pack(y)).numel())
        out.duals["lower"] = torch.as_tensor(kkt.multipliers(m), dtype=S.dtype)
        if certify_gap and status != Status.NUMERICAL_ERROR:
            from .gap import certify, two_sided
            c = certify(S.f, S.g, S.xs, S.ys, x, y, lower_constraints=two_sided(h_all, m_in))
            c.pop("lower_infeasibility", None)
            out.certificates.update({k2: float(v2) for k2, v2 in c.items() if not isinstance(v2, str)})
    out.iterations = k + 1 if S.budget.history else 0
    return out


def _projected_gradient(evaluate, xv, scale, S, like, report, tol):
    """Projected gradient on F / s with BB trial steps and Armijo backtracking along the projection arc."""
    def proj(v):
        return _flat(S.px(_unflat(v, like)))
    F, G = evaluate(xv)
    step, x_prev, g_prev = 1.0 / max(float(np.abs(G / scale).max()), 1e-300), None, None
    while True:
        if x_prev is not None:
            s, yv = xv - x_prev, (G - g_prev) / scale
            sy = float(s @ yv)
            if sy > 0:
                step = float(s @ s) / sy
        while True:
            xn = proj(xv - step * G / scale)
            Fn, Gn = evaluate(xn)
            if Fn / scale <= F / scale + 1e-4 * float(G @ (xn - xv)) / scale or step < 1e-20:
                break
            step *= 0.5
        x_prev, g_prev, xv, F, G = xv, G, xn, Fn, Gn
        if report(xv) or np.abs(proj(xv - G / scale) - xv).max() <= tol * 1e-2:
            return xv
