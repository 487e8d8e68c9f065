r"""Structured (large, sparse) mode of AdaSketch-SQP: ``alsketch.minimize(..., hess_lag=, jac_eq=, jac_ineq=)``.

Same method as the dense mode (``solvers/alsketch.py``), with KKT matrices assembled in ``scipy.sparse`` (CPU)
from user-supplied sparse derivatives; f and c are evaluated (and ∇f taken by autograd) on x's device.

Variables z = (x, s), s ∈ R^{m_I} slacks of c_I(x) + s = 0; barrier subproblem

    min φ_μ(z) = f(x) − μ Σ log s − μ Σ_{l finite} log(x − l) − μ Σ_{u finite} log(u − x)
    s.t. c(z) = (c_E(x), c_I(x) + s) = 0,

with sparse Jacobian  J = [[J_E, 0], [J_I, I]]  and Hessian  H = blkdiag(∇²ₓₓ(f + λ_Eᵀc_E + λ_Iᵀc_I) + D_x, D_s),
D_x = diag(μ/(x − l)² + μ/(u − x)²), D_s = diag(μ/s²). Each subproblem is solved by the exact-augmented-Lagrangian
SQP steps (merit L_η = φ_μ + λᵀc + (η₁/2)‖c‖² + (η₂/2)‖∇L‖², descent test, Armijo with fraction-to-boundary);
μ ← max(tol, min(μ/5, μ^1.5)) once the subproblem's KKT residual is ≤ 10μ — exactly the dense-mode rules.

No Hessian modification is done here (forming a null-space basis of a large J is what this mode avoids): the
caller vouches for a positive definite reduced Hessian (true for convex problems such as the PDE examples).

Linear solves: ``"direct"`` — when H is diagonal and positive (e.g. separable objectives plus barrier terms), the
Schur complement J H⁻¹ Jᵀ (m x m, SPD) is factored, else the (N+m) KKT matrix by sparse LU; ``"sketch"`` —
sketch-and-project (``linalg.sketch``) on the row-equilibrated KKT matrix with the adaptive accuracy test.
"""
from __future__ import annotations

import math
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from optdsl.solvers.alsketch import (_armijo, _barrier_outer, _delta_trial, _interior_start, _threshold, _vec,
                                    _violation_stationary, _worst)
from optdsl.solvers.common import Budget, SolverOutput, Status
from optdsl.solvers.linalg import sketch as sk

__all__ = ["solve"]


def _to_scipy(A, what):
    if sp.issparse(A):
        return A.tocsr()
    if isinstance(A, torch.Tensor):
        if A.layout == torch.strided:
            return sp.csr_matrix(A.detach().cpu().double().numpy())
        A = A.detach().to_sparse_coo().coalesce().cpu()
        i = A.indices().numpy()
        return sp.csr_matrix((A.values().double().numpy(), (i[0], i[1])), shape=tuple(A.shape))
    raise TypeError(f"alsketch: {what} must return a scipy.sparse matrix or a torch tensor, got {type(A).__name__}")


def _paper(B, H, J, K, xi_B):
    """ψ = 7 max(‖B‖², 1)/(min(λ_min(JJᵀ), 1) ξ_B), Υ = max(‖B‖, ‖H‖, ‖J‖), ‖K‖ of the reference accuracy rule
    (2-norms; dense algebra up to 3000 rows, else ARPACK)."""
    if K.shape[0] <= 3000:
        n2 = lambda A: float(np.linalg.norm(A.toarray(), 2)) if A.shape[0] and A.shape[1] else 0.0  # noqa: E731
        lmin = float(np.linalg.eigvalsh((J @ J.T).toarray())[0]) if J.shape[0] else 1.0
    else:
        n2 = lambda A: float(spla.svds(A.astype(float), k=1, return_singular_vectors=False)[0])  # noqa: E731
        lmin = float(spla.eigsh((J @ J.T).tocsc(), k=1, sigma=0, return_eigenvectors=False)[0]) if J.shape[0] \
            else 1.0
    nB, nH, nJ = n2(B), n2(H), n2(J)
    psi = 7 * max(nB**2, 1.0) / (max(min(lmin, 1.0), 1e-300) * xi_B)
    return {"psi": psi, "Ups": max(nB, nH, nJ), "Knorm": n2(K)}


def solve(f, eq, ineq, jac_eq, jac_ineq, hess_lag, x, me, mi, lbt, ubt, *, counts, linear_solver, sketch,
          sketch_size, max_iter, tol, time_limit, callback, eta1, eta2, delta, xi_B, beta, nu, rho, sharpen,
          max_inner, mu0, seed, lam0, accuracy, sketch_grow, max_sketch_size, t_start,
          barrier_hessian="primal-dual"):
    """Run the structured mode; arguments as validated by ``alsketch.minimize``. Returns a SolverOutput."""
    dev, dt = x.device, x.dtype
    n = x.numel()
    N, m = n + mi, me + mi
    T = lambda a: torch.as_tensor(a, dtype=dt).to(dev)  # noqa: E731
    Np = lambda t: t.detach().cpu().double().numpy()  # noqa: E731
    x = _interior_start(x, lbt, ubt)
    lb, ub = Np(lbt), Np(ubt)
    hasl, hasu = np.isfinite(lb), np.isfinite(ub)
    barrier = bool(mi or hasl.any() or hasu.any())
    mu = mu0 if barrier else 0.0
    Is = sp.identity(mi, format="csr")

    def cons(xt):
        parts = ([Np(_vec(eq, xt, "eq"))] if me else []) + ([Np(_vec(ineq, xt, "ineq"))] if mi else [])
        return np.concatenate(parts) if parts else np.zeros(0)

    def jac(xt):
        blocks = []
        for fn, k, name in ((jac_eq, me, "jac_eq"), (jac_ineq, mi, "jac_ineq")):
            if k:
                Jk = _to_scipy(fn(xt), name)
                if Jk.shape != (k, n):
                    raise ValueError(f"alsketch: {name}(x) must have shape ({k}, {n}), got {Jk.shape}")
                blocks.append(Jk)
        counts["jac"] += 1
        return sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, n))

    def evaluate(z, lam, need_hess=True):
        """Barrier-subproblem quantities at (z, λ) (numpy / scipy.sparse, float64)."""
        xt = T(z[:n])
        xg = xt.detach().requires_grad_(True)
        with torch.enable_grad():
            fx = f(xg)
            if not isinstance(fx, torch.Tensor) or fx.numel() != 1:
                raise TypeError("alsketch: f(x) must return a scalar torch tensor")
            g, = torch.autograd.grad(fx, xg, allow_unused=True)
        counts["f"] += 1
        counts["grad"] += 1
        gx = np.zeros(n) if g is None else Np(g)
        cx = cons(xt)
        Jx = jac(xt)
        xx, ss = z[:n], z[n:]
        phi = float(fx.detach())
        gz = np.concatenate([gx, np.zeros(mi)])
        hdiag = np.zeros(N)
        if barrier:
            dl, du = (xx - lb)[hasl], (ub - xx)[hasu]
            phi -= mu * (np.log(ss).sum() + np.log(dl).sum() + np.log(du).sum())
            gz[:n][hasl] -= mu / dl
            gz[:n][hasu] += mu / du
            gz[n:] -= mu / ss
            hdiag[:n][hasl] += mu / dl**2
            hdiag[:n][hasu] += mu / du**2
            hdiag[n:] += mu / ss**2
        cz = cx.copy()
        cz[me:] += ss
        J = Jx if not mi else sp.bmat([[Jx[:me], sp.csr_matrix((me, mi))], [Jx[me:], Is]], format="csr")
        gL = gz + J.T @ lam
        H = None
        if need_hess:
            Hx = _to_scipy(hess_lag(xt.detach(), T(lam)), "hess_lag")
            if Hx.shape != (n, n):
                raise ValueError(f"alsketch: hess_lag(x, lam) must have shape ({n}, {n}), got {Hx.shape}")
            counts["hvp"] += 1
            H = (sp.block_diag([Hx, sp.csr_matrix((mi, mi))], format="csr") if mi else Hx) + sp.diags(hdiag)
        return dict(f=float(fx.detach()), phi=phi, gx=gx, c=cz, cx=cx, J=J, Jx=Jx,
                    gL=gL, H=H)

    def merit(e, lam, e1, e2):
        return e["phi"] + lam @ e["c"] + 0.5 * e1 * (e["c"] @ e["c"]) + 0.5 * e2 * (e["gL"] @ e["gL"])

    def bound_duals(xx):
        zl = np.where(hasl, mu / np.maximum(xx - lb, 1e-300), 0.0)
        zu = np.where(hasu, mu / np.maximum(ub - xx, 1e-300), 0.0)
        return zl, zu

    def certificates(e, lam, z):
        """KKT residuals of the original problem (∞-norms), as in the dense mode."""
        xx = z[:n]
        zl, zu = bound_duals(xx)
        stat = float(np.abs(e["gx"] + e["Jx"].T @ lam - zl + zu).max(initial=0.0))
        cE, cI = e["cx"][:me], e["cx"][me:]
        feas = max(np.abs(cE).max(initial=0.0), np.maximum(cI, 0).max(initial=0.0),
                   np.maximum(lb - xx, 0)[hasl].max(initial=0.0), np.maximum(xx - ub, 0)[hasu].max(initial=0.0))
        compl = max(np.abs(lam[me:] * cI).max(initial=0.0), np.abs(zl[hasl] * (xx - lb)[hasl]).max(initial=0.0),
                    np.abs(zu[hasu] * (ub - xx)[hasu]).max(initial=0.0), np.maximum(-lam[me:], 0).max(initial=0.0))
        return {"stationarity": stat, "feasibility": float(feas), "complementarity": float(compl),
                "kkt": float(max(stat, feas, compl))}

    def pd_shift(z):
        """Z/D − μ/D² on slacks and bounded x (the dense mode's `pd_shift`): the Newton matrix's barrier block
        becomes the primal-dual Z/D."""
        xx, ss = z[:n], z[n:]
        shift = np.zeros(N)
        shift[n:] = zs / ss - mu / ss**2
        dl, du = (xx - lb)[hasl], (ub - xx)[hasu]
        shift[:n][hasl] += zl / dl - mu / dl**2
        shift[:n][hasu] += zu / du - mu / du**2
        return shift

    def dual_step(z_old, z_new, dz):
        """The duals' Newton step ΔZ = μ/D − Z − (Z/D) ΔD, fraction-to-boundary, kept in [μ/(κD), κμ/D]."""
        def one(zd, d_old, dd, d_new):
            if not zd.size:
                return zd
            step = mu / d_old - zd - zd / d_old * dd
            neg = step < 0
            a = min(1.0, float((-0.995 * zd[neg] / step[neg]).min())) if neg.any() else 1.0
            return np.clip(zd + a * step, mu / (1e10 * d_new), 1e10 * mu / d_new)
        xo, xn, dx = z_old[:n], z_new[:n], dz[:n]
        return (one(zs, z_old[n:], dz[n:N], z_new[n:]),
                one(zl, (xo - lb)[hasl], dx[hasl], (xn - lb)[hasl]),
                one(zu, (ub - xo)[hasu], -dx[hasu], (ub - xn)[hasu]))

    def max_step(z, dz):
        """Fraction-to-boundary (τ = 0.995) for slacks and bounded x."""
        tau, a = 0.995, 1.0
        for mask, dist, dd in ((np.ones(mi, bool), z[n:], dz[n:]), (hasl, z[:n] - lb, dz[:n]),
                               (hasu, ub - z[:n], -dz[:n])):
            sel = mask & (dd < 0)
            if sel.any():
                a = min(a, float((-tau * dist[sel] / dd[sel]).min()))
        return a

    c0 = cons(x)
    s = np.maximum(-c0[me:], 1e-2) if mi else np.zeros(0)
    z = np.concatenate([Np(x), s])
    lam = np.zeros(m)
    if lam0 is not None:
        l0 = Np(lam0.reshape(-1))
        lam[:min(m, l0.size)] = l0[:m]
    if mi and (lam0 is None or Np(lam0.reshape(-1)).size < m):
        lam[me:] = mu / s  # slack stationarity −μ/s + λ_I = 0
    e = evaluate(z, lam, need_hess=lam0 is not None or not m)
    if lam0 is None and m:
        # least-squares multiplier estimate min ‖∇φ + Jᵀλ‖ (as the dense mode; a few LSQR sweeps suffice for a
        # starting point and keep this cheap at 1e5 unknowns); it keeps the first Hessian of L meaningful
        est = spla.lsqr(e["J"].T, -(e["gL"] - e["J"].T @ lam), atol=1e-12, btol=1e-12, iter_lim=100)[0]
        if np.all(np.isfinite(est)):
            lam = est
        e = evaluate(z, lam)
    pd = barrier and barrier_hessian == "primal-dual"
    if pd:   # dual estimates on the central path to start (z = μ/d)
        zs, zl, zu = mu / z[n:], mu / (z[:n] - lb)[hasl], mu / (ub - z[:n])[hasu]
    e1, e2, dlt = eta1, eta2, delta
    budget = Budget(max_iter, time_limit, callback)
    generator = torch.Generator()
    generator.manual_seed(seed)
    status, message, it, alpha, bn_prev, unit_steps = None, "", 0, 0.0, None, 0
    q_cap = max_sketch_size
    for it in budget:
        cert = certificates(e, lam, z)
        kkt_sub = float(np.abs(np.concatenate([e["gL"], e["c"]])).max(initial=0.0))
        if not (math.isfinite(kkt_sub) and math.isfinite(e["phi"])):
            status, message = Status.NUMERICAL_ERROR, f"non-finite objective/derivatives at iteration {it}"
            break
        if budget.report(it, x=T(z[:n]), objective=e["f"], kkt=cert["kkt"], eta1=e1, eta2=e2, mu=mu,
                         alpha=alpha):
            break
        action, value, note = _barrier_outer(cert, kkt_sub, mu, tol, barrier)
        while action == "next":   # μ falls again while the new subproblem's error allows (no iteration spent)
            mu = value
            e = evaluate(z, lam)
            bn_prev = None
            cert = certificates(e, lam, z)
            kkt_sub = float(np.abs(np.concatenate([e["gL"], e["c"]])).max(initial=0.0))
            action, value, note = _barrier_outer(cert, kkt_sub, mu, tol, barrier)
        if action == "stop":
            status, message = value, note
            break
        H, J = e["H"], e["J"]
        Hn = H + sp.diags(pd_shift(z)) if pd else H   # the Newton matrix's Hessian (the merit keeps H)
        B, shifted = Hn, False
        K = _kkt(B, J)
        rhs = -np.concatenate([e["gL"], e["c"]])
        bn = float(np.linalg.norm(rhs))
        paper = _paper(B, H, J, K, xi_B) if accuracy == "paper" and linear_solver == "sketch" else None
        dz, lu = None, None
        for _ in range(60):  # penalty / accuracy adaptation loop
            if paper is not None:
                dlt = min(dlt, _delta_trial(paper, e1, e2, beta))
            thr = _threshold(dlt, bn, bn_prev, sharpen, paper)
            if linear_solver == "direct":
                if lu is None:
                    dz, lu = _direct(B, J, K, rhs, N, m)
                    counts["linear_iterations"] += 1
            else:
                # symmetric row-norm equilibration D K D (barrier terms spread row scales over decades)
                d = 1.0 / np.sqrt(np.maximum(np.sqrt(np.asarray(K.multiply(K).sum(1)).ravel()), 1e-300))
                Dm = sp.diags(d)
                Ntot = N + m
                q0 = sketch_size if sketch_size is not None else max(1, math.ceil(math.sqrt(Ntot)))
                cap = q_cap if q_cap is not None else min(Ntot - 1, 8 * q0)
                t_left = None if time_limit is None else max(1e-3, time_limit - budget.elapsed)
                out = sk.solve((Dm @ K @ Dm).tocsr(), T(d * rhs), x0=None if dz is None else T(dz / d),
                               sketch=sketch, sketch_size=min(q0, Ntot), atol=thr * float(d.min()), tol=0.0,
                               max_iter=max_inner, generator=generator, symmetric=True, device=dev, dtype=dt,
                               time_limit=t_left, grow=sketch_grow, max_sketch_size=max(1, cap), stall_windows=5)
                for k in ("linear_iterations", "operator", "sketch_growths", "exact_projections"):
                    counts[k] += out.counts[k]
                dz = d * Np(out.x)
            stalled = linear_solver == "sketch" and out.status == Status.SLOW_PROGRESS
            if stalled and shifted:
                # still inconsistent after the shift: J is rank deficient (LICQ fails); take the direct
                # minimum-norm step as the dense mode does, and count it
                dz, lu = _direct(B, J, K, rhs, N, m)
                counts["direct_fallbacks"] += 1
            dx = dz[:N]
            if not shifted and (stalled or dx @ (Hn @ dx) < 1e-8 * (dx @ dx)):
                # inertia-free curvature test (Chiang & Zavala 2016) in place of the dense mode's reduced-Hessian
                # eigenvalue check: negative curvature along the step (or a stalled sketch: K may be singular)
                # ⇒ B = H + (ξ_B + ‖H‖)I, the paper's shift (‖H‖∞ ≥ ‖H‖₂ for symmetric H), which makes B ≻ 0
                t = xi_B + float(np.asarray(abs(Hn).sum(axis=1)).max(initial=0.0))
                B, shifted, lu, dz = Hn + t * sp.identity(N, format="csr"), True, None, None
                K = _kkt(B, J)
                paper = _paper(B, H, J, K, xi_B) if paper is not None else None
                continue
            gm = np.concatenate([e["gL"] + e2 * (H @ e["gL"]) + e1 * (J.T @ e["c"]), e["c"] + e2 * (J @ e["gL"])])
            if gm @ dz <= -0.5 * e2 * bn**2 or e1 > 1e8 or e2 < 1e-8:
                break
            e1, e2, dlt = e1 * nu**2, e2 / nu, dlt / nu**4
        bn_prev = bn
        if not np.all(np.isfinite(dz)):
            status, message = Status.NUMERICAL_ERROR, f"KKT solve failed at iteration {it}"
            break
        slope = float(gm @ dz)
        if slope >= 0:  # not a descent direction even after adaptation: steepest descent on the merit
            dz, slope = -gm, -float(gm @ gm)
        m0 = merit(e, lam, e1, e2)
        slack = 10 * torch.finfo(dt).eps * max(1.0, abs(m0))
        ok, alpha, zt, lt, et = _armijo(evaluate, lambda e_, l_: merit(e_, l_, e1, e2), z, lam, dz, N,
                                        max_step(z, dz[:N]) if barrier else 1.0, m0, slope, slack, beta, rho)
        if not ok:
            status, message = Status.SLOW_PROGRESS, f"line search on the merit function failed at iteration {it}"
            break
        unit_steps = unit_steps + 1 if alpha == 1.0 else 0
        if pd:
            zs, zl, zu = dual_step(z, zt, dz)
        z, lam = zt, lt
        e = evaluate(z, lam)
    if status is None:
        status = budget.status or Status.ITERATION_LIMIT
    cert = certificates(e, lam, z)
    xt = T(z[:n])
    worst = _worst(T(e["cx"]), me, mi, xt, lbt, ubt)
    if status in (Status.ITERATION_LIMIT, Status.SLOW_PROGRESS) and cert["feasibility"] > max(1e-6, 100 * tol):
        # INFEASIBLE only at a stationary point of the violation (‖Jᵀc‖ ≤ 1e-6‖J‖‖c‖), not at a mere stall
        if _violation_stationary(float(np.linalg.norm(e["J"].T @ e["c"])), float(spla.norm(e["J"]))
                                 if sp.issparse(e["J"]) else float(np.linalg.norm(e["J"])),
                                 float(np.linalg.norm(e["c"]))):
            status = Status.INFEASIBLE
    if status == Status.INFEASIBLE:
        message = (f"locally infeasible: constraint {worst[0]}[{worst[1]}] has the largest violation "
                   f"{worst[2]:.3e} (iteration {it})")
    elif status == Status.ITERATION_LIMIT and not message:
        message = f"max_iter={max_iter} reached with KKT residual {cert['kkt']:.3e}"
    duals = {"eq": T(lam[:me]), "ineq": T(lam[me:])}
    if barrier:
        zl, zu = bound_duals(z[:n])
        duals["lb"], duals["ub"] = T(zl), T(zu)
    return SolverOutput(x=xt.clone(), status=status, objective=e["f"], iterations=it, message=message,
                        duals=duals, certificates=cert, counts=counts, history=budget.history,
                        solve_time=time.perf_counter() - t_start,
                        extras={"eta1": e1, "eta2": e2, "barrier_mu": mu, "worst_constraint": worst[:2],
                                "worst_violation": worst[2], "unit_steps_at_end": unit_steps,
                                "linear_solver": linear_solver, "sketch": sketch, "accuracy": accuracy,
                                "exact_projections": counts["exact_projections"],
                                "sketch_growths": counts["sketch_growths"],
                                "direct_fallbacks": counts["direct_fallbacks"], "structured": True})


def _kkt(B, J):
    return sp.bmat([[B, J.T], [J, None]], format="csc") if J.shape[0] else B.tocsc()


def _direct(H, J, K, rhs, N, m):
    """Sparse direct KKT solve; returns (dz, factor). Schur complement J H⁻¹ Jᵀ when H is diagonal ≻ 0.

    A factorization of a numerically singular matrix can "succeed" with rounding-size pivots and return garbage,
    so factors whose pivots span more than 13 decades count as singular (residual tests cannot tell singular
    from merely ill-conditioned here: the Poisson Schur complement at n = 1e5 has cond ~ 1e11 and a perfectly
    usable solution); singular systems (LICQ fails) get the minimum-norm least-squares step, as the dense mode.
    """
    def checked(lu, solve):
        piv = np.abs(lu.U.diagonal())
        if piv.size and not piv.min() > 1e-13 * piv.max():
            return None
        dz = solve(rhs)
        for _ in range(2):  # iterative refinement (J H⁻¹ Jᵀ squares the conditioning)
            dz = dz + solve(rhs - K @ dz)
        return dz if np.all(np.isfinite(dz)) else None

    hd = H.diagonal()
    if m and H.count_nonzero() == np.count_nonzero(hd) and np.all(hd > 0):
        # (J H⁻¹ Jᵀ) dλ = J H⁻¹ r₁ − r₂ is m x m SPD and much cheaper to factor than the indefinite KKT matrix
        try:
            # SPD: symmetric ordering without pivoting (about 2x faster and sparser factors than the default)
            lu = spla.splu((J @ sp.diags(1.0 / hd) @ J.T).tocsc(), permc_spec="MMD_AT_PLUS_A",
                           diag_pivot_thresh=0.0, options={"SymmetricMode": True})

            def schur_solve(r):
                r1, r2 = r[:N], r[N:]
                dl = lu.solve(J @ (r1 / hd) - r2)
                return np.concatenate([(r1 - J.T @ dl) / hd, dl])
            dz = checked(lu, schur_solve)
            if dz is not None:
                return dz, lu
        except RuntimeError:  # exactly singular (rank-deficient J)
            pass
    try:
        lu = spla.splu(K)
        dz = checked(lu, lu.solve)
        if dz is not None:
            return dz, lu
    except RuntimeError:
        pass
    # singular KKT: minimum-norm least-squares step (LSQR from 0 converges to it)
    out = spla.lsqr(K, rhs, atol=1e-14, btol=1e-14, iter_lim=min(20 * K.shape[0], 5000))
    if out[1] in (1, 2, 4, 5):
        return out[0], "lsqr"
    r = 1e-8 * max(1.0, float(abs(H).max()) if H.nnz else 1.0)  # LSQR too slow: regularize both blocks
    Kr = sp.bmat([[H + r * sp.identity(N), J.T], [J, -r * sp.identity(m) if m else None]], format="csc") \
        if m else (H + r * sp.identity(N)).tocsc()
    lu = spla.splu(Kr)
    return lu.solve(rhs), lu
