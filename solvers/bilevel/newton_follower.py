"""The follower of the hyper-objective method: argmin_y g(x, y) by Newton-PCG and the implicit adjoint.

Both solve systems with the follower Hessian H = grad2_yy g(x, y) by conjugate gradients on Hessian-vector
products, preconditioned by the pseudo-inverse of H at a nearby point (`LinearSolver`):

* `newton_follower`: Newton steps d = -H^-1 grad_y g with Armijo backtracking on g, warm-started at the
  previous y*; exact solves when a factor is at hand, inexact (forcing ~ |grad|) otherwise;
* `hypergradient_at`: F = f(x, y*), grad F = grad_x f - grad2_xy g v with H v = grad_y f.

`NotStronglyConvex` is raised where H is indefinite, or singular along a direction the leader's objective
reads (the follower's answer is then not unique where it matters).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ._core import NonFinite, axpy, check_finite, dot, leaf, norm


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
