"""Zeroth-order minimization of a black-box f: R^d -> R on a flat tensor, with bounds by projection.

    x_{k+1} = P_C( x_k − η_k · U(ĝ_k) ),     ĝ_k from a ZO estimator at x_k,

where U is an update rule of `optim` (SGD, momentum, sign, Adam, conservative) and P_C the projection onto
the box [lb, ub] or a user projection. Estimators (``estimator=``):

* ``"gaussian"`` / ``"rademacher"``: two-point (central by default) with q queries, seeded and in place on
  the solver's own working copy of x (MeZO-style; Nesterov & Spokoiny 2017, Spall 1992, Malladi et al. 2023);
* ``"sparse"``: Gaussian directions masked to the ``keep`` fraction of smallest-|x| coordinates
  (Sparse-MeZO, Liu et al. 2024);
* ``"coordinate"``: CGE over all coordinates or a random block of ``coord_batch`` per step (DeepZero);
* ``"forward"``: forward gradient (jvp) -- needs f in differentiable torch ops (Baydin et al. 2022);
* ``"rank"``: ZO-RankSGD from value comparisons or a ``rank_oracle`` (Tang et al., ICLR 2024).

Failures of f (raises, non-scalar, NaN/inf) end the run with a status (OTHER_ERROR / NUMERICAL_ERROR) and a
message naming the iteration; the iterate before the failure is returned.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

import torch

from ..common import Budget, SolverOutput, Status, resolve_device
from ..oracles.zo_coordinate import coordinate
from ..oracles.zo_forward import forward_gradient
from ..oracles.zo_noise import derive_seed
from ..oracles.zo_rank import rank_direction
from ..oracles.zo_twopoint import (ZOEvalError, ZONonFinite, check_eps, check_q, safe_eval, two_point)
from .auto import (GTOL, START_TAG, Backoff, RmsNormalizer, blew_up, dense_sq_norm, is_auto, lengths, probe,
                   probe_horizon, probe_score, stationary, window)
from .optim import DenseUpdate, check_optimizer, make_schedule

ESTIMATORS = ("gaussian", "rademacher", "sparse", "coordinate", "forward", "rank")


def box_projection(lb=None, ub=None, like: Optional[torch.Tensor] = None) -> Optional[Callable]:
    """Projection onto {lb <= x <= ub} (scalars or tensors shaped like x); None when both are None."""
    if lb is None and ub is None:
        return None
    d = like.numel() if like is not None else None

    def as_t(b, name):
        if b is None:
            return None
        t = torch.as_tensor(b, dtype=like.dtype, device=like.device)
        if t.numel() not in (1, d):
            raise ValueError(f"{name} must be a scalar or have {d} entries like x0, got shape {tuple(t.shape)}")
        return t.reshape(-1) if t.numel() == d else t
    lo, hi = as_t(lb, "lb"), as_t(ub, "ub")
    if lo is not None and hi is not None and bool((lo > hi).any()):
        raise ValueError("bounds: some lb > ub")
    return lambda x: x.clamp_(min=lo, max=hi)


def minimize(f: Callable[[torch.Tensor], Any], x0: torch.Tensor, *, estimator: str = "gaussian", q: int = 1,
             eps: Optional[float] = None, lr="auto", optimizer: str = "sgd", schedule: Optional[str] = None,
             warmup: int = 0, momentum: float = 0.9, betas=(0.9, 0.999), antithetic: bool = True,
             keep: float = 0.5, coord_batch: Optional[int] = None, vectorized: bool = False, rank_oracle=None,
             rank_m: int = 4, lb=None, ub=None, projection: Optional[Callable] = None, seed: int = 0,
             max_iter: int = 1000, tol: Optional[float] = None, gtol: float = GTOL,
             time_limit: Optional[float] = None, callback=None, device=None, dtype=None,
             log_every: int = 1) -> SolverOutput:
    """Minimize a black-box ``f(x) -> scalar`` from ``x0`` with zeroth-order estimates.

    Args:
        f: objective on a 1-D tensor (the solver's working copy; do not keep references to it). Returns a
            Python float or a one-element tensor. ``vectorized=True`` (coordinate estimator only): f takes
            a (B, d) batch and returns B values.
        x0: starting point, any shape (flattened internally; the result has x0's shape). Not modified.
        estimator: one of ``ESTIMATORS``. q: queries per estimate (>= 1). eps: smoothing radius (> 0),
            also the coordinate step μ and the rank perturbation radius. Default 1e-3; with lr="auto" it is
            raised when repeated evaluations at x0 show noise, so that a difference measures the slope
            rather than the noise (``_noise_eps``; an eps you pass is used as given).
        lr, optimizer, schedule, warmup, momentum, betas: see ``optdsl.solvers.zo.optim``. ``lr="auto"``
            (default): the estimate is divided by its running RMS (so f and c·f give the same run) and the
            step length is probed on a short horizon from x0 (``zo.auto``); the schedule then defaults to
            "linear" (a numeric lr: "constant"), and an auto run that completes ``max_iter`` ends
            LOCALLY_OPTIMAL when the estimated projected gradient fell by 1/``gtol`` (a statistical test:
            10 % of max_iter extra estimates at x0 against the last 10 % of the steps), else ITERATION_LIMIT.
        antithetic: central differences (default) vs forward differences sharing f(x).
        keep: fraction of coordinates perturbed by ``"sparse"``. coord_batch: coordinates per step for
            ``"coordinate"`` (default: all). rank_oracle / rank_m: ZO-RankSGD oracle and candidates.
        lb, ub / projection: bounds handled by projection after every step (or a custom projection
            ``P(x) -> x``, may work in place).
        seed: run seed; step k uses ``derive_seed(seed, k)``. max_iter, tol, time_limit, callback: budget.
            ``tol``: stop (LOCALLY_OPTIMAL) when the running mean of ‖ĝ‖ over the last 10 steps is < tol.

    Returns:
        SolverOutput with ``x`` (shape of x0), ``objective`` = f(x) at the end, ``history`` (per
        iteration: loss estimate, grad_norm, variance, lr, evals), ``counts["f"]`` and certificates
        ``{"grad_estimate_norm": ...}`` (an estimate, not a proof); ``extras["lr"]`` the step used.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if not isinstance(x0, torch.Tensor):
        x0 = torch.as_tensor(x0)
    if x0.numel() == 0:
        raise ValueError("x0 is empty; expected at least one variable")
    eps_given = eps is not None
    eps = check_eps(eps) if eps_given else 1e-3
    q = check_q(q)
    check_optimizer(optimizer)
    if estimator == "rank" and optimizer != "sgd":
        raise ValueError("estimator='rank' gives a direction, not a gradient scale; use optimizer='sgd'")
    if tol is not None and not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    auto = is_auto(lr)
    if schedule is None:
        schedule = "linear" if auto else "constant"
    device, dtype = resolve_device(device, dtype, like=x0)
    x = x0.detach().to(device=device, dtype=dtype).reshape(-1).clone()
    proj = projection or box_projection(lb, ub, x)
    if proj is not None:
        x = proj(x)
    factor = make_schedule(1.0 if auto else lr, schedule, max_iter, warmup)
    upd = DenseUpdate(optimizer, momentum, betas)
    # sign and adam directions are scale-free already; the others are divided by their running RMS
    norm = RmsNormalizer() if auto and optimizer not in ("sign", "adam") else None
    shape = x0.shape
    fx = lambda v: f(v.view(shape))  # noqa: E731  (user sees x0's shape)
    counts = {"f": 0, "jac": 0}

    def estimate(x, k, s=None, free=None):
        """(ĝ, loss estimate, variance) at x for step k (seed ``s``, default that of step k); ``free``
        restricts gaussian/rademacher directions to those coordinates."""
        s = derive_seed(seed, k) if s is None else s
        where = f"iteration {k}"
        if estimator in ("gaussian", "rademacher", "sparse"):
            kind = "rademacher" if estimator == "rademacher" else "gaussian"
            masks = None if free is None else [free.to(x.dtype)]
            if estimator == "sparse":
                h = x.abs().kthvalue(max(1, int(round(keep * x.numel())))).values
                masks = [x.abs() <= h]
            est = two_point(lambda: fx(x), [x], seed=s, eps=eps, q=q, kind=kind, antithetic=antithetic,
                            masks=masks, where=where)
            counts["f"] += est.n_evals
            return est.dense([x], kind, masks)[0], est.loss, est.variance
        if estimator == "coordinate":
            coords = None
            if coord_batch is not None and coord_batch < x.numel():
                gen = torch.Generator().manual_seed(s)
                coords = torch.randperm(x.numel(), generator=gen)[:coord_batch].to(device)
            g, n, f0 = coordinate((lambda v: f(v.view(-1, *shape)) if vectorized else fx(v)), x, mu=eps,
                                  coords=coords, central=antithetic, vectorized=vectorized, where=where)
            if coords is not None:  # unbiased block-coordinate estimate
                g.mul_(x.numel() / coords.numel())
            counts["f"] += n
            return g, f0, 0.0
        if estimator == "forward":
            est = forward_gradient(fx, [x], seed=s, q=q, where=where)
            counts["jac"] += est.n_evals
            return est.dense([x])[0], est.f0, est.variance
        g, n, loss = rank_direction(x, seed=s, mu=eps, m=rank_m, f=None if rank_oracle else fx,
                                    rank=rank_oracle, where=where)
        counts["f"] += n
        return g, loss, 0.0

    def advance(x, k, step, upd, norm, held=None):
        """One step from x (in place); returns (x, ĝ, loss, variance). With lr="auto" on a box, ``held``
        (bool, updated in place) marks coordinates held at a bound by the gradient: directions skip them
        (a gradient into an active bound would otherwise add variance that never vanishes at the
        optimum), set every 10th step by one-sided inward differences on the coordinates at a bound."""
        free = None
        if held is not None:
            at = _at_bound(x, lb, ub)
            held &= at
            if k % 10 == 0 and bool(at.any()):
                held.copy_(_held(fx, x, at, lb, ub, eps, counts, f"iteration {k}"))
            if bool(held.any()) and not bool(held.all()):
                free = ~held
        g, loss, var = estimate(x, k, free=free)
        if not bool(torch.isfinite(g).all()):
            raise ZONonFinite(f"gradient estimate has NaN/inf at iteration {k}")
        gs = g if norm is None else g * norm.scale(float(g.double().pow(2).mean()))
        d = upd.direction(gs)
        if optimizer == "conservative":
            x = _conservative(fx, x, d, step, loss, counts, f"iteration {k}")
        else:
            x.add_(d, alpha=-step)
        if proj is not None:
            x = proj(x)
        return x, g, loss, var

    box = projection is None and proj is not None
    noise_info = None
    if auto and not eps_given and estimator in ("gaussian", "rademacher", "sparse", "coordinate"):
        try:
            eps, noise_info = _noise_eps(fx, x, eps, _length_scale(x, lb, ub, proj), counts)
        except ZOEvalError:
            pass   # the main loop reports the failing evaluation
    track_bounds = auto and box and estimator in ("gaussian", "rademacher")
    held = torch.zeros_like(x, dtype=torch.bool) if track_bounds else None
    probe_info = None
    if auto:
        def run(lr0):
            xp, up, npr, losses = x.clone(), DenseUpdate(optimizer, momentum, betas), \
                (norm.fresh() if norm is not None else None), []
            try:
                hp = torch.zeros_like(x, dtype=torch.bool) if track_bounds else None
                for k in range(probe_horizon(max_iter)):
                    xp, _, loss, _ = advance(xp, k, lr0, up, npr, hp)
                    losses.append(loss)
                    if blew_up(losses):
                        return math.inf
            except ZOEvalError:
                return math.inf
            return probe_score(losses)
        try:
            lr0, scores = probe(run, _length_scale(x, lb, ub, proj))
        except ZOEvalError:
            lr0, scores = 1e-3, {}
        probe_info = {"lr": lr0, "scores": scores}
    else:
        lr0 = 1.0
    backoff = Backoff(max_iter // 100) if auto else None
    eta = lambda k: lr0 * factor(k) * (backoff.factor if backoff else 1.0)  # noqa: E731
    budget = Budget(max_iter, time_limit, callback)
    status, message, gnorms, last_loss = None, "", [], None
    W = window(max_iter) if auto else 0
    if W and W * x.numel() > 2e7:   # two windows of dense estimates are kept: bound their memory
        W = int(2e7 // x.numel()) if 2e7 // x.numel() >= 20 else 0
    first, last = [], []
    if W:  # ‖∇f(x₀)‖ from W estimates at x₀ with their own seeds (the reference of the stationarity test)
        try:
            first = [estimate(x, i, derive_seed(seed, START_TAG, i))[0] for i in range(W)]
        except ZOEvalError:
            W = 0
    it, done = 0, 0
    try:
        for k in budget:
            it = k
            step = eta(k)
            x, g, loss, var = advance(x, k, step, upd, norm, held)
            if W and k >= max_iter - W:
                last.append(g.clone())
            if backoff is not None:
                backoff.update(loss)
            gn = float(g.norm())
            gnorms.append(gn)
            done = k + 1
            last_loss = loss
            rec = (k % log_every == 0)
            if budget.report(k, record=rec, x=x.view(shape), objective=loss, grad_norm=gn, variance=var,
                             lr=step, evals=counts["f"] + counts["jac"]):
                break
            if tol is not None and len(gnorms) >= 10 and sum(gnorms[-10:]) / 10 < tol:
                status, message = Status.LOCALLY_OPTIMAL, f"mean ‖ĝ‖ over 10 steps < tol={tol} at iteration {k}"
                break
    except ZONonFinite as exc:
        status, message = Status.NUMERICAL_ERROR, str(exc)
    except ZOEvalError as exc:
        status, message = Status.OTHER_ERROR, str(exc)
    except KeyboardInterrupt:
        budget.interrupt()
    status = status or budget.status or Status.ITERATION_LIMIT
    certificates = {"grad_estimate_norm": gnorms[-1] if gnorms else float("nan")}
    if status == Status.ITERATION_LIMIT and W and len(last) == W:
        mask = _free_mask(x, lb, ub, torch.stack(last).mean(0)) if box else None
        mask0 = _free_mask(x0.reshape(-1).to(x), lb, ub, torch.stack(first).mean(0)) if mask is not None else None
        ok, why, cert = stationary(dense_sq_norm(first, mask0), dense_sq_norm(last, mask), gtol)
        certificates.update(cert)
        if ok:
            status, message = Status.LOCALLY_OPTIMAL, f"completed max_iter={max_iter} steps; {why}"
        elif why:
            message = f"reached max_iter={max_iter}; {why}"
    objective = last_loss
    if status not in (Status.NUMERICAL_ERROR, Status.OTHER_ERROR):
        try:
            objective = safe_eval(fx, "the final point", x)
            counts["f"] += 1
        except ZOEvalError as exc:
            status, message = (Status.NUMERICAL_ERROR if isinstance(exc, ZONonFinite) else Status.OTHER_ERROR,
                               str(exc))
    if not message:
        message = {Status.ITERATION_LIMIT: f"reached max_iter={max_iter}",
                   Status.TIME_LIMIT: f"time limit {time_limit}s reached at iteration {it}",
                   Status.INTERRUPTED: f"interrupted at iteration {it}"}.get(status, "")
    return SolverOutput(x=x.view(shape), status=status, objective=objective,
                        iterations=done,
                        message=message, counts=counts, history=budget.history, solve_time=budget.elapsed,
                        certificates=certificates,
                        extras={"estimator": estimator, "optimizer": optimizer, "seed": seed,
                                "lr": lr0 if auto else lr, "lr_probe": probe_info, "eps": eps,
                                "noise": noise_info})


def _noise_eps(fx, x, eps, length, counts, repeats: int = 4, queries: int = 8) -> tuple[float, dict]:
    """A smoothing radius for a noisy f: the read-out noise s is the std of ``repeats`` evaluations at x;
    when s > 0, the slope scale G² = mean p² − s²/(2 eps²) comes from ``queries`` central differences
    (E p² = G² + s²/(2 eps²)), and eps grows until the noise in p, s/(√2 eps), is 5 % of G (at most a tenth
    of the length scale). A deterministic f keeps eps."""
    vals = [safe_eval(fx, "x0 (noise check)", x) for _ in range(repeats)]
    counts["f"] += repeats
    m = sum(vals) / repeats
    s = math.sqrt(sum((v - m) ** 2 for v in vals) / (repeats - 1))
    if s == 0.0:
        return eps, {"noise": 0.0}
    ps = []
    for i in range(queries):
        z = torch.randn(x.shape, generator=torch.Generator().manual_seed(1000 + i), dtype=x.dtype).to(x.device)
        ps.append((safe_eval(fx, "x0 (noise check)", x + eps * z) - safe_eval(fx, "x0 (noise check)", x - eps * z))
                  / (2 * eps))
    counts["f"] += 2 * queries
    g2 = sum(p * p for p in ps) / queries - s * s / (2 * eps * eps)
    g = math.sqrt(g2) if g2 > 0 else s / eps   # slope hidden in the noise: take it as large as the noise
    new = min(max(eps, s / (math.sqrt(2.0) * 0.05 * g)), 0.1 * length)
    return new, {"noise": s, "slope": g, "eps": new}


def _length_scale(x, lb, ub, proj) -> float:
    """Per-coordinate length for the lr probe: the median finite box width, else the RMS of x0, else 1."""
    if lb is not None and ub is not None:
        w = (torch.as_tensor(ub, dtype=torch.float64) - torch.as_tensor(lb, dtype=torch.float64)).reshape(-1)
        w = w[torch.isfinite(w) & (w > 0)]
        if w.numel():
            return float(w.median())
    return max(lengths([x]), 1.0) if proj is None else lengths([x])


def _held(fx, x, at, lb, ub, eps, counts, where) -> torch.Tensor:
    """Which coordinates at a bound the objective holds there: f does not decrease a step ``eps`` inward
    (one evaluation at x plus one per coordinate at a bound)."""
    f0 = safe_eval(fx, f"{where} (bound check)", x)
    counts["f"] += 1
    held = torch.zeros_like(at)
    hi = torch.as_tensor(ub, dtype=x.dtype, device=x.device).expand_as(x) if ub is not None else None
    lo = torch.as_tensor(lb, dtype=x.dtype, device=x.device).expand_as(x) if lb is not None else None
    for i in torch.nonzero(at).flatten().tolist():
        at_hi = hi is not None and bool(x[i] >= hi[i])
        room = float((x[i] - lo[i]) if at_hi and lo is not None else (hi[i] - x[i]) if not at_hi and hi is not None
                     else math.inf)
        step = min(eps, 0.5 * room) * (-1.0 if at_hi else 1.0)
        old = float(x[i])
        x[i] = old + step
        try:
            fi = safe_eval(fx, f"{where} (bound check)", x)
        finally:
            x[i] = old
        counts["f"] += 1
        held[i] = fi >= f0
    return held


def _at_bound(x, lb, ub) -> torch.Tensor:
    out = torch.zeros_like(x, dtype=torch.bool)
    if lb is not None:
        out |= x <= torch.as_tensor(lb, dtype=x.dtype, device=x.device)
    if ub is not None:
        out |= x >= torch.as_tensor(ub, dtype=x.dtype, device=x.device)
    return out


def _free_mask(x, lb, ub, gmean) -> torch.Tensor:
    """Coordinates that are not held at a bound by the mean gradient (the projected gradient's support)."""
    free = torch.ones_like(x, dtype=torch.bool)
    if lb is not None:
        lo = torch.as_tensor(lb, dtype=x.dtype, device=x.device).expand_as(x)
        free &= ~((x <= lo) & (gmean > 0))
    if ub is not None:
        hi = torch.as_tensor(ub, dtype=x.dtype, device=x.device).expand_as(x)
        free &= ~((x >= hi) & (gmean < 0))
    return free


def _conservative(fx, x, d, step, loss, counts, where):
    """ZO-SGD-Cons: keep the best of {x, x − ηd, x + ηd} (two extra evaluations)."""
    f0 = loss if loss is not None else safe_eval(fx, where, x)
    cands = [(f0, None), (None, -step), (None, step)]
    best_v, best_a = f0, 0.0
    for _, a in cands[1:]:
        x.add_(d, alpha=a)
        try:
            v = safe_eval(fx, f"{where} (conservative candidate)", x)
        finally:
            x.add_(d, alpha=-a)
        counts["f"] += 1
        if v < best_v:
            best_v, best_a = v, a
    return x.add_(d, alpha=best_a)


def minimize_constrained(f: Callable, x0: torch.Tensor, *, eq: Optional[Callable] = None,
                         ineq: Optional[Callable] = None, rho: float = 10.0, outer: int = 10,
                         inner_iter: int = 500, rho_growth: float = 2.0, ctol: float = 1e-4,
                         **kw) -> SolverOutput:
    """Black-box constraints by the augmented Lagrangian (method of multipliers) around ``minimize``.

    L_ρ(x, λ, μ) = f(x) + λᵀc(x) + (ρ/2)‖c(x)‖² + (1/2ρ)(‖max(0, μ + ρ h(x))‖² − ‖μ‖²)
    for eq(x) = c(x) = 0 and ineq(x) = h(x) <= 0 (vector callables); λ ← λ + ρc, μ ← max(0, μ + ρh),
    ρ grows by ``rho_growth`` when the violation did not fall by 4x. ``kw`` go to ``minimize``; a numeric
    ``lr`` is divided by (1 + ρ) in each inner solve, since the penalty adds ~ρ‖∇c‖² to the curvature.
    With lr="auto" (default) ρ starts at ``rho`` × |f(x0)| (when f(x0) ≠ 0), so the penalty keeps its weight
    against f whatever f's scale. Returns the last inner SolverOutput with duals {"eq", "ineq"} and
    certificate "feasibility"; a run whose violation is still above ``ctol`` after ``outer`` rounds is not
    reported as a success (ITERATION_LIMIT).
    """
    x = torch.as_tensor(x0).detach().clone()
    vec = lambda fn, v: torch.as_tensor(fn(v), dtype=torch.float64).reshape(-1) if fn else torch.zeros(0)  # noqa
    if not isinstance(kw.get("lr", "auto"), (int, float)) and not callable(kw.get("lr")):
        f0 = abs(safe_eval(f, "x0", x))
        rho = rho * f0 if f0 > 0 else rho
    lam = vec(eq, x) * 0
    mu = vec(ineq, x) * 0
    viol_prev, out, total, viol = math.inf, None, {"f": 0}, float("nan")
    for j in range(outer):
        def L(v, lam=lam, mu=mu, rho=rho):
            c, h = vec(eq, v), vec(ineq, v)
            val = torch.as_tensor(f(v), dtype=torch.float64).reshape(())
            val = val + lam @ c + 0.5 * rho * (c @ c)
            val = val + (torch.clamp(mu + rho * h, min=0).pow(2).sum() - mu.pow(2).sum()) / (2 * rho)
            return val
        inner = dict(kw)
        if isinstance(inner.get("lr"), (int, float)):   # "auto" (default) normalizes the step instead
            inner["lr"] = inner["lr"] / (1.0 + rho)
        inner["seed"] = kw.get("seed", 0) + j
        out = minimize(L, x, max_iter=inner_iter, **inner)
        total["f"] += out.counts.get("f", 0)
        if out.status in (Status.NUMERICAL_ERROR, Status.OTHER_ERROR, Status.INTERRUPTED, Status.TIME_LIMIT):
            break
        x = out.x.detach()
        c, h = vec(eq, x), vec(ineq, x)
        lam = lam + rho * c
        mu = torch.clamp(mu + rho * h, min=0)
        viol = float(torch.cat([c.abs(), h.clamp(min=0)]).max()) if c.numel() + h.numel() else 0.0
        if viol < ctol:
            break
        if viol > 0.25 * viol_prev:
            rho *= rho_growth
        viol_prev = viol
    out.duals = {"eq": lam, "ineq": mu}
    out.certificates["feasibility"] = viol if out.x is not None else float("nan")
    if (out.status.is_success or out.status == Status.ITERATION_LIMIT) and not viol < ctol:
        out.status = Status.ITERATION_LIMIT
        out.message = (f"constraint violation {viol:.3g} > ctol={ctol:g} after {j + 1} augmented-Lagrangian "
                       f"rounds; last inner run: {out.message}")
    out.counts = {**out.counts, "f": total["f"]}
    if out.status not in (Status.NUMERICAL_ERROR, Status.OTHER_ERROR):
        try:
            out.objective = safe_eval(f, "the final point", out.x)
        except ZOEvalError as exc:
            out.status = Status.NUMERICAL_ERROR if isinstance(exc, ZONonFinite) else Status.OTHER_ERROR
            out.message = str(exc)
    return out
