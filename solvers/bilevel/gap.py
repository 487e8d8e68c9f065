"""Lower-level optimality gap, the bilevel feasibility certificate.

    gap(x, y) = g(x, y) - v(x),      v(x) = min_{z in Y, h(x, z) <= 0} g(x, z)

(Kwon, Kwon, Wright, Nowak, ICLR 2024: the value-function reformulation min f s.t. g - v <= 0.)
v(x) is estimated by an inner solve started at z0 = y, so the estimate is a descent from y: the reported gap
is >= 0 up to round-off and is a *lower* bound on the true gap (the inner solve may stop early); a small
``residual`` (norm of the inner projected gradient / KKT residual) says the bound is tight.

Inner solvers: L-BFGS with strong-Wolfe line search (unconstrained ``Y``), projected gradient with Armijo
backtracking (``proj_y``), and for coupled constraints ``h(x, z) <= 0`` a method of multipliers
(L_rho = g + (rho/2) sum max(0, h + mu/rho)^2) around either of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ._core import Structure, make_projection


@dataclass
class GapResult:
    """gap = value_y - value_min; z is the inner minimizer found (user structure)."""

    gap: float
    value_y: float
    value_min: float
    z: Any
    residual: float
    infeasibility: float = 0.0


def _call(fn, xs, ys, x, z, batch):
    args = (xs.pack(x), ys.pack(z))
    return fn(*args) if batch is None else fn(*args, batch)


def _minimize(obj, z, proj, max_steps, tol):
    """Minimize obj(z_parts) from z; returns (z, residual)."""
    z = tuple(p.detach().clone().requires_grad_(True) for p in z)
    if proj is None:
        opt = torch.optim.LBFGS(list(z), lr=1, max_iter=max_steps, history_size=20, tolerance_grad=tol,
                                tolerance_change=1e-16, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            v = obj(z)
            v.backward()
            return v
        with torch.enable_grad():
            opt.step(closure)
            z = tuple(p.detach() for p in z)
            zl = tuple(p.clone().requires_grad_(True) for p in z)
            gr = torch.autograd.grad(obj(zl), zl, allow_unused=True)
        res = sum(float((gi ** 2).sum()) for gi in gr if gi is not None) ** 0.5
        return z, res
    # projected gradient with Armijo backtracking on the step
    z = proj(tuple(p.detach() for p in z))
    step, res = 1.0, float("inf")
    for _ in range(max_steps):
        zl = tuple(p.clone().requires_grad_(True) for p in z)
        with torch.enable_grad():
            v = obj(zl)
            gr = torch.autograd.grad(v, zl, allow_unused=True)
        gr = tuple(torch.zeros_like(p) if gi is None else gi for gi, p in zip(gr, z))
        v = float(v.detach())
        step = min(step * 2.0, 1e6)
        while True:
            zn = proj(tuple(p - step * gi for p, gi in zip(z, gr)))
            d = tuple(a - b for a, b in zip(zn, z))
            dec = sum(float((gi * di).sum()) for gi, di in zip(gr, d))
            dd = sum(float((di ** 2).sum()) for di in d)
            with torch.no_grad():
                vn = float(obj(zn))
            if vn <= v + 0.5 * dec or step < 1e-14:
                break
            step *= 0.5
        res = dd ** 0.5 / max(step, 1e-300)  # gradient-mapping norm
        z = zn
        if res <= tol:
            break
    return z, res


def lower_level_gap(g, x, y, *, z0=None, lower_constraints=None, proj_y=None, batch=None,
                    max_steps: int = 500, tol: float = 1e-10, rho: float = 10.0,
                    outer_rounds: int = 30) -> GapResult:
    """Estimate g(x, y) - min_z g(x, z) by an inner solve from ``z0`` (default ``y``).

    ``x``, ``y``: tensors or tuples of tensors (as given to `solve`). ``lower_constraints``: ``h(x, z)``
    returning a tensor, feasible where ``h <= 0``. ``batch``: passed as third argument to ``g``/``h`` when
    not None. Returns a `GapResult` (plain floats, ``z`` in the structure of ``y``).
    """
    xs, ys = Structure(x, "x"), Structure(y, "y", device=None)
    xv, yv = xs.init, ys.init
    zs = ys.init if z0 is None else Structure(z0, "z0").init
    proj = make_projection(proj_y, ys, "proj_y")
    with torch.no_grad():
        gy = _call(g, xs, ys, xv, yv, batch)
        if not isinstance(gy, torch.Tensor) or gy.numel() != 1:
            raise TypeError("g(x, y) must return a scalar tensor")
        gy = float(gy)
    if lower_constraints is None:
        z, res = _minimize(lambda z: _call(g, xs, ys, xv, z, batch).reshape(()), zs,
                           None if proj_y is None else proj, max_steps, tol)
        infeas = 0.0
    else:
        with torch.no_grad():
            m = _call(lower_constraints, xs, ys, xv, zs, batch).reshape(-1).numel()
        mu = torch.zeros(m, dtype=zs[0].dtype, device=zs[0].device)
        z = zs
        for _ in range(outer_rounds):
            def lag(zz, mu=mu):
                hz = _call(lower_constraints, xs, ys, xv, zz, batch).reshape(-1)
                return (_call(g, xs, ys, xv, zz, batch).reshape(())
                        + (0.5 / rho) * (torch.clamp(mu + rho * hz, min=0) ** 2 - mu ** 2).sum())
            z, res = _minimize(lag, z, None if proj_y is None else proj, max_steps, tol)
            with torch.no_grad():
                hz = _call(lower_constraints, xs, ys, xv, z, batch).reshape(-1)
                mu = torch.clamp(mu + rho * hz, min=0)
                infeas = float(torch.clamp(hz, min=0).max()) if m else 0.0
            if infeas <= 1e-10:
                break
        with torch.no_grad():
            res = max(res, infeas)
    with torch.no_grad():
        gz = float(_call(g, xs, ys, xv, z, batch))
    infeas_y = 0.0
    if lower_constraints is not None:
        with torch.no_grad():
            hy = _call(lower_constraints, xs, ys, xv, yv, batch).reshape(-1)
            infeas_y = float(torch.clamp(hy, min=0).max()) if hy.numel() else 0.0
    return GapResult(gap=gy - gz, value_y=gy, value_min=gz, z=ys.pack(z), residual=float(res),
                     infeasibility=infeas_y)


def stacked(h_in, h_eq):
    """h(x, y, *b) = (h_in, h_eq) as one vector, inequality rows first; None when neither is given."""
    if h_in is None and h_eq is None:
        return None

    def h_all(x, y, *b):
        return torch.cat(([h_in(x, y, *b).reshape(-1)] if h_in is not None else []) +
                         ([h_eq(x, y, *b).reshape(-1)] if h_eq is not None else []))
    return h_all


def two_sided(h_all, m_in: int):
    """The stacked rows with each equality (rows from m_in on) written as two inequalities, h <= 0 and
    -h <= 0: the form the gap's inner solve takes."""
    def h_ineq(x, y, *b):
        v = h_all(x, y, *b)
        return torch.cat([v[:m_in], v[m_in:], -v[m_in:]])
    return h_ineq


def certify(f, g, xs: Structure, ys: Structure, x, y, *, batch=None, lower_constraints=None, proj_y=None,
            max_steps: int = 500) -> dict:
    """Final certificates shared by the backends: lower-level gap (and its inner residual), objective."""
    out = {}
    try:
        r = lower_level_gap(g, xs.pack(x), ys.pack(y), lower_constraints=lower_constraints, proj_y=proj_y,
                            batch=batch, max_steps=max_steps)
        out.update(lower_level_gap=r.gap, lower_level_gap_residual=r.residual)
        if lower_constraints is not None:
            out["lower_infeasibility"] = r.infeasibility
    except Exception as e:  # a certificate must never turn a finished solve into a traceback
        out["lower_level_gap_error"] = str(e)
    return out
