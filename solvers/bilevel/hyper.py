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
from ._core import NonFinite, Setup, axpy, check_finite, dot, leaf, norm


class NotStronglyConvex(NonFinite):
    """The follower's Hessian in y is singular or indefinite at the point reached."""

    def __init__(self, where: str):
        Exception.__init__(self, f"the follower g(x, .) is not strongly convex in y ({where}); the hyper-objective "
                                 f"method needs a unique follower answer - use method='penalty'")
        self.where = "follower Hessian"


def _flat(parts) -> np.ndarray:
    return np.concatenate([p.detach().cpu().double().reshape(-1).numpy() for p in parts])


def _unflat(vec, like):
    out, k = [], 0
    for p in like:
        n = p.numel()
        out.append(torch.as_tensor(vec[k:k + n], dtype=p.dtype, device=p.device).reshape(p.shape))
        k += n
    return tuple(out)


def _box(bounds, like) -> tuple[np.ndarray, np.ndarray]:
    """Flat (lo, hi) arrays from per-part bounds (None = unbounded), broadcast to each part's shape."""
    lo, hi = [], []
    for i, p in enumerate(like):
        for side, out, fill in ((0, lo, -np.inf), (1, hi, np.inf)):
            b = None if bounds is None else bounds[side][i]
            out.append(np.broadcast_to(fill if b is None else np.asarray(b, dtype=float), tuple(p.shape)).reshape(-1))
    return np.concatenate(lo), np.concatenate(hi)


class LinearSolver:
    """Solves grad2_yy g(x, y) d = r by CG, preconditioned with a Cholesky factor of the follower Hessian at
    a nearby point (its pseudo-inverse from an eigendecomposition: a direction g is flat in is left out; dense,
    from n_y Hessian-vector products; followers up to ``dense_max`` variables). L-BFGS
    moves x little per step, so one factor serves many solves; it is rebuilt when PCG needs more than
    ``refresh_after`` iterations. ``max_iter`` caps the iterations (CG on the plain Hessian beyond dense_max)."""

    def __init__(self, n: int, *, dense_max: int = 2000, refresh_after=None, max_iter=None,
                 eps: float = 2.2e-16):
        self.n, self.dense, self.eps = n, n <= dense_max, eps   # eps: machine epsilon of the tensors' dtype
        # a factor costs n products: worth it once PCG on the stale one would take more than ~n/10
        self.refresh_after = refresh_after or max(15, n // 10)
        self.g_ref = None   # the follower gradient's size at the first start: the inexact-Newton reference
        self.max_iter = max_iter or min(n + 10, 1000)
        self.chol, self.null = None, None
        self.factorizations = 0

    def factor(self, gy, yl, counts):
        n, parts, k = self.n, [], 0
        E = torch.eye(n, dtype=yl[0].dtype, device=yl[0].device)
        for p in yl:
            parts.append(E[:, k:k + p.numel()].reshape(n, *p.shape))
            k += p.numel()
        try:
            cols = torch.autograd.grad(gy, yl, grad_outputs=tuple(parts), retain_graph=True, allow_unused=True,
                                       is_grads_batched=True)
            cols = [torch.zeros(n, *p.shape, dtype=p.dtype, device=p.device) if c is None else c
                    for c, p in zip(cols, yl)]
        except RuntimeError:   # an op without a batched backward: one product at a time
            cols = [torch.stack(c) for c in zip(*[
                tuple(torch.zeros_like(p) if h is None else h for h, p in zip(
                    torch.autograd.grad(gy, yl, grad_outputs=tuple(q[i] for q in parts), retain_graph=True,
                                        allow_unused=True), yl)) for i in range(n)])]
        counts["hvp"] = counts.get("hvp", 0) + n
        H = torch.cat([c.reshape(n, -1) for c in cols], dim=1).detach()
        H = 0.5 * (H + H.T)
        lam, V = torch.linalg.eigh(H)
        top = float(lam.abs().max()) if n else 0.0
        if float(lam.min()) < -max(1e-8, 1e3 * self.eps) * top:
            raise NotStronglyConvex(f"Hessian eigenvalue {float(lam.min()):.3g}, largest {top:.3g}")
        # pseudo-inverse: a direction g is flat in (e.g. a softmax bias shift) is left out of every step
        keep = lam > max(1e-12, 1e3 * self.eps) * top
        inv = torch.where(keep, 1.0 / lam.clamp(min=1e-300), torch.zeros_like(lam))
        self.chol, self.null = (V, inv), V[:, ~keep]
        self.factorizations += 1

    def solve(self, hvp, rhs, rtol, gy=None, yl=None, counts=None):
        """(d, iterations) with |H d - rhs| <= rtol |rhs|; NotStronglyConvex on non-positive curvature.
        A stale factor gets ``refresh_after`` iterations; then a fresh one continues from where PCG stopped."""
        rtol = max(rtol, 10 * self.eps)
        refresh = self.dense and gy is not None
        if refresh and self.chol is None:
            self.factor(gy, yl, counts)
        d, it, ok = self._pcg(hvp, rhs, rtol, None, self.refresh_after if refresh else self.max_iter)
        if not ok and refresh:
            self.factor(gy, yl, counts)
            d, it2, ok = self._pcg(hvp, rhs, rtol, d, self.max_iter)
            it += it2
            if not ok and self._range_norm(axpy(-1.0, hvp(d), rhs)) > 0.5 * self._range_norm(rhs):
                raise NotStronglyConvex("CG made no progress on the follower's Hessian")
            # else: an inexact solve (ill-conditioned for the dtype); the stationarity test reports the outcome
        return d, it

    def _precond(self, r):
        if self.chol is None:
            return r
        V, inv = self.chol
        z = V @ (inv * (V.T @ torch.cat([q.reshape(-1) for q in r])))
        out, k = [], 0
        for q in r:
            out.append(z[k:k + q.numel()].reshape(q.shape))
            k += q.numel()
        return tuple(out)

    def _range_norm(self, r):
        """|r| without its part along the factor's null directions (round-off there cannot be solved for)."""
        if self.null is None or self.null.shape[1] == 0:
            return norm(r)
        flat = torch.cat([q.reshape(-1) for q in r])
        return float((flat - self.null @ (self.null.T @ flat)).norm())

    def null_fraction(self, r) -> float:
        """The share of r along the factor's null directions."""
        if self.null is None or self.null.shape[1] == 0:
            return 0.0
        flat = torch.cat([q.reshape(-1) for q in r])
        return float((self.null.T @ flat).norm()) / max(float(flat.norm()), 1e-300)

    def _pcg(self, hvp, rhs, rtol, d0, max_iter):
        d = tuple(torch.zeros_like(q) for q in rhs) if d0 is None else d0
        bn = self._range_norm(rhs)
        if bn == 0.0:
            return d, 0, True
        r = rhs if d0 is None else axpy(-1.0, hvp(d0), rhs)
        if self._range_norm(r) <= rtol * bn:
            return d, 0, True
        z = self._precond(r)
        p, rz, hnorm = z, float(dot(r, z)), 0.0
        for i in range(max_iter):
            hp = hvp(p)
            php, pp = float(dot(p, hp)), float(dot(p, p))
            hnorm = max(hnorm, abs(php) / max(pp, 1e-300))
            if php <= max(1e-12, 1e3 * self.eps) * hnorm * pp:
                if self.dense or i > 0:   # round-off at the accuracy floor (the factor's eigenvalues decide)
                    return d, i, False
                raise NotStronglyConvex(f"curvature {php / max(pp, 1e-300):.3g} met by CG")
            a = rz / php
            d, r = axpy(a, p, d), axpy(-a, hp, r)
            if self._range_norm(r) <= rtol * bn:
                return d, i + 1, True
            z = self._precond(r)
            rz_new = float(dot(r, z))
            p, rz = axpy(rz_new / rz, p, z), rz_new
        return d, max_iter, False


def _hvp_fn(gy, yl, counts):
    def hvp(v):
        counts["hvp"] = counts.get("hvp", 0) + 1
        out = torch.autograd.grad(gy, yl, grad_outputs=v, retain_graph=True, allow_unused=True)
        out = tuple(torch.zeros_like(p) if h is None else h.detach() for h, p in zip(out, yl))
        check_finite(out, "Hessian-vector product of g")
        return out
    return hvp


def _grad_y(o, x, yl, b):
    gv = o("g", x, yl, b)
    gy = torch.autograd.grad(gv, yl, create_graph=True, allow_unused=True)
    if any(q is None for q in gy):   # a follower part g does not read: zero gradient, zero curvature
        gy = tuple(torch.zeros_like(p) if q is None else q for q, p in zip(gy, yl))
    o.counts["grad_g"] = o.counts.get("grad_g", 0) + 1
    return gv, gy


# an exact full Newton step of relative size s leaves an error ~ s^2 (quadratic convergence): stop there
QUADRATIC_STOP = 1e-4


def newton_follower(o, x, y, lin: LinearSolver, *, ytol: float = 1e-11, max_newton: int = 50):
    """argmin_y g(x, y) by Newton-(P)CG with Armijo backtracking from y. Returns (y, info) with
    ``newton_steps``, ``step`` (max-norm of the last Newton step relative to 1 + |y|), ``residual``."""
    from ._core import _NOBATCH
    info = {"newton_steps": 0, "step": math.inf, "residual": math.inf, "converged": False}
    for it in range(max_newton):
        yl = leaf(y)
        with torch.enable_grad():
            gv, gy = _grad_y(o, x, yl, _NOBATCH)
            info["residual"] = gnorm = norm(gy)
            if gnorm == 0.0:
                info["step"], info["converged"] = 0.0, True
                break
            rhs = tuple(-q.detach() for q in gy)
            # exact solves with a factor at hand; else inexact Newton (forcing ~ |grad|: quadratic), exact at the end
            lin.g_ref = lin.g_ref or gnorm
            exact = lin.dense or info["step"] <= 1e-6
            forcing = 1e-12 if exact else min(0.1, gnorm / lin.g_ref)
            d, cg = lin.solve(_hvp_fn(gy, yl, o.counts), rhs, forcing,
                              gy, yl, o.counts)
        o.counts["newton_cg"] = o.counts.get("newton_cg", 0) + cg
        slope = float(dot(tuple(q.detach() for q in gy), d))
        g0, t = float(gv.detach()), 1.0
        with torch.no_grad():
            for _ in range(60):
                yn = axpy(t, d, y)
                try:
                    gn = float(o("g", x, yn, _NOBATCH))
                except NonFinite:
                    gn = math.inf
                if gn <= g0 + 1e-4 * t * slope or (gn <= g0 and t < 1e-8):
                    break
                t *= 0.5
            else:
                raise NotStronglyConvex("no descent along the Newton direction")
        y = tuple(q.detach() for q in yn)
        info["newton_steps"] = it + 1
        ymax = max(float(q.abs().max()) for q in y)
        info["step"] = t * max(float(q.abs().max()) for q in d) / (1.0 + ymax)
        # an exact full Newton step this small leaves an error of its square (quadratic convergence)
        if info["step"] <= ytol or (exact and t == 1.0 and info["step"] <= QUADRATIC_STOP):
            info["converged"] = True
            break
    o.counts["newton"] = o.counts.get("newton", 0) + info["newton_steps"]
    return y, info


def hypergradient_at(o, x, y, lin: LinearSolver, v0=None):
    """(F, grad F, v, info) at a follower solution y: v solves grad2_yy g v = grad_y f (warm start v0)."""
    from ._core import _NOBATCH
    xl, yl = leaf(x), leaf(y)
    with torch.enable_grad():
        fv = o("f", xl, yl, _NOBATCH)
        gr = torch.autograd.grad(fv, xl + yl, allow_unused=True) if fv.requires_grad else (None,) * (len(xl) + len(yl))
        gr = tuple(torch.zeros_like(p) if q is None else q.detach() for q, p in zip(gr, xl + yl))
        fx, fy = gr[:len(xl)], gr[len(xl):]
        o.counts["grad_f"] = o.counts.get("grad_f", 0) + 1
        gv, gy = _grad_y(o, xl, yl, _NOBATCH)
        hvp = _hvp_fn(gy, yl, o.counts)
        if v0 is not None:   # solve for the correction from the previous adjoint
            r = axpy(-1.0, hvp(v0), fy)
            dv, it = lin.solve(hvp, r, 1e-12 * max(norm(fy), 1e-300) / max(norm(r), 1e-300), gy, yl, o.counts)
            v = axpy(1.0, dv, v0)
        else:
            v, it = lin.solve(hvp, fy, 1e-12, gy, yl, o.counts)
        if lin.null_fraction(fy) > max(1e-6, lin.eps ** 0.5):
            raise NotStronglyConvex("its Hessian is singular along a direction the leader's objective reads: "
                                    "the follower's answer is not unique where it matters")
        cross = torch.autograd.grad(gy, xl, grad_outputs=v, allow_unused=True)
    cross = tuple(torch.zeros_like(p) if c is None else c.detach() for c, p in zip(cross, xl))
    o.counts["linear_iterations"] = o.counts.get("linear_iterations", 0) + it
    hg = axpy(-1.0, cross, fx)
    check_finite(hg, "hypergradient")
    return float(fv.detach()), hg, detach_all(v), {"linear_iterations": it}


def detach_all(parts):
    return tuple(p.detach() for p in parts)


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
    h_all, m_in = None, 0
    if lower_constraints is not None or lower_equalities is not None:
        h_in, h_eq = lower_constraints, lower_equalities

        def h_all(x, y, *b):
            return torch.cat(([h_in(x, y, *b).reshape(-1)] if h_in is not None else []) +
                             ([h_eq(x, y, *b).reshape(-1)] if h_eq is not None else []))
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
            from .gap import certify

            def h_ineq(xx, yy, *bt):   # equalities as two-sided inequalities for the gap's inner solve
                v = h_all(xx, yy, *bt)
                return torch.cat([v[:m_in], v[m_in:], -v[m_in:]])
            c = certify(S.f, S.g, S.xs, S.ys, x, y, lower_constraints=h_ineq)
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
