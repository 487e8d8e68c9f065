r"""Exact augmented Lagrangian SQP with randomized iterative sketching (AdaSketch-SQP).

Hong, Na, Mahoney & Kolar, "Constrained optimization via exact augmented Lagrangian and randomized iterative
sketching", ICML 2023 (merit function from Na, Anitescu & Kolar, Math. Prog. 2023).

Problem ``min f(x)  s.t.  c(x) = 0``; Lagrangian L = f + λᵀc, KKT residual ‖(∇ₓL, c)‖.

* Merit (differentiable, exact for η₁ large / η₂ small):
      L_η(x, λ) = L(x, λ) + (η₁/2)‖c‖² + (η₂/2)‖∇ₓL‖²,
      ∇ₓL_η = ∇ₓL + η₂ H ∇ₓL + η₁ Jᵀc,   ∇_λL_η = c + η₂ J ∇ₓL      (H = ∇²ₓₓL, one HVP).
* Newton–KKT step  [[B, Jᵀ], [J, 0]] (dx, dλ) = −(∇ₓL, c), B = H + tI with t = 0 if the reduced Hessian ZᵀHZ ≻ 0
  (Z a null-space basis of J), else t = ξ_B + ‖H‖₂, solved *inexactly* by randomized sketch-and-project
  (``optdsl.solvers.linalg.sketch``) until the adaptive accuracy condition ‖K dz + ∇L‖ ≤ δ_k ‖∇L‖ holds, with
  δ_k = min(δ, max(‖∇L_k‖, 0.9 (‖∇L_k‖/‖∇L_{k−1}‖)²)) when ``sharpen`` (gradually sharpened: δ_k → 0 under
  superlinear outer convergence, δ_k ≈ δ while the outer rate is only linear, e.g. at degenerate minima whose
  KKT matrices are ill-conditioned, so no effort is wasted over-solving there). ``accuracy="paper"`` uses the
  reference code's a-priori bound ‖K dz + ∇L‖ ≤ δ_k ‖∇L‖/(‖K‖ψ), δ_k ≤ δ_trial(ψ, Υ, η) instead (see minimize).
  The sketch block size doubles when the sketch iteration stalls, but never to the whole system (that would be a
  direct solve); the few direct steps taken (rank-deficient J) are counted in ``extras["direct_fallbacks"]``.
* Descent test ∇L_ηᵀdz ≤ −(η₂/2)‖∇L‖²; on failure η₁ ← ν²η₁, η₂ ← η₂/ν, δ ← δ/ν⁴ and the sketch solver
  continues from the current dz. Armijo backtracking on L_η (β = 0.1, ρ = 0.5). Defaults are the reference
  code's: η₁ = 1, η₂ = 0.1, δ = 0.1, ξ_B = 0.1, ν = 1.4.

Inequalities and bounds (the paper treats equalities only): inequalities c_I(x) ≤ 0 become c_I(x) + s = 0 with
slacks s > 0, and slacks and bounded variables get a log-barrier −μ Σ log(·) (interior point outer loop,
μ ← max(tol, min(μ/5, μ^1.5)) once the barrier subproblem's KKT residual is ≤ 10μ, again at the same point while
the new residual allows; fraction-to-boundary τ = 0.995). Each barrier subproblem is equality-constrained and
solved by the method above, with the Newton matrix's barrier block primal-dual (Z/D, dual estimates Z updated by
ΔZ = μ/D − Z − (Z/D)ΔD; ``barrier_hessian="primal"``: μ/D²) while the merit keeps the true μ/D². Duals: μ_I = λ
of the slack rows, bound duals μ/(x − l), μ/(u − x).

Structured (large, sparse) problems: pass ``hess_lag(x, λ)`` (sparse (n, n) Hessian of f + λ_Eᵀc_E + λ_Iᵀc_I,
λ = (λ_E, λ_I)) with ``jac_eq(x)`` / ``jac_ineq(x)`` (scipy.sparse / torch sparse, shapes (m_E, n) / (m_I, n));
then KKT matrices are assembled sparse, never dense (``solvers/alsketch_structured.py``: same slacks and
log-barrier for inequalities and bounds; no Hessian modification, so the caller vouches for a positive definite
reduced Hessian).
"""
from __future__ import annotations

import math
import time
from typing import Callable, Optional

import torch

from optdsl.solvers.autodiff import rows_of
from optdsl.solvers.common import Budget, SolverOutput, Status, resolve_device
from optdsl.solvers.linalg import sketch as sk

__all__ = ["minimize"]

_SAFE_INF = 1e20


def _vec(fn, x, what):
    v = fn(x)
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"alsketch: {what}(x) must return a torch tensor, got {type(v).__name__}")
    return v.reshape(-1)


class _Dense:
    """Small/medium problems: derivatives by autograd, dense KKT on the input's device.

    One forward pass of f and c per point gives f, ∇f and the Jacobian rows (one reverse pass batched over the
    rows, `autodiff.rows_of`); the Lagrangian Hessian is the Jacobian of ∇ₓL the same way (n HVPs in one pass). The
    last point's values and the last (x, λ) Hessian are kept, so the iteration's re-evaluation at an accepted
    trial point, and a new barrier subproblem at the same point, cost no evaluation."""

    def __init__(self, f, eq, ineq, n, me, mi, counts, derivatives=None):
        self.f, self.eq, self.ineq, self.n, self.me, self.mi, self.counts = f, eq, ineq, n, me, mi, counts
        self.derivatives = derivatives  # compiled f, ∇f, c, J and Hessian in place of autograd (see minimize)
        self._last = None    # (x, (f, ∇f, c, J)) of the last eval with the Jacobian
        self._last_h = None  # (x, λ, H) of the last Hessian
        self._batched = True  # reverse passes batched over rows (vmap); alsketch.minimize(batched=False) loops

    def cons(self, x):
        parts = []
        if self.me:
            parts.append(_vec(self.eq, x, "eq"))
        if self.mi:
            parts.append(_vec(self.ineq, x, "ineq"))
        if not parts:
            return x.new_zeros(0)
        return torch.cat(parts) if len(parts) > 1 else parts[0]

    def eval(self, x, need_jac=True):
        """f, ∇f, c = (c_E, c_I), J (m, n)."""
        x = x.detach()
        if need_jac and self._last is not None and _same(self._last[0], x):
            return self._last[1]
        if self.derivatives is not None:
            out = self.derivatives.eval(x)
            self.counts["f"] += 1
            self.counts["grad"] += 1
            self.counts["jac"] += 1
            self._last = (x.clone(), out)
            return out
        xg = x.clone().requires_grad_(True)
        m = self.me + self.mi
        with torch.enable_grad():
            fx = self.f(xg)
            if not isinstance(fx, torch.Tensor) or fx.numel() != 1:
                raise TypeError("alsketch: f(x) must return a scalar torch tensor")
            if need_jac and m:  # (f, c) stacked: ∇f and the Jacobian rows in one batched reverse pass
                c = self.cons(xg)
                GJ = rows_of(torch.cat([fx.reshape(1), c]), xg, self._batched)
                if not bool(torch.isfinite(GJ).all()):  # kept apart: a NaN in ∇f must not reach J through the stack
                    GJ = torch.cat([rows_of(fx.reshape(1), xg), rows_of(c, xg, self._batched)])
                g, J = GJ[0], GJ[1:]
                self.counts["jac"] += 1
            else:
                g = rows_of(fx.reshape(1), xg)[0]
                with torch.no_grad():
                    c = self.cons(x)
                J = x.new_zeros(0, self.n) if need_jac else None
        self.counts["f"] += 1
        self.counts["grad"] += 1
        out = (fx.detach().reshape(()), g, c.detach(), J)
        if need_jac:
            self._last = (x.clone(), out)
        return out

    def hess(self, x, lam):
        """∇²ₓₓ(f + λᵀc): the rows of the Jacobian of ∇ₓL (its graph kept), one batched reverse pass (n HVPs)."""
        x = x.detach()
        if self._last_h is not None and _same(self._last_h[0], x) and _same(self._last_h[1], lam):
            return self._last_h[2]
        if self.derivatives is not None:
            H = self.derivatives.hess(x, lam.detach())
            self.counts["hvp"] += self.n
            self._last_h = (x.clone(), lam.detach().clone(), H)
            return H
        xg = x.clone().requires_grad_(True)
        with torch.enable_grad():
            L = self.f(xg).reshape(())
            if lam.numel():
                L = L + (lam * self.cons(xg)).sum()
            g = None
            if L.requires_grad:
                (g,) = torch.autograd.grad(L, xg, create_graph=True, allow_unused=True)
            if g is None or not g.requires_grad:  # affine Lagrangian: zero Hessian
                H = x.new_zeros(self.n, self.n)
            else:
                H = rows_of(g, xg, self._batched).detach()
        self.counts["hvp"] += self.n
        self._last_h = (x.clone(), lam.detach().clone(), H)
        return H


def _same(a, b):
    return a.shape == b.shape and torch.equal(a, b)


def minimize(f: Callable, x0: torch.Tensor, *, eq: Optional[Callable] = None, ineq: Optional[Callable] = None,
             lb=None, ub=None, hessian: str = "exact", linear_solver: str = "sketch", sketch: str = "rows",
             sketch_size: Optional[int] = None, max_iter: int = 500, tol: float = 1e-8,
             time_limit: Optional[float] = None, callback: Optional[Callable] = None, device=None, dtype=None,
             eta1: float = 1.0, eta2: float = 0.1, delta: float = 0.1, xi_B: float = 0.1, beta: float = 0.1,
             nu: float = 1.4, rho: float = 0.5, sharpen: bool = True, max_inner: int = 100_000,
             mu0: float = 0.1, seed: int = 0, jac_eq: Optional[Callable] = None,
             hess_lag: Optional[Callable] = None, lam0: Optional[torch.Tensor] = None,
             jac_ineq: Optional[Callable] = None, accuracy: str = "adaptive", sketch_grow: bool = True,
             max_sketch_size: Optional[int] = None, derivatives=None,
             barrier_hessian: str = "primal-dual") -> SolverOutput:
    """Minimize ``f(x)`` subject to ``eq(x) = 0``, ``ineq(x) <= 0``, ``lb <= x <= ub``.

    Parameters
    ----------
    f : ``Tensor(n) -> scalar tensor``, differentiable by torch autograd.
    x0 : starting point, shape (n,). Not modified (moved strictly inside the bounds if needed).
    eq, ineq : ``Tensor(n) -> Tensor(m)`` constraint functions (``ineq`` means ≤ 0).
    lb, ub : bounds (scalars, sequences or tensors; ±inf for none).
    hessian : ``"exact"`` (autograd Hessian of the Lagrangian) or ``"bfgs"`` (damped BFGS).
    linear_solver : ``"sketch"`` (randomized sketch-and-project with the adaptive accuracy test) or ``"direct"``.
    sketch, sketch_size : sketch family (``"rows"`` block Kaczmarz / ``"gaussian"``) and block size q
        (default ``ceil((n+m)/2)`` for dense systems, ``ceil(sqrt(n+m))`` otherwise).
    tol : KKT tolerance on stationarity, feasibility and complementarity (∞-norms); raised to 1e-5 in float32.
    eta1, eta2, delta, xi_B, beta, nu, rho : merit penalties, accuracy factor, Hessian-modification bound,
        Armijo constant, penalty factor, backtracking factor (reference-code defaults).
    sharpen : gradually sharpen the accuracy, δ_k = min(δ, max(‖∇L_k‖, 0.9 (‖∇L_k‖/‖∇L_{k−1}‖)²))
        (Eisenstat–Walker-type forcing: → 0 under superlinear convergence, stays ≈ δ where the outer iteration
        is only linear, e.g. at degenerate minima, so the inner solver does not over-solve there).
    accuracy : ``"adaptive"`` (default) stops the sketch solver at ‖K dz + ∇L‖ ≤ δ_k ‖∇L‖; ``"paper"`` uses the
        reference bound ‖K dz + ∇L‖ ≤ δ_k ‖∇L‖ / (‖K‖ ψ) with δ_k ≤ δ_trial =
        (½ − β) η₂ / (2ψ² (3Υ + 4η₂Υ² + η₁Υ²)), ψ = 7 max(‖B‖², 1) / (min(λ_min(JJᵀ), 1) ξ_B) (a bound on
        ‖K⁻¹‖) and Υ = max(‖B‖, ‖H‖, ‖J‖). The paper's bound guarantees the descent test a priori but is a
        worst-case bound (relative residuals ~1e-8 and below), so the default checks descent a posteriori instead.
    sketch_grow, max_sketch_size : double the sketch block size when the sketch iteration stalls, up to
        ``max_sketch_size`` (default: the whole system in dense mode, 2048 rows in structured mode). Blocks that
        span the whole system are exact projections (direct solves); they are counted in
        ``counts["exact_projections"]`` and ``extras["exact_projections"]``.
    mu0 : initial barrier parameter (only used with inequalities or bounds).
    barrier_hessian : ``"primal-dual"`` (default: the barrier block of the Newton matrix is Z/D with dual
        estimates Z kept across iterations) or ``"primal"`` (μ/D², the plain log-barrier Hessian).
    jac_eq, jac_ineq, hess_lag : structured derivatives for large sparse problems (see module docstring):
        ``jac_eq(x)`` (m_E, n) and ``jac_ineq(x)`` (m_I, n) as scipy.sparse or torch sparse matrices,
        ``hess_lag(x, λ)`` the sparse (n, n) Hessian of f + λ_Eᵀc_E + λ_Iᵀc_I with λ = (λ_E, λ_I) of length
        m_E + m_I (just λ_E when there are no inequalities). Bounds are handled by the log-barrier.
    lam0 : initial equality multipliers (default: least-squares estimate).
    derivatives : compiled derivatives of the same f and rows (dense mode, CPU float64): an object with
        ``eval(x) -> (f, ∇f, c, J)`` (c = (c_E, c_I), J of shape (m_E + m_I, n)) and ``hess(x, λ) ->
        ∇²ₓₓ(f + λᵀc)``, used instead of autograd passes (``f``, ``eq``, ``ineq`` still serve the checks);
        the modeling layer passes CasADi functions for small models (``optdsl.backends.casadi_derivatives``).

    Returns a :class:`SolverOutput`: ``x``; ``duals = {"eq": λ, "ineq": μ ≥ 0, "lb": z_l, "ub": z_u}`` with
    L = f + λᵀc_eq + μᵀc_ineq − z_lᵀ(x − l) + z_uᵀ(x − u); certificates ``stationarity``, ``feasibility``,
    ``complementarity``, ``kkt``; counts f/grad/hvp/jac/linear_iterations; extras ``eta1``, ``eta2``,
    ``worst_constraint`` (``("eq"|"ineq"|"lb"|"ub", index)`` of the largest violation) and ``barrier_mu``.
    """
    t_start = time.perf_counter()
    if not callable(f):
        raise TypeError(f"alsketch: f must be callable, got {type(f).__name__}")
    if not isinstance(x0, torch.Tensor):
        raise TypeError(f"alsketch: x0 must be a torch tensor, got {type(x0).__name__}")
    if x0.dim() != 1:
        raise ValueError(f"alsketch: x0 must be 1-D of shape (n,), got shape {tuple(x0.shape)}")
    if hessian not in ("exact", "bfgs"):
        raise ValueError(f"hessian must be 'exact' or 'bfgs', got {hessian!r}")
    if linear_solver not in ("sketch", "direct"):
        raise ValueError(f"linear_solver must be 'sketch' or 'direct', got {linear_solver!r}")
    if sketch not in ("rows", "gaussian"):
        raise ValueError(f"sketch must be 'rows' or 'gaussian', got {sketch!r}")
    if accuracy not in ("adaptive", "paper"):
        raise ValueError(f"accuracy must be 'adaptive' or 'paper', got {accuracy!r}")
    if barrier_hessian not in ("primal-dual", "primal"):
        raise ValueError(f"barrier_hessian must be 'primal-dual' or 'primal', got {barrier_hessian!r}")
    for name, v in (("eta1", eta1), ("eta2", eta2), ("delta", delta), ("xi_B", xi_B), ("mu0", mu0)):
        if not v > 0:
            raise ValueError(f"alsketch: {name} must be > 0, got {v}")
    if not (0 < beta < 0.5 and 0 < rho < 1 and nu > 1):
        raise ValueError(f"alsketch: need 0 < beta < 0.5, 0 < rho < 1, nu > 1; got beta={beta}, rho={rho}, nu={nu}")
    dev, dt = resolve_device(device, dtype, like=x0)
    x = x0.detach().to(device=dev, dtype=dt).clone()
    n = x.numel()
    tol = max(tol, 1e-5) if dt in (torch.float32, torch.float16, torch.bfloat16) else tol
    structured = hess_lag is not None or jac_eq is not None or jac_ineq is not None

    lbt = _bound(lb, n, -math.inf, dev, dt, "lb")
    ubt = _bound(ub, n, math.inf, dev, dt, "ub")
    if bool((lbt > ubt).any()):
        i = int(torch.nonzero(lbt > ubt)[0])
        raise ValueError(f"alsketch: lb[{i}] = {float(lbt[i])} > ub[{i}] = {float(ubt[i])}")
    me = _vec(eq, x, "eq").numel() if eq is not None else 0
    mi = _vec(ineq, x, "ineq").numel() if ineq is not None else 0
    counts = {"f": 0, "grad": 0, "hvp": 0, "jac": 0, "linear_iterations": 0, "operator": 0,
              "sketch_growths": 0, "exact_projections": 0, "direct_fallbacks": 0}
    if structured:
        missing = [nm for nm, need, fn in (("hess_lag", True, hess_lag), ("jac_eq", me > 0, jac_eq),
                                           ("jac_ineq", mi > 0, jac_ineq)) if need and fn is None]
        if missing:
            raise ValueError(f"alsketch: structured mode needs hess_lag, jac_eq (with eq) and jac_ineq (with "
                             f"ineq); missing {', '.join(missing)}")
        from optdsl.solvers import alsketch_structured
        return alsketch_structured.solve(
            f, eq, ineq, jac_eq, jac_ineq, hess_lag, x, me, mi, lbt, ubt, counts=counts,
            linear_solver=linear_solver, sketch=sketch, sketch_size=sketch_size, max_iter=max_iter, tol=tol,
            time_limit=time_limit, callback=callback, eta1=eta1, eta2=eta2, delta=delta, xi_B=xi_B, beta=beta,
            nu=nu, rho=rho, sharpen=sharpen, max_inner=max_inner, mu0=mu0, seed=seed, lam0=lam0,
            accuracy=accuracy, sketch_grow=sketch_grow, max_sketch_size=max_sketch_size, t_start=t_start,
            barrier_hessian=barrier_hessian)

    hasl, hasu = torch.isfinite(lbt), torch.isfinite(ubt)
    x = _interior_start(x, lbt, ubt)
    model = _Dense(f, eq, ineq, n, me, mi, counts, derivatives)
    barrier = bool(mi or hasl.any() or hasu.any())
    mu = mu0 if barrier else 0.0

    _, _, c, _ = model.eval(x)  # with J: the first iteration evaluates here again (kept, not recomputed)
    s = torch.clamp(-c[me:], min=1e-2) if mi else x.new_zeros(0)  # slacks: c_I + s = 0, s > 0
    N = n + mi
    m = me + mi
    lam = x.new_zeros(m)
    if lam0 is not None:
        lam[:me] = lam0.to(device=dev, dtype=dt).reshape(-1)[:me]

    generator = torch.Generator(device=dev)
    generator.manual_seed(seed)
    budget = Budget(max_iter, time_limit, callback)
    Bq = None  # BFGS matrix (n, n)
    status, message, it = None, "", 0
    last_alpha = 0.0
    unit_steps = 0
    infeas_streak = 0
    feas_hist: list[float] = []
    feas_thr = max(1e-6, 100 * tol)
    least = None  # (x, violation) of the least-violation point, once computed

    il, iu = torch.nonzero(hasl).reshape(-1), torch.nonzero(hasu).reshape(-1)  # bounded coordinates
    lbi, ubi = lbt[il], ubt[iu]
    slack_cols = torch.cat([x.new_zeros(me, mi), torch.eye(mi, device=dev, dtype=dt)]) if mi else None

    def evaluate(z, lam_, need_hess=True):
        """Barrier-subproblem quantities at (z, λ): φ, ∇φ, c, J (m, N), ∇L, and the Hessian of L in z."""
        xx, ss = z[:n], z[n:]
        fx, gx, cx, Jx = model.eval(xx)
        phi = fx
        g = torch.cat([gx, x.new_zeros(mi)]) if mi else gx.clone()
        if barrier:
            if mi:
                phi = phi - mu * torch.log(ss).sum()
                g[n:] -= ss.reciprocal().mul_(mu)   # (scalar / tensor is torch's Python-level __rdiv__)
            if il.numel() or iu.numel():
                dl, du = xx[il] - lbi, ubi - xx[iu]
                phi = phi - mu * (torch.log(dl).sum() + torch.log(du).sum())
                g.index_add_(0, il, dl.reciprocal().mul_(-mu))
                g.index_add_(0, iu, du.reciprocal().mul_(mu))
        cz = cx + torch.cat([x.new_zeros(me), ss]) if mi else cx
        J = torch.cat([Jx, slack_cols], dim=1) if mi else Jx
        gL = g + J.T @ lam_ if m else g
        ev = dict(phi=phi, f=fx, g=g, gx=gx, c=cz, cx=cx, J=J, gL=gL, H=None, z=z)
        return with_hessian(ev, xx, lam_) if need_hess else ev

    def with_hessian(ev, xx, lam_):
        """`ev` (at x = xx, multipliers λ) with the Hessian of the barrier Lagrangian in z added: ∇²ₓₓL plus the
        barrier's diagonal μ/s², μ/(x − l)², μ/(u − x)² (computed here, only for points that get a Hessian)."""
        Hx = model.hess(xx, lam_) if hessian == "exact" else Bq
        hdiag = x.new_zeros(N)
        if barrier:
            z_ = ev["z"]
            if mi:
                hdiag[n:] += z_[n:].square().reciprocal_().mul_(mu)
            if il.numel() or iu.numel():
                dl, du = xx[il] - lbi, ubi - xx[iu]
                hdiag.index_add_(0, il, dl.square().reciprocal_().mul_(mu))
                hdiag.index_add_(0, iu, du.square().reciprocal_().mul_(mu))
        H = torch.diag(hdiag)
        H[:n, :n] += Hx
        return {**ev, "H": H}

    def pd_shift(z_):
        """Z/D − μ/D² on the barrier coordinates (slacks, bounded x), 0 elsewhere: added to the Hessian in the
        Newton matrix, it turns the primal barrier's μ/D² into the primal-dual Z/D. Equal on the central path
        (Z = μ/D); after μ decreases, Z still holds the old centre's duals, and the steps stay long where the
        primal barrier's first steps are cut to a few percent by the fraction-to-boundary rule."""
        shift = x.new_zeros(N)
        if mi:
            sl = z_[n:]
            shift[n:] = (zs - sl.reciprocal().mul_(mu)) / sl   # Z/D − μ/D² = (Z − μ/D)/D
        if il.numel() or iu.numel():
            xx = z_[:n]
            dl, du = xx[il] - lbi, ubi - xx[iu]
            shift.index_add_(0, il, (zl - dl.reciprocal().mul_(mu)) / dl)
            shift.index_add_(0, iu, (zu - du.reciprocal().mul_(mu)) / du)
        return shift

    def dual_step(z_old, z_new, dz_, zs_, zl_, zu_):
        """The duals' Newton step for Z D = μ at the primal step dz (ΔZ = μ/D − Z − (Z/D) ΔD), with their own
        fraction-to-boundary step, then kept within [μ/(κD), κμ/D], κ = 1e10 (as IPOPT safeguards them)."""
        def one(zd, d_old, dd, d_new):
            if not zd.numel():
                return zd
            inv = d_old.reciprocal()
            step = inv * mu - zd - zd * inv * dd
            neg = step < 0
            a = min(1.0, float((-0.995 * zd[neg] / step[neg]).min())) if bool(neg.any()) else 1.0
            inv_new = d_new.reciprocal()
            return torch.minimum(torch.maximum(zd + a * step, inv_new * (mu / 1e10)), inv_new * (1e10 * mu))
        xo, xn, dx = z_old[:n], z_new[:n], dz_[:n]
        return (one(zs_, z_old[n:], dz_[n:], z_new[n:]),
                one(zl_, xo[il] - lbi, dx[il], xn[il] - lbi),
                one(zu_, ubi - xo[iu], -dx[iu], ubi - xn[iu]))

    def merit(ev, lam_, e1, e2):
        return float(ev["phi"] + lam_ @ ev["c"] + 0.5 * e1 * (ev["c"] @ ev["c"]) + 0.5 * e2 * (ev["gL"] @ ev["gL"]))

    def max_step(z, dz):
        """Fraction-to-boundary: largest α ≤ 1 keeping slacks and bounded x at ≥ (1−τ) of their distance."""
        tau = 0.995
        xx, dx = z[:n], dz[:n]
        dist = torch.cat([z[n:], xx[il] - lbi, ubi - xx[iu]])  # slacks, then distances to the bounds
        dd = torch.cat([dz[n:], dx[il], -dx[iu]])              # their rates of change along dz
        if not dist.numel():
            return 1.0
        ratio = torch.where(dd < 0, -tau * dist / dd, torch.full_like(dist, math.inf))
        return min(1.0, float(ratio.min()))

    z = torch.cat([x, s])
    # primal-dual barrier: dual estimates for the slacks and the bounded coordinates, started on the central path
    # (z = μ/d); the Newton matrix's barrier block is Z/D instead of the primal μ/D² (see `pd_shift`)
    pd = barrier and barrier_hessian == "primal-dual"
    if pd:
        zs, zl, zu = z[n:].reciprocal() * mu, (x[il] - lbi).reciprocal() * mu, (ubi - x[iu]).reciprocal() * mu
    if hessian == "bfgs":
        Bq = torch.eye(n, device=dev, dtype=dt)
    estimate = lam0 is None and m
    ev = evaluate(z, lam, need_hess=not (estimate and hessian == "exact"))
    if estimate:  # least-squares multiplier estimate  min ‖∇φ + Jᵀλ‖
        lam = _lstsq(ev["J"].T, -ev["g"])
        ev["gL"] = ev["g"] + ev["J"].T @ lam
        if hessian == "exact":
            ev = evaluate(z, lam)
    e1, e2, dlt = eta1, eta2, delta
    bn_prev = None  # ‖∇L‖ at the previous Newton step (forcing term)

    for it in budget:
        cert = _certificates(ev, lam, z, n, me, mi, mu, lbt, ubt, hasl, hasu, il, iu)
        # the iteration's scalars in one read: subproblem KKT residual, φ, f, ‖c‖, ‖Jᵀc‖, ‖J‖
        kkt_sub, phi_k, f_k, cn, jtc, jn = torch.stack([
            torch.cat([ev["gL"], ev["c"]]).abs().max() if N + m else ev["f"].new_zeros(()),
            ev["phi"].reshape(()), ev["f"].reshape(()), ev["c"].norm(), (ev["J"].T @ ev["c"]).norm(),
            ev["J"].norm()]).tolist()
        if not (math.isfinite(kkt_sub) and math.isfinite(phi_k)):
            status, message = Status.NUMERICAL_ERROR, f"non-finite objective/derivatives at iteration {it}"
            break
        if budget.report(it, x=z[:n], objective=f_k, kkt=cert["kkt"], eta1=e1, eta2=e2, mu=mu,
                         alpha=last_alpha):
            break
        action, value, note = _barrier_outer(cert, kkt_sub, mu, tol, barrier)
        while action == "next":   # a new barrier subproblem at this point; μ falls again while its error allows
            mu = value            # (IPOPT's fast decrease), so a μ step costs no iteration of its own
            ev = evaluate(z, lam, need_hess=True)
            bn_prev = None  # a new barrier subproblem: restart the forcing sequence
            cert = _certificates(ev, lam, z, n, me, mi, mu, lbt, ubt, hasl, hasu, il, iu)
            kkt_sub = float(torch.cat([ev["gL"], ev["c"]]).abs().max()) if N + m else 0.0
            action, value, note = _barrier_outer(cert, kkt_sub, mu, tol, barrier)
        if action == "stop":
            status, message = value, note
            break
        # -- stalled far from feasibility (30 iterations, < 1% progress): is any less-violating point near?
        feas_hist.append(cert["feasibility"])
        if (least is None and len(feas_hist) > 30 and cert["feasibility"] > feas_thr
                and feas_hist[-1] > 0.99 * feas_hist[-31]):
            least = _least_violation(model, z[:n], me, lbt, ubt)
            if least[2] and least[1] > 10 * feas_thr:  # a stationary point of the violation, well above zero
                status = Status.INFEASIBLE
                break
        # -- locally infeasible: Jᵀc ≈ 0 with c ≠ 0 (a stationary point of ‖c‖²)
        if cn > 1e-6 and jtc <= 1e-8 * max(1.0, cn) * max(1.0, jn):
            infeas_streak += 1
            if infeas_streak >= 3:
                # confirmed by the least-violation check: where ∇c vanishes with c (NOTEARS' h(W) near a DAG)
                # Jᵀc ≈ 0 holds at points that are nearly feasible
                least = _least_violation(model, z[:n], me, lbt, ubt)
                if least[2] and least[1] > 10 * feas_thr:
                    status = Status.INFEASIBLE
                    break
                infeas_streak = -30  # not infeasible: look again only after 30 more such iterations
        else:
            infeas_streak = 0

        # -- Newton–KKT system with Hessian modification / LICQ regularization
        H = ev["H"]
        J = ev["J"]
        svd_J = torch.linalg.svd(J, full_matrices=True) if m else None  # shared: null space and rank test
        Hn = H + torch.diag(pd_shift(z)) if pd else H   # the Newton matrix's Hessian (the merit keeps H)
        B = _modify_hessian(Hn, J, xi_B, paper=accuracy == "paper", svd=svd_J) if hessian == "exact" else Hn
        K = torch.zeros(N + m, N + m, device=dev, dtype=dt)
        K[:N, :N] = B
        K[:N, N:] = J.T
        K[N:, :N] = J
        rankdef = bool(m) and _rank_deficient(J, svd_J[1])
        rhs = -torch.cat([ev["gL"], ev["c"]])
        bn = float(rhs.norm())
        # merit gradient ∇L_η = (∇L + η₂H∇L + η₁Jᵀc, c + η₂J∇L): the true Hessian H (paper), one HVP-equivalent
        # product; the products do not depend on η, so the adaptation loop below only recombines them
        HgL, JTc, JgL = H @ ev["gL"], J.T @ ev["c"], J @ ev["gL"]

        dz = None
        slope = math.nan
        paper = _paper_constants(B, H, J, K, xi_B) if accuracy == "paper" and linear_solver == "sketch" else None
        for _ in range(60):  # penalty / accuracy adaptation loop (finite: η₁ ≤ 1e8, η₂ ≥ 1e-8)
            if paper is not None:
                dlt = min(dlt, _delta_trial(paper, e1, e2, beta))
            thr = _threshold(dlt, bn, bn_prev, sharpen, paper)
            t_left = None if time_limit is None else max(1e-3, time_limit - budget.elapsed)
            dz = _linear_solve(K, rhs, dz, thr, rankdef, linear_solver, sketch, sketch_size, max_inner, generator,
                               counts, t_left, sketch_grow, max_sketch_size)
            if dz is None:
                break
            gm = torch.cat([ev["gL"] + e2 * HgL + e1 * JTc, ev["c"] + e2 * JgL])
            slope = float(gm @ dz)
            if slope <= -0.5 * e2 * bn**2 or e1 > 1e8 or e2 < 1e-8:
                break
            e1, e2, dlt = e1 * nu**2, e2 / nu, dlt / nu**4
        bn_prev = bn
        if dz is None or not bool(torch.isfinite(dz).all()):
            status, message = Status.NUMERICAL_ERROR, f"KKT solve failed at iteration {it}"
            break
        if slope >= 0:  # not a descent direction even after adaptation: steepest descent on the merit
            dz = -gm
            slope = -float(gm @ gm)

        # -- Armijo line search on L_η (with fraction-to-boundary cap)
        m0 = merit(ev, lam, e1, e2)
        slack = 10 * torch.finfo(dt).eps * max(1.0, abs(m0))  # rounding of the merit in low precision
        accepted, alpha, zt, lt, evt = _armijo(evaluate, lambda e_, l_: merit(e_, l_, e1, e2), z, lam, dz, N,
                                               max_step(z, dz[:N]) if barrier else 1.0, m0, slope, slack, beta, rho)
        if not accepted:
            status = Status.SLOW_PROGRESS
            message = f"line search on the merit function failed at iteration {it}"
            break
        last_alpha = alpha
        unit_steps = unit_steps + 1 if alpha == 1.0 else 0
        if hessian == "bfgs":
            gl_old = ev["gx"] + ev["J"][:, :n].T @ lt if m else ev["gx"]
            gl_new = evt["gx"] + evt["J"][:, :n].T @ lt if m else evt["gx"]
            Bq = _damped_bfgs(Bq, zt[:n] - z[:n], gl_new - gl_old)
        if pd:
            zs, zl, zu = dual_step(z, zt, dz[:N], zs, zl, zu)
        z, lam = zt, lt
        ev = with_hessian(evt, z[:n], lam)  # the trial point's values, same μ and λ: only the Hessian is new

    if status is None:
        status = budget.status or Status.ITERATION_LIMIT
    x = z[:n]
    cert = _certificates(ev, lam, z, n, me, mi, mu, lbt, ubt, hasl, hasu, il, iu)
    worst = _worst(ev["cx"], me, mi, x, lbt, ubt)
    note = ""
    if status in (Status.ITERATION_LIMIT, Status.SLOW_PROGRESS) and cert["feasibility"] > feas_thr:
        # stalled away from the feasible set: INFEASIBLE only at a proven stationary point of the violation
        if _violation_stationary(float((ev["J"].T @ ev["c"]).norm()), float(ev["J"].norm()), float(ev["c"].norm())):
            status = Status.INFEASIBLE
        else:
            least = least or _least_violation(model, x, me, lbt, ubt)
            if least[2] and least[1] > 10 * feas_thr:
                status = Status.INFEASIBLE
            elif least[1] <= feas_thr:
                note = f"not infeasible: a point with violation {least[1]:.1e} lies near the last iterate"
    if status == Status.INFEASIBLE and least is not None:
        # name the constraint that stays violated at the least-violation point, not at the stalled iterate
        worst = _worst(model.cons(least[0]), me, mi, least[0], lbt, ubt)
        message = (f"locally infeasible: minimizing the total squared violation from the last iterate leaves "
                   f"{least[1]:.3e}; constraint {worst[0]}[{worst[1]}] has the largest violation {worst[2]:.3e} "
                   f"(iteration {it})")
    elif status == Status.INFEASIBLE:
        message = (f"locally infeasible: constraint {worst[0]}[{worst[1]}] has the largest violation "
                   f"{worst[2]:.3e} (iteration {it})")
    elif status == Status.ITERATION_LIMIT and not message:
        message = f"max_iter={max_iter} reached with KKT residual {cert['kkt']:.3e}"
    if note:
        message = f"{message}; {note}" if message else note
    duals = {"eq": lam[:me].clone(), "ineq": lam[me:].clone()}
    if barrier:
        duals["lb"] = torch.where(hasl, (x - lbt).clamp_min(1e-300).reciprocal() * mu, torch.zeros_like(x))
        duals["ub"] = torch.where(hasu, (ubt - x).clamp_min(1e-300).reciprocal() * mu, torch.zeros_like(x))
    return SolverOutput(x=x.clone(), status=status, objective=float(ev["f"]), iterations=it, message=message,
                        duals=duals, certificates=cert, counts=counts, history=budget.history,
                        solve_time=time.perf_counter() - t_start,
                        extras={"eta1": e1, "eta2": e2, "barrier_mu": mu, "worst_constraint": worst[:2],
                                "worst_violation": worst[2], "unit_steps_at_end": unit_steps,
                                "linear_solver": linear_solver, "sketch": sketch, "accuracy": accuracy,
                                "exact_projections": counts["exact_projections"],
                                "direct_fallbacks": counts["direct_fallbacks"],
                                "sketch_growths": counts["sketch_growths"]})


# ----------------------------------------------------------------------------------------------- helpers

def _bound(b, n, default, dev, dt, name):
    if b is None:
        return torch.full((n,), default, device=dev, dtype=dt)
    t = torch.as_tensor(b, dtype=dt).to(dev)
    if t.dim() == 0:
        t = t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"alsketch: {name} must be a scalar or have shape ({n},), got {tuple(t.shape)}")
    return t.clone()


def _interior_start(x, lbt, ubt):
    """Move x strictly inside the bounds (the barrier needs it); x0 itself is not touched."""
    hasl, hasu = torch.isfinite(lbt), torch.isfinite(ubt)
    if not (hasl.any() or hasu.any()):
        return x
    width = torch.where(hasl & hasu, ubt - lbt, torch.full_like(x, math.inf))
    push = torch.minimum(1e-2 * torch.maximum(x.abs(), torch.ones_like(x)), 0.5 * width)
    lo = torch.where(hasl, lbt + push, torch.full_like(x, -math.inf))
    hi = torch.where(hasu, ubt - push, torch.full_like(x, math.inf))
    return torch.minimum(torch.maximum(x, lo), hi)


def _lstsq(A, b):
    """Minimum-norm least squares (device-agnostic, via pinv)."""
    if A.shape[1] == 0:
        return A.new_zeros(0)
    return torch.linalg.pinv(A) @ b


def _rank_deficient(J, sv=None):
    sv = torch.linalg.svdvals(J) if sv is None else sv
    return bool(sv.numel() < J.shape[0] or sv[-1] <= 1e-10 * max(1.0, float(sv[0])))


def _modify_hessian(H, J, xi_B, paper=False, svd=None):
    """B = H when the reduced Hessian ZᵀHZ ⪰ 1e-8·I, else B = H + t·I with t = 4·|λ_min(ZᵀHZ)| + ξ_B: a shift
    sized by the negative curvature present (inertia correction, as IPOPT does), so ZᵀBZ ⪰ 3|λ_min| + ξ_B.

    paper=True: the reference code's t = ξ_B + ‖H‖₂, which the paper's constants assume; on Rosenbrock-type
    valleys (‖H‖ ~ 1e3, λ_min ~ -1) it shrinks every step to a gradient step of length 1/‖H‖, and a two-variable
    run crawls for hundreds of iterations (rosenbrock_disk: f = 2.64 after 500; 68 iterations to f = 5e-9 with
    the curvature-sized shift). On the HS set the two need the same Newton iterations (279 vs 282 in total) and
    sketching needs fewer inner iterations (1793 vs 2177 on HS 6/7/26/42/48); factors 1.1, 2 and 10 for
    |λ_min| were measured too (405, 293, 292 Newton iterations)."""
    N = H.shape[0]
    m = J.shape[0]
    if m:
        _, sv, Vh = torch.linalg.svd(J, full_matrices=True) if svd is None else svd
        r = int((sv > 1e-10 * max(1.0, float(sv[0]) if sv.numel() else 1.0)).sum())
        Z = Vh[r:].T
    else:
        Z = torch.eye(N, device=H.device, dtype=H.dtype)
    if Z.shape[1] == 0:
        return H
    Hs = 0.5 * (H + H.T)
    lmin = float(torch.linalg.eigvalsh(Z.T @ Hs @ Z)[0])
    if lmin >= 1e-8:
        return Hs
    if paper:
        t = xi_B + float(torch.linalg.matrix_norm(Hs, 2))  # the paper's rule: t = ξ_B + ‖H‖₂
    else:
        t = 4.0 * max(-lmin, 0.0) + xi_B
    return Hs + t * torch.eye(N, device=H.device, dtype=H.dtype)


def _threshold(dlt, bn, bn_prev, sharpen, paper=None):
    """Inner stopping threshold on ‖K dz + ∇L‖ (absolute) for the current Newton step.

    adaptive: δ_k ‖∇L_k‖ with δ_k = δ, or, when ``sharpen``, δ_k = min(δ, max(‖∇L_k‖, 0.9 r_k²)),
    r_k = ‖∇L_k‖/‖∇L_{k−1}‖ (an Eisenstat–Walker-type forcing term: δ_k → 0 exactly when the outer iteration
    converges superlinearly, so inexactness never limits the local rate, while under linear outer convergence,
    as at degenerate minima where K becomes ill-conditioned, the inner accuracy stays moderate).
    paper: δ_k ‖∇L_k‖ / (‖K‖ ψ) (reference code; δ already capped by δ_trial).
    """
    if sharpen:
        ew = 0.9 * (bn / bn_prev) ** 2 if bn_prev else dlt
        dlt = min(dlt, max(bn, ew))
    if paper is not None:
        return dlt * bn / (paper["Knorm"] * paper["psi"])
    return dlt * bn


def _paper_constants(B, H, J, K, xi_B):
    """ψ = 7 max(‖B‖², 1)/(min(λ_min(JJᵀ), 1) ξ_B) (bound on ‖K⁻¹‖), Υ = max(‖B‖, ‖H‖, ‖J‖), ‖K‖ (2-norms)."""
    nB = float(torch.linalg.matrix_norm(B, 2))
    nH = float(torch.linalg.matrix_norm(H, 2))
    nJ = float(torch.linalg.matrix_norm(J, 2)) if J.numel() else 0.0
    lmin = float(torch.linalg.eigvalsh(J @ J.T)[0]) if J.shape[0] else 1.0
    psi = 7 * max(nB**2, 1.0) / (max(min(lmin, 1.0), 1e-300) * xi_B)
    return {"psi": psi, "Ups": max(nB, nH, nJ), "Knorm": float(torch.linalg.matrix_norm(K, 2))}


def _delta_trial(c, e1, e2, beta):
    """δ_trial = (½ − β) η₂ / (2ψ² (3Υ + 4η₂Υ² + η₁Υ²)) (reference code; guarantees the descent test)."""
    U = c["Ups"]
    return (0.5 - beta) * e2 / (2 * c["psi"] ** 2 * (3 * U + 4 * e2 * U**2 + e1 * U**2))


def _linear_solve(K, rhs, dz0, thr, rankdef, linear_solver, sketch, sketch_size, max_inner, generator, counts,
                  t_left=None, grow=True, max_sketch_size=None):
    if linear_solver == "direct" or rankdef:
        # rank-deficient J makes K z = b inconsistent, where projections never meet the accuracy test:
        # take the minimum-norm least-squares step directly (counted as a direct fallback of the sketch path)
        if dz0 is not None:
            return dz0
        if linear_solver == "sketch":
            counts["direct_fallbacks"] += 1
        dz = None
        if not rankdef:
            try:
                dz = torch.linalg.solve(K, rhs)
            except RuntimeError:
                dz = None
        if dz is None:  # singular (e.g. LICQ fails): minimum-norm least-squares step
            dz = torch.linalg.pinv(K, hermitian=True) @ rhs
        counts["linear_iterations"] += 1
        return dz
    Ntot = K.shape[0]
    q = sketch_size if sketch_size is not None else max(1, math.ceil(Ntot / 2))
    # symmetric row-norm equilibration D K D: barrier terms make row scales differ by orders of magnitude,
    # which slows Kaczmarz-type methods; ‖K dz − b‖ ≤ ‖D(K dz − b)‖ / min(D) keeps the test conservative
    d = K.norm(dim=1).clamp_min(1e-300).rsqrt()
    y0 = None if dz0 is None else dz0 / d
    out = sk.solve(d[:, None] * K * d[None, :], d * rhs, x0=y0, sketch=sketch, sketch_size=min(q, Ntot),
                   atol=thr * float(d.min()), tol=0.0, max_iter=max_inner, generator=generator, symmetric=True,
                   # stop a sketch that stalls at its largest block (e.g. at the float32 rounding floor) and let
                   # the descent test judge the step, rather than burning max_inner iterations
                   time_limit=t_left, grow=grow, stall_windows=5,
                   # by default never grow to the whole system: that projection would be a direct solve
                   max_sketch_size=max_sketch_size if max_sketch_size is not None else max(1, Ntot - 1))
    out.x = d * out.x
    for k in ("linear_iterations", "operator", "sketch_growths", "exact_projections"):
        counts[k] += out.counts[k]
    if out.status == Status.NUMERICAL_ERROR:
        return None
    return out.x


def _damped_bfgs(B, s, y):
    """Powell-damped BFGS update (keeps B positive definite)."""
    sBs = float(s @ B @ s)
    if sBs <= 1e-16:
        return B
    sy = float(s @ y)
    theta = 1.0 if sy >= 0.2 * sBs else 0.8 * sBs / (sBs - sy)
    r = theta * y + (1 - theta) * (B @ s)
    Bs = B @ s
    return B - torch.outer(Bs, Bs) / sBs + torch.outer(r, r) / float(s @ r)


def _certificates(ev, lam, z, n, me, mi, mu, lbt, ubt, hasl, hasu, il=None, iu=None):
    """KKT residuals of the *original* problem (∞-norms): stationarity, feasibility, complementarity.

    Bound duals z_l = μ/(x − l), z_u = μ/(u − x) on the bounded coordinates. Each group's maxima are read
    in one transfer (one sync per iteration on a GPU, not one per group)."""
    x = z[:n]
    if il is None:
        il, iu = torch.nonzero(hasl).reshape(-1), torch.nonzero(hasu).reshape(-1)
    dl, du = x[il] - lbt[il], ubt[iu] - x[iu]
    zl, zu = dl.clamp_min(1e-300).reciprocal() * mu, du.clamp_min(1e-300).reciprocal() * mu
    gx = ev["gx"] + (ev["J"][:, :n].T @ lam if lam.numel() else 0)
    r = gx.clone() if isinstance(gx, torch.Tensor) else torch.full_like(x, float(gx))
    r.index_add_(0, il, -zl)
    r.index_add_(0, iu, zu)
    cE, cI = ev["cx"][:me], ev["cx"][me:]
    lamI = lam[me:]
    groups = [[r.abs()] if n else [],
              [cE.abs(), cI.clamp_min(0), (-dl).clamp_min(0), (-du).clamp_min(0)],
              [(lamI * cI).abs(), (zl * dl).abs(), (zu * du).abs(), lamI.clamp_max(0).abs()]]
    parts = [[v for v in g if v.numel()] for g in groups]
    flat = [v.max() for g in parts for v in g]
    vals = torch.stack(flat).tolist() if flat else []
    out, k = [], 0
    for g in parts:
        out.append(max(vals[k:k + len(g)] + [0.0]))
        k += len(g)
    stat, feas, compl = out
    return {"stationarity": stat, "feasibility": feas, "complementarity": compl, "kkt": max(stat, feas, compl)}


def _barrier_outer(cert, kkt_sub, mu, tol, barrier):
    """The barrier outer loop's decision, shared by dense and structured mode: ("stop", status, message),
    ("next", μ', "") for a new barrier subproblem, or (None, None, "") to keep iterating this one."""
    if cert["kkt"] <= tol and (not barrier or mu <= tol):
        return "stop", Status.LOCALLY_OPTIMAL, ""
    if barrier and kkt_sub <= 10 * mu:
        if mu <= tol:  # barrier floor reached: primal-barrier duals μ/(x−l) limit accuracy to ~100·tol
            if cert["kkt"] <= 100 * tol:
                return "stop", Status.LOCALLY_OPTIMAL, ""
            return "stop", Status.SLOW_PROGRESS, (f"barrier subproblem solved at mu={mu:.1e} but the KKT residual "
                                                  f"is {cert['kkt']:.2e}")
        return "next", max(tol, min(mu / 5, mu**1.5)), ""
    return None, None, ""


def _armijo(evaluate, merit, z, lam, dz, N, alpha, m0, slope, slack, beta, rho):
    """Backtracking on the merit from step ``alpha``: the first α·ρ^k with merit ≤ m0 + β α slope (+ rounding
    slack). Returns (accepted, α, z_t, λ_t, evaluation at the trial point); shared by dense and structured mode."""
    for _ in range(60):
        zt, lt = z + alpha * dz[:N], lam + alpha * dz[N:]
        et = evaluate(zt, lt, need_hess=False)
        mt = merit(et, lt)
        if math.isfinite(mt) and mt <= m0 + beta * alpha * slope + slack:
            return True, alpha, zt, lt, et
        alpha *= rho
    return False, alpha, zt, lt, et


def _violation_stationary(jtv: float, jnorm: float, vnorm: float, rtol: float = 1e-6) -> bool:
    """A stationary point of ½‖v‖² with v ≠ 0: ‖Jᵀv‖ ≤ rtol·max(‖J‖_F, 1)·‖v‖ (v nearly orthogonal to J's range;
    the floor 1 keeps a Jacobian that vanishes at the point, x² + 1 = 0 at x = 0, from hiding stationarity)."""
    return vnorm > 0 and jtv <= rtol * max(jnorm, 1.0) * vnorm


def _least_violation(model, x, me, lbt, ubt):
    """(x_r, ‖v(x_r)‖∞, proven) for a local minimizer x_r of φ = ½‖c_E‖² + ½‖max(c_I, 0)‖² within the bounds,
    from x (L-BFGS-B on φ, warm-started at x).

    ``proven``: x_r is a stationary point of φ with a positive value (projected ‖∇φ‖ = ‖Jᵀv‖ at most 1e-6·‖J‖‖v‖),
    which certifies local infeasibility. L-BFGS-B stopped by its iteration cap on an ill-conditioned violation
    (a hanging chain of 200 links) proves nothing, and the model is then not called infeasible.
    """
    from optdsl.solvers import lbfgs

    def violation(xx):
        c = model.cons(xx)
        return torch.cat([c[:me], c[me:].clamp_min(0)])

    def phi(xx):
        v = violation(xx)
        return 0.5 * (v * v).sum()
    out = lbfgs.minimize(phi, x.detach(), lb=lbt.cpu().numpy(), ub=ubt.cpu().numpy(), max_iter=500, tol=1e-14)
    xr = out.x.to(device=x.device, dtype=x.dtype) if out.x is not None else x.detach()
    with torch.no_grad():
        v = violation(xr)
    if not v.numel():
        return xr, 0.0, False
    J = torch.autograd.functional.jacobian(violation, xr)
    g = J.T @ v
    # projected gradient: a bound that holds the point back does not count against stationarity
    g = torch.where(((xr <= lbt) & (g > 0)) | ((xr >= ubt) & (g < 0)), torch.zeros_like(g), g)
    proven = _violation_stationary(float(g.norm()), float(J.norm()), float(v.norm()))
    return xr, float(v.abs().max()), proven


def _worst(cx, me, mi, x, lbt, ubt):
    """(group, index, violation) of the most violated constraint."""
    cands = []
    if me:
        v = cx[:me].abs()
        i = int(v.argmax())
        cands.append(("eq", i, float(v[i])))
    if mi:
        v = cx[me:].clamp_min(0)
        i = int(v.argmax())
        cands.append(("ineq", i, float(v[i])))
    for name, v in (("lb", (lbt - x).clamp_min(0)), ("ub", (x - ubt).clamp_min(0))):
        v = torch.nan_to_num(v, nan=0.0)
        if v.numel():
            i = int(v.argmax())
            cands.append((name, i, float(v[i])))
    return max(cands, key=lambda t: t[2]) if cands else ("", -1, 0.0)
