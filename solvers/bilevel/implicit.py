"""Implicit-differentiation baseline (AID): hypergradient by CG or a Neumann series on Hessian-vector products.

Blondel et al., "Efficient and Modular Implicit Differentiation" (jaxopt), NeurIPS 2022; Pedregosa 2016 (HOAG);
Ghadimi & Wang 2018 (AID-BiO). For a lower level strongly convex in y, y*(x) is smooth and

    grad F(x) = grad_x f(x, y*) - grad2_xy g(x, y*) v,      grad2_yy g(x, y*) v = grad_y f(x, y*).

Only Hessian-vector products (one backward through grad_y g) and one mixed product are needed:
* CG on H v = b (SPD H), warm-started from the previous v, stopped at ``linear_tol * ||b||`` or
  ``max_linear_iter`` steps; non-positive curvature p^T H p <= 1e-10 ||H|| ||p||^2 means a singular or
  indefinite lower-level Hessian, which is reported (`SingularHessian`) instead of returning garbage.
* Neumann: v ~ eta sum_{i=0}^{K} (I - eta H)^i b with eta <= 1/L_g (default: the inner step ``lr_y``);
  error ~ (1 - eta mu_g)^{K+1}.

Outer loop: y <- ``inner_steps`` gradient steps on g(x, .) (warm start), v by the linear solve, then
x <- Proj_X(x - alpha grad F_hat(x)).
"""
from __future__ import annotations

import torch

from ..common import Status
from ._core import (AdaptiveStep, Curvature, NonFinite, Setup, Structure, Oracles, _NOBATCH, axpy, check_finite,
                    detach, dot, leaf, norm, positive_int, relative_scale, steps, zeros_like)


class SingularHessian(NonFinite):
    """CG met (numerically) zero or negative curvature: grad2_yy g is singular or indefinite."""

    def __init__(self, curvature: float, iteration: int):
        Exception.__init__(self, f"singular or indefinite lower-level Hessian grad2_yy g (CG curvature "
                                 f"{curvature:.3g} at linear iteration {iteration}); implicit differentiation "
                                 f"needs a strongly convex lower level - use method='penalty'")
        self.where = "lower-level Hessian"


def _hypergrad(o: Oracles, x, y, *, linear_solver="cg", max_linear_iter=50, linear_tol=1e-10, v0=None,
               eta=None, batch=_NOBATCH):
    """(hypergradient tuple, v, info) at (x, y); o counts 'hvp' and 'linear_iterations'."""
    xl, yl = leaf(x), leaf(y)
    with torch.enable_grad():
        fv = o("f", xl, yl, batch)
        fx, fy = _grads(fv, xl, yl)
        gv = o("g", xl, yl, batch)
        gy = torch.autograd.grad(gv, yl, create_graph=True)
        o.counts["grad_f"] = o.counts.get("grad_f", 0) + 1
        o.counts["grad_g"] = o.counts.get("grad_g", 0) + 1

        def hvp(v):
            o.counts["hvp"] = o.counts.get("hvp", 0) + 1
            out = torch.autograd.grad(gy, yl, grad_outputs=v, retain_graph=True, allow_unused=True)
            out = tuple(torch.zeros_like(p) if h is None else h.detach() for h, p in zip(out, yl))
            check_finite(out, "Hessian-vector product of g")
            return out

        b, info = fy, {"linear_iterations": 0}
        bn = norm(b)
        if linear_solver == "cg":
            v = zeros_like(b) if v0 is None else v0
            r = axpy(-1.0, hvp(v), b) if v0 is not None else b
            p, rr, hnorm = r, float(dot(r, r)), 0.0
            for i in range(max_linear_iter):
                if rr ** 0.5 <= linear_tol * max(bn, 1e-300):
                    break
                hp = hvp(p)
                php, pp = float(dot(p, hp)), float(dot(p, p))
                hnorm = max(hnorm, abs(php) / max(pp, 1e-300))
                if php <= 1e-10 * hnorm * pp:
                    raise SingularHessian(php / max(pp, 1e-300), i)
                a = rr / php
                v, r = axpy(a, p, v), axpy(-a, hp, r)
                rr_new = float(dot(r, r))
                p, rr = axpy(rr_new / rr, p, r), rr_new
                info["linear_iterations"] = i + 1
            info["linear_residual"] = rr ** 0.5 / max(bn, 1e-300)
        elif linear_solver == "neumann":
            if eta is None or not eta > 0:
                raise ValueError(f"the Neumann series needs eta > 0 (<= 1/L_g), got {eta!r}")
            term, v = tuple(eta * t for t in b), tuple(eta * t for t in b)
            for i in range(max_linear_iter):   # term_{i+1} = (I - eta H) term_i
                term = axpy(-eta, hvp(term), term)
                v = axpy(1.0, term, v)
                info["linear_iterations"] = i + 1
            info["linear_residual"] = norm(axpy(-1.0, hvp(v), b)) / max(bn, 1e-300)
        elif callable(linear_solver):
            # an SPD solver on the explicit follower Hessian (built from n_y HVPs, so for small followers),
            # e.g. bandit-tuned SOR that learns its relaxation across the leader's sequence of systems
            sizes, shapes = [p.numel() for p in yl], [p.shape for p in yl]

            def unflat(vec):
                return tuple(t.reshape(sh) for t, sh in zip(torch.split(vec, sizes), shapes))
            n = sum(sizes)
            eye = torch.eye(n, dtype=b[0].dtype, device=b[0].device)
            H = torch.stack([torch.cat([h.reshape(-1) for h in hvp(unflat(eye[i]))]) for i in range(n)])
            H = 0.5 * (H + H.T)
            bvec = torch.cat([t.reshape(-1) for t in b])
            x0 = None if v0 is None else torch.cat([t.reshape(-1) for t in v0])
            vvec, sinfo = linear_solver(H, bvec, x0=x0, tol=linear_tol)
            vvec = torch.as_tensor(vvec, dtype=bvec.dtype, device=bvec.device)
            v = unflat(vvec)
            info["linear_iterations"] = int(sinfo.get("iterations", 0))
            info["linear_residual"] = float(torch.linalg.vector_norm(H @ vvec - bvec)) / max(bn, 1e-300)
            if "omega" in sinfo:
                info["omega"] = sinfo["omega"]
        else:
            raise ValueError(f"linear_solver must be 'cg', 'neumann', 'sor' or an SPD solver callable, "
                             f"got {linear_solver!r}")
        cross = torch.autograd.grad(gy, xl, grad_outputs=v, allow_unused=True)
    cross = tuple(torch.zeros_like(p) if c is None else c.detach() for c, p in zip(cross, xl))
    o.counts["linear_iterations"] = o.counts.get("linear_iterations", 0) + info["linear_iterations"]
    hg = axpy(-1.0, cross, fx)
    check_finite(hg, "hypergradient")
    return hg, detach(v), {**info, "f": float(fv.detach())}


def _grads(val, xl, yl):
    gr = (torch.autograd.grad(val, xl + yl, allow_unused=True) if val.requires_grad
          else (None,) * (len(xl) + len(yl)))
    gr = tuple(torch.zeros_like(p) if q is None else q.detach() for q, p in zip(gr, xl + yl))
    return gr[:len(xl)], gr[len(xl):]


def hypergradient(f, g, x, y, *, linear_solver: str = "cg", max_linear_iter: int = 50,
                  linear_tol: float = 1e-10, eta=None, batch=None):
    """Implicit hypergradient grad F(x) at a lower-level solution ``y`` ~ y*(x) (CG or Neumann).

    ``x``, ``y``: tensors or tuples of tensors; returns ``(grad, info)`` with ``grad`` in the structure of
    ``x`` and ``info`` holding ``v`` (the adjoint), ``linear_iterations``, ``linear_residual``, ``hvp``.
    Raises `SingularHessian` when grad2_yy g is singular/indefinite.
    """
    xs, ys = Structure(x, "x"), Structure(y, "y")
    counts: dict = {}
    o = Oracles(f, g, xs, ys, counts)
    hg, v, info = _hypergrad(o, xs.init, ys.init, linear_solver=linear_solver, max_linear_iter=max_linear_iter,
                             linear_tol=linear_tol, eta=eta, batch=_NOBATCH if batch is None else batch)
    return xs.pack(hg), {**info, "v": ys.pack(v), "hvp": counts.get("hvp", 0)}


def implicit(f, g, x0, y0, *, lr_x=None, lr_y=None, inner_steps: int = 10, linear_solver: str = "cg",
             max_linear_iter: int = 20, linear_tol: float = 1e-10, neumann_eta=None, proj_x=None, proj_y=None,
             batches=None, eval_batch=None, max_iter: int = 1000, tol: float = 1e-6, time_limit=None,
             callback=None, device=None, dtype=None, certify_gap: bool = True):
    """Hypergradient descent with implicit differentiation (AID); see the module docstring.

    ``x = (x, y)`` in the user's structures; certificates ``stationarity`` (gradient mapping of F with the
    implicit hypergradient), ``relative_stationarity`` (divided by |f| at the first iterate: the test, against
    ``tol``), ``linear_residual`` and ``lower_level_gap``. A singular lower-level Hessian ends the run with
    NUMERICAL_ERROR and a message saying so. Default steps are scale-free: ``lr_y`` = 1/L_g (power iteration
    on Hessian-vector products, `Curvature`), ``lr_x`` adaptive (`AdaptiveStep`); numbers or schedules
    k -> step override them.
    """
    S = Setup(f, g, x0, y0, proj_x=proj_x, proj_y=proj_y, batches=batches, eval_batch=eval_batch,
              max_iter=max_iter, tol=tol, time_limit=time_limit, callback=callback, device=device, dtype=dtype)
    ax, ay = steps(lr_x, "lr_x"), steps(lr_y, "lr_y")
    curv, astep = Curvature(S.counts), AdaptiveStep()
    T, K = positive_int(inner_steps, "inner_steps"), positive_int(max_linear_iter, "max_linear_iter")
    if linear_solver == "sor":
        # one tuner for the whole run: the Hessian systems of successive leader steps are a sequence
        from ..linalg.bandit import SequenceSolver
        linear_solver = SequenceSolver(tuner="smooth", tol=linear_tol).as_spd_solver()
    if not (linear_solver in ("cg", "neumann") or callable(linear_solver)):
        raise ValueError(f"linear_solver must be 'cg', 'neumann', 'sor' or an SPD solver callable "
                         f"(A, b, x0=None, tol=None) -> (x, info), got {linear_solver!r}")
    x, y, v = S.x0, S.y0, None
    o, status, msg, k, stat, ry, lres = S.orc, None, "", 0, float("nan"), float("nan"), float("nan")
    fscale = gscale = rel = None
    try:
        for k in S.budget:
            if ay is not None:
                beta = ay(k)
            else:
                bk = S.batches.next()
                beta = curv.step(lambda yy: o("g", x, yy, bk), y)
            for t in range(T):
                _, _, gy = o.grad("g", x, y, "y", S.batches.next())
                gscale = gscale or relative_scale(norm(gy))
                y = S.py(axpy(-beta, gy, y))
            ry = norm(gy)
            hg, v, info = _hypergrad(o, x, y, linear_solver=linear_solver, max_linear_iter=K,
                                     linear_tol=linear_tol, v0=v if linear_solver != "neumann" else None,
                                     eta=neumann_eta if neumann_eta is not None else beta,
                                     batch=S.batches.next())
            lres = info["linear_residual"]
            alpha = ax(k) if ax is not None else astep(x, hg)
            xn = S.px(axpy(-alpha, hg, x))
            stat = norm(axpy(-1.0, xn, x)) / alpha
            fscale = fscale or relative_scale(info["f"], stat)
            rel = stat / fscale
            x = xn
            if S.budget.report(k, x=S.xs.pack(x), y=S.ys.pack(y), objective=info["f"], stationarity=stat,
                               relative_stationarity=rel, residual_y=ry, linear_residual=lres):
                break
            if rel <= S.tol and ry <= S.tol * gscale:
                status, msg = Status.LOCALLY_OPTIMAL, f"stationary to tol={S.tol} at iteration {k}"
                break
    except NonFinite as e:
        status, msg = Status.NUMERICAL_ERROR, f"{e} at outer iteration {k}"
    except KeyboardInterrupt:
        S.budget.interrupt()
    return S.conclude(o, x, y, status, msg, k, {"stationarity": stat, "relative_stationarity": rel,
                                                "residual_y": ry, "linear_residual": lres},
                      {"v": None if v is None else S.ys.pack(v), "method": "implicit"},
                      certify_gap=certify_gap)
