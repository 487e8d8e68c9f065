"""A small smooth follower with constraints, solved accurately and differentiated through its KKT system.

    y*(x) = argmin_y g(x, y)  s.t.  h(x, y) <= 0,  e(x, y) = 0        (n_y small: dense linear algebra)

Follower: scipy's SLSQP from the previous y* (gradients and Jacobians by autograd). Active set A: the
equalities and the inequalities with h_i >= -act_tol; multipliers by least squares on
grad_y g + J_A^T lam = 0 (an inequality whose multiplier comes out negative leaves A). With L = g + lam^T c_A,
differentiating grad_y L = 0, c_A = 0 in x (strict complementarity, LICQ) gives the adjoint system

    [ H   J_A^T ] [v]   [grad_y f]        H = grad2_yy L,   J_A = grad_y c_A,
    [ J_A   0   ] [w] = [   0    ],

    grad F(x) = grad_x f - grad_x ( v^T grad_y L(x, y, lam) + w^T c_A(x, y) )      (y, lam, v, w held fixed).

The follower's answer is unique when H is positive definite on the null space of J_A (checked on the
reduced Hessian; else `NotStronglyConvex`). F is smooth while the active set does not change.
"""
from __future__ import annotations

import numpy as np
import torch

from ._core import _NOBATCH, NonFinite
from .newton_follower import NotStronglyConvex, _flat, _unflat


class KKTFollower:
    """y*(x) by SLSQP and the KKT adjoint; ``evaluate(x, y_prev) -> (F, grad F, y, info)``."""

    def __init__(self, o, like_y, m_in: int, *, ftol: float = 1e-14, act_tol: float = 1e-8):
        self.o, self.like_y, self.m_in = o, like_y, m_in
        self.ftol, self.act_tol = ftol, act_tol
        self.lam = None

    def _c(self, x, y):
        return self.o("h", x, y, _NOBATCH)

    def solve_follower(self, x, y_prev):
        from scipy.optimize import minimize
        o, like, m_in = self.o, self.like_y, self.m_in
        xd = tuple(p.detach() for p in x)

        cache = {}

        def point(yv):
            """g, grad_y g, c, grad_y c at yv from one forward pass (SLSQP asks for all four at each point)."""
            key = yv.tobytes()
            if key not in cache:
                cache.clear()
                yl = tuple(p.requires_grad_(True) for p in _unflat(yv, like))
                with torch.enable_grad():
                    val = o("g", xd, yl, _NOBATCH)
                    c = self._c(xd, yl)
                    D = _jacobian(torch.cat([val.reshape(1), c.reshape(-1)]), yl)
                cache[key] = (float(val.detach()), D[0], c.detach().cpu().double().numpy(), D[1:])
            return cache[key]

        def fun(yv):
            v, g, _, _ = point(yv)
            return v, g

        def cons(yv):
            return point(yv)[2]

        def jac(yv):
            return point(yv)[3]
        m = len(cons(_flat(y_prev)))
        constraints = []
        if m_in:
            constraints.append({"type": "ineq", "fun": lambda yv: -cons(yv)[:m_in], "jac": lambda yv: -jac(yv)[:m_in]})
        if m > m_in:
            constraints.append({"type": "eq", "fun": lambda yv: cons(yv)[m_in:], "jac": lambda yv: jac(yv)[m_in:]})
        res = minimize(fun, _flat(y_prev), jac=True, method="SLSQP", constraints=constraints,
                       options={"ftol": self.ftol, "maxiter": 500})
        yv = res.x
        c, J = cons(yv), jac(yv)
        _, gy = fun(yv)
        scale = 1.0 + np.abs(c).max() if c.size else 1.0
        active = [i for i in range(m) if i >= m_in or c[i] >= -self.act_tol * scale]
        while True:   # least-squares multipliers; an inequality pushing the wrong way leaves the active set
            JA = J[active]
            lam = np.linalg.lstsq(JA.T, -gy, rcond=None)[0] if active else np.zeros(0)
            bad = [k for k, i in enumerate(active) if i < m_in and lam[k] < -1e-10 * (1 + np.abs(gy).max())]
            if not bad:
                break
            active.pop(bad[0])
        kkt = np.abs(gy + (JA.T @ lam if active else 0.0)).max()
        viol = max(float(np.maximum(c[:m_in], 0).max()) if m_in else 0.0,
                   float(np.abs(c[m_in:]).max()) if m > m_in else 0.0)
        return _unflat(yv, like), active, lam, {"kkt_residual": float(kkt), "lower_infeasibility": viol,
                                                "slsqp": str(res.message), "active": len(active)}

    def evaluate(self, x, y_prev):
        o = self.o
        y, active, lam, info = self.solve_follower(x, y_prev)
        if not np.isfinite(info["kkt_residual"]):
            raise NonFinite("the follower's KKT residual")
        xl = tuple(p.detach().requires_grad_(True) for p in x)
        yl = tuple(p.detach().requires_grad_(True) for p in y)
        lam_t = torch.as_tensor(lam, dtype=yl[0].dtype, device=yl[0].device)
        idx = torch.as_tensor(active, dtype=torch.long, device=yl[0].device)
        with torch.enable_grad():
            fv = o("f", xl, yl, _NOBATCH)
            fg = (torch.autograd.grad(fv, xl + yl, allow_unused=True) if fv.requires_grad
                  else (None,) * (len(xl) + len(yl)))
            fg = tuple(torch.zeros_like(p) if q is None else q for q, p in zip(fg, xl + yl))
            fx, fy = fg[:len(xl)], fg[len(xl):]
            cA = self._c(xl, yl)[idx] if active else torch.zeros(0, dtype=yl[0].dtype)
            L = o("g", xl, yl, _NOBATCH) + (lam_t * cA).sum()
            gyL = torch.autograd.grad(L, yl, create_graph=True, allow_unused=True)
            gyL = tuple(torch.zeros_like(p) if q is None else q for q, p in zip(gyL, yl))
            flat_gyL = torch.cat([q.reshape(-1) for q in gyL])
            n = flat_gyL.numel()
            H = torch.stack([torch.cat([(torch.zeros_like(p) if h is None else h).reshape(-1) for h, p in zip(
                torch.autograd.grad(flat_gyL[i], yl, retain_graph=True, allow_unused=True), yl)])
                for i in range(n)]).detach().cpu().double().numpy()
            if active:
                JA = torch.stack([torch.cat([(torch.zeros_like(p) if h is None else h).reshape(-1) for h, p in zip(
                    torch.autograd.grad(cA[k], yl, retain_graph=True, allow_unused=True), yl)])
                    for k in range(len(active))]).detach().cpu().double().numpy()
            else:
                JA = np.zeros((0, n))
            H = 0.5 * (H + H.T)
            # unique follower answer: H positive definite on the null space of J_A
            Z = _null_space(JA, n)
            if Z.shape[1]:
                red = np.linalg.eigvalsh(Z.T @ H @ Z)
                if red.min() <= 1e-10 * max(1.0, np.abs(red).max()):
                    raise NotStronglyConvex(f"reduced Hessian eigenvalue {red.min():.3g} on the active constraints")
            mA = len(active)
            K = np.block([[H, JA.T], [JA, np.zeros((mA, mA))]])
            rhs = np.concatenate([_flat(fy), np.zeros(mA)])
            sol = np.linalg.lstsq(K, rhs, rcond=None)[0]
            v = torch.as_tensor(sol[:n], dtype=yl[0].dtype, device=yl[0].device)
            w = torch.as_tensor(sol[n:], dtype=yl[0].dtype, device=yl[0].device)
            phi = (flat_gyL * v).sum() + ((w * cA).sum() if active else 0.0)
            cross = torch.autograd.grad(phi, xl, allow_unused=True) if phi.requires_grad else (None,) * len(xl)
        cross = tuple(torch.zeros_like(p) if c is None else c.detach() for c, p in zip(cross, xl))
        hg = tuple(a.detach() - c for a, c in zip(fx, cross))
        self.lam = (active, lam)
        o.counts["kkt_solves"] = o.counts.get("kkt_solves", 0) + 1
        return float(fv.detach()), hg, y, info

    def multipliers(self, m: int) -> np.ndarray:
        """All follower multipliers (zeros off the active set), inequalities first."""
        out = np.zeros(m)
        if self.lam is not None:
            for k, i in enumerate(self.lam[0]):
                out[i] = self.lam[1][k]
        return out


def _jacobian(out: torch.Tensor, yl) -> np.ndarray:
    """d out / d y as a dense (len(out), n_y) array: one batched backward pass (vmap), row by row where the
    graph has an op vmap does not take; zeros where out does not depend on y."""
    n = sum(p.numel() for p in yl)
    if not out.requires_grad:
        return np.zeros((out.numel(), n))

    def dense(parts, lead):
        return torch.cat([(torch.zeros(lead + tuple(p.shape), dtype=p.dtype, device=p.device) if q is None else q)
                          .reshape(*lead, -1) for q, p in zip(parts, yl)], dim=-1)
    try:
        eye = torch.eye(out.numel(), dtype=out.dtype, device=out.device)
        J = dense(torch.autograd.grad(out, yl, grad_outputs=eye, is_grads_batched=True, allow_unused=True,
                                      retain_graph=True), (out.numel(),))
    except (RuntimeError, NotImplementedError):
        J = torch.stack([dense(torch.autograd.grad(out[i], yl, retain_graph=True, allow_unused=True), ())
                         for i in range(out.numel())])
    return J.detach().cpu().double().numpy()


def _null_space(A: np.ndarray, n: int) -> np.ndarray:
    if A.shape[0] == 0:
        return np.eye(n)
    _, s, Vt = np.linalg.svd(A)
    rank = int((s > 1e-10 * max(1.0, s.max() if s.size else 1.0)).sum())
    return Vt[rank:].T
