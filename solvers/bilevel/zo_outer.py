"""Zeroth-order outer loop on the hyper-objective: a leader objective without gradients (a black box).

    F(x) = f(x, y*(x)),      y*(x) = argmin_y { g(x, y) : h(x, y) <= 0, e(x, y) = 0 },      x in [lo, hi]

f is only evaluated (it may be a simulator, a table look-up, anything returning a number); g and h must be
smooth in y, and the follower's answer unique (strongly convex in y, or strictly so on its active constraints).
Each evaluation of F solves the follower by its own gradient method, warm-started at the previous y*:

* no follower constraints: Newton-PCG (`newton_follower`, the follower of the ``hyper`` method);
* with constraints: SLSQP on the follower with autograd Jacobians (`kkt_follower.KKTFollower.solve_follower`).

Leader constraints G(x, y) <= 0 (they may read the follower's y) become black-box constraints G(x, y*(x)) <= 0
of zo's augmented Lagrangian (`zo.minimize_constrained`: ITERATION_LIMIT while the violation exceeds its ctol).
The leader is `optdsl.solvers.zo.minimize` on F over the box (projection), with its defaults: two-point
Gaussian estimates, ``lr="auto"`` (steps divided by the running RMS of the estimate and probed from x0, so
F and c·F give the same run), a linear decay, a fixed ``seed``. The status is zo's: ITERATION_LIMIT unless its
stationarity test passes (the estimated projected gradient fell by 1/``gtol`` against x0: LOCALLY_OPTIMAL);
the follower is checked at the end (``residual_y``, the KKT residual or Newton step; ``lower_level_gap``).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..common import Status
from ._core import _NOBATCH, NonFinite, Setup, finish
from .hyper import KKT_MAX_FOLLOWER, _box
from .newton_follower import LinearSolver, NotStronglyConvex, _flat, _unflat, newton_follower

DEFAULT_MAX_ITER = 100
DENSE_CHECK_MAX = 500   # followers up to this size get the dense Hessian check at the start


def _check_strongly_convex(o, x, y) -> None:
    """NotStronglyConvex when grad2_yy g(x, y) has an eigenvalue <= 1e-10 of its largest (dense; small y)."""
    yl = tuple(p.detach().requires_grad_(True) for p in y)
    n = sum(p.numel() for p in yl)
    if n > DENSE_CHECK_MAX:
        return
    with torch.enable_grad():
        gv = o("g", tuple(p.detach() for p in x), yl, _NOBATCH)
        gy = torch.autograd.grad(gv, yl, create_graph=True, allow_unused=True)
        flat = torch.cat([(torch.zeros_like(p) if q is None else q).reshape(-1) for q, p in zip(gy, yl)])
        rows = []
        for i in range(n):
            r = (torch.autograd.grad(flat[i], yl, retain_graph=True, allow_unused=True) if flat.requires_grad
                 else (None,) * len(yl))
            rows.append(torch.cat([(torch.zeros_like(p) if q is None else q).reshape(-1) for q, p in zip(r, yl)]))
    H = torch.stack(rows).detach().cpu().double().numpy()
    ev = np.linalg.eigvalsh(0.5 * (H + H.T))
    if ev.min() <= 1e-10 * max(1.0, float(np.abs(ev).max())):
        raise NotStronglyConvex(f"Hessian eigenvalue {ev.min():.3g}")


def hyper_zo(f, g, x0, y0, *, bounds_x=None, lower_constraints=None, lower_equalities=None,
             leader_constraints=None, leader_equalities=None, ctol: float = 1e-6,
             max_iter: int = DEFAULT_MAX_ITER, tol=None, gtol=None, lr="auto", q: int = 1, eps=None, seed: int = 0,
             time_limit=None, callback=None, device=None, dtype=None, certify_gap: bool = True, ytol: float = 1e-11):
    """min over the leader's box of F(x) = f(x, y*(x)) by zeroth-order steps (module docstring).

    ``bounds_x = (lo, hi)`` per leader part (None = unbounded); ``lower_constraints(x, y) <= 0`` and
    ``lower_equalities(x, y) == 0`` the follower's constraints (its bounds included); ``leader_constraints(x, y)
    <= 0`` and ``leader_equalities(x, y) == 0`` the leader's (they may read y: evaluated at (x, y*(x)), by zo's
    augmented Lagrangian, ``max_iter`` steps per round; ``duals["leader_ineq"/"leader_eq"]``). ``lr``, ``q``, ``eps``,
    ``seed``, ``gtol``, ``tol``: `optdsl.solvers.zo.minimize`'s. Returns ``x = (x, y)``; certificates
    ``grad_estimate_norm`` (an estimate, not a proof), ``residual_y``, ``lower_level_gap``; ``counts["follower"]``
    the follower solves (2q per step plus the probes).
    """
    from .. import zo
    from ..zo.auto import GTOL
    from .gap import stacked
    h_in, m_in = lower_constraints, 0
    h_all = stacked(lower_constraints, lower_equalities)
    S = Setup(f, g, x0, y0, max_iter=max_iter, tol=0.0, device=device, dtype=dtype, lower_constraints=h_all)
    o = S.orc
    if h_all is not None:
        from .kkt_follower import KKTFollower
        if S.ys.numel > KKT_MAX_FOLLOWER:
            raise ValueError(f"a zeroth-order leader with follower constraints takes followers of up to "
                             f"{KKT_MAX_FOLLOWER} variables (SLSQP), this one has {S.ys.numel}")
        with torch.no_grad():
            m_in = 0 if h_in is None else h_in(S.xs.pack(S.x0), S.ys.pack(S.y0)).reshape(-1).numel()
        kkt = KKTFollower(o, S.y0, m_in)
    else:
        lin = LinearSolver(sum(p.numel() for p in S.y0), eps=torch.finfo(S.dtype).eps)
    state = {"y": S.y0, "info": {}}

    def follower(x):
        if h_all is not None:
            y, active, lam, info = kkt.solve_follower(x, state["y"])
            kkt.lam = (active, lam)
            info = {**info, "residual": info["kkt_residual"],
                    "converged": info["kkt_residual"] <= 1e-7 and info["lower_infeasibility"] <= 1e-8}
        else:
            y, info = newton_follower(o, x, state["y"], lin, ytol=ytol)
        S.counts["follower"] = S.counts.get("follower", 0) + 1
        state["y"], state["info"] = y, info
        return y

    like = S.x0
    lo, hi = _box(bounds_x, like)
    x_start = np.clip(_flat(S.x0), lo, hi)

    solved: dict = {}   # y*(x) at points met again (the lr probes all start with the same perturbations of x0)

    def at(xv: torch.Tensor):
        """(x, y*(x)) for the flat leader point xv."""
        xn = xv.detach().cpu().double().numpy()
        x, key = _unflat(xn, like), xn.tobytes()
        if key not in solved:
            solved[key] = follower(x)
            if len(solved) > 64:
                solved.pop(next(iter(solved)))
        return x, solved[key]

    def F(xv: torch.Tensor) -> float:
        x, y = at(xv)
        with torch.no_grad():   # f itself is evaluated every time: a noisy black box must show its noise
            return float(o("f", x, y, _NOBATCH))

    def leader_rows(fn):
        """A leader constraint as a function of x alone: fn(x, y*(x))."""
        if fn is None:
            return None

        def rows(xv):
            x, y = at(xv)
            with torch.no_grad():
                return fn(S.xs.pack(x), S.ys.pack(y)).detach().reshape(-1).double()
        return rows

    lb = None if not np.isfinite(lo).any() else torch.as_tensor(lo)
    ub = None if not np.isfinite(hi).any() else torch.as_tensor(hi)
    try:   # a unique follower answer at the start, or F is not a function of x (f has no gradient to check)
        x_first = _unflat(x_start, like)
        y_first = follower(x_first)
        if h_all is not None:
            kkt.evaluate(x_first, y_first)    # raises NotStronglyConvex on a flat reduced Hessian
        else:
            _check_strongly_convex(o, x_first, y_first)
    except NotStronglyConvex as e:
        text = str(e.args[0]) if e.args else ""
        where = text.split("in y (", 1)[1].split(")", 1)[0] if "in y (" in text else "a flat Hessian direction"
        raise ValueError("a zeroth-order leader needs a unique follower answer y*(x), and the follower is not "
                         f"strongly convex in y at the start ({where}): add a strongly convex term (a small "
                         "ridge ε‖y‖²) or constraints that pin y") from None
    zkw = dict(lb=lb, ub=ub, lr=lr, q=q, eps=eps, seed=seed, tol=tol, gtol=GTOL if gtol is None else gtol,
               time_limit=time_limit, callback=callback, dtype=torch.float64)
    x_init = torch.as_tensor(x_start, dtype=torch.float64)
    if leader_constraints is None and leader_equalities is None:
        out = zo.minimize(F, x_init, max_iter=max_iter, **zkw)
    else:   # G(x, y*(x)) <= 0, H(x, y*(x)) = 0: black-box constraints in x, by zo's augmented Lagrangian
        out = zo.minimize_constrained(F, x_init, ineq=leader_rows(leader_constraints),
                                      eq=leader_rows(leader_equalities), inner_iter=max_iter, ctol=ctol, **zkw)
    status, message = out.status, f"zeroth-order leader: {out.message}"
    xf = out.x.detach().cpu().double().numpy().reshape(-1)
    x = _unflat(xf, like)
    certs = {k: v for k, v in out.certificates.items()}
    obj = None
    try:
        y = follower(x)
        with torch.no_grad():
            obj = float(o("f", x, y, _NOBATCH))
        certs["residual_y"] = state["info"].get("residual", math.nan)
        if not state["info"].get("converged", True) and status == Status.LOCALLY_OPTIMAL:
            status, message = Status.ITERATION_LIMIT, f"{message}; the follower's last solve did not converge"
    except NonFinite as e:
        status, message, y = Status.NUMERICAL_ERROR, f"{message}; {e} at the final point", state["y"]
    if certify_gap and status != Status.NUMERICAL_ERROR:
        from .gap import certify, two_sided
        c = certify(S.f, S.g, S.xs, S.ys, x, y, lower_constraints=None if h_all is None else two_sided(h_all, m_in))
        c.pop("lower_infeasibility", None)
        certs.update(c)
    S.counts["f_leader"] = out.counts.get("f", 0)
    res = finish(S.budget, (S.xs.pack(x), S.ys.pack(y)), status, message, obj, out.iterations, S.counts, certs,
                 {"method": "zo", "lr": out.extras.get("lr"), "seed": seed, "eps": out.extras.get("eps")})
    res.history = out.history
    for key in ("ineq", "eq"):   # the leader's multipliers (augmented Lagrangian), in F's space
        if out.duals.get(key) is not None and out.duals[key].numel():
            res.duals["leader_" + key] = out.duals[key]
    if "feasibility" in out.certificates:
        res.certificates["leader_feasibility"] = float(out.certificates["feasibility"])
    if h_all is not None and m_in:
        with torch.no_grad():
            m_all = int(h_all(S.xs.pack(x), S.ys.pack(y)).numel())
        res.duals["lower"] = torch.as_tensor(kkt.multipliers(m_all)[:m_in], dtype=S.dtype)
    return res
