"""Functional entry points: `solve_inclusion` (operator level) and `solve_saddle` (min–max level).

Both pick a method — ``"halpern"`` (restarted Halpern on an extragradient / resolvent / forward–backward
map), ``"eag"`` (fast extragradient, anchored), ``"eg"`` (classic extragradient baseline) or
``"vr_halpern"`` (variance-reduced Halpern for finite sums) — and return the method's `SolverOutput`.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch

from ..common import SolverOutput, Status
from ._core import CountedOperator, check_positive, estimate_lipschitz, new_counts, prepare_point
from .eag import eag
from .extragradient import extragradient
from .halpern import halpern
from .operators import ExtragradientMap, ForwardBackward, Resolvent
from .projections import Product, as_projection
from .saddle import pack, saddle_operator, unpack
from .vr_halpern import batched_components, vr_halpern

__all__ = ["solve_inclusion", "solve_saddle", "METHODS"]

METHODS = ("halpern", "eag", "eg", "vr_halpern")
_OPERATORS = ("extragradient", "resolvent", "forward_backward")


def solve_inclusion(F: Optional[Callable], z0, *, method: str = "halpern", projection=None,
                    operator: str = "extragradient", L: Optional[float] = None, eta: Optional[float] = None,
                    components=None, n: Optional[int] = None, batch: Optional[int] = None, restart: bool = True,
                    max_iter: Optional[int] = None, tol: Optional[float] = 1e-6, time_limit: Optional[float] = None,
                    callback: Optional[Callable] = None, device=None, dtype=None, **options) -> SolverOutput:
    """Find z with 0 ∈ F(z) + N_Z(z), F monotone (Z = the projection's set; None = whole space).

    F: callable z -> tensor of z's shape (may be None for ``vr_halpern`` when ``components`` is given).
    ``operator`` (method="halpern"): the nonexpansive map — "extragradient" (default, η = 1/L), "resolvent"
    (inexact (I + η(F+N_Z))⁻¹, η = 1/L), "forward_backward" (cocoercive F only, η = 1/L).
    ``components``/``n``/``batch``: the finite sum for ``vr_halpern`` (list of F_i, or batched oracle
    (idx, z) -> mean F_i(z) with n). L: Lipschitz constant of F (estimated at z0 by power iteration if None).
    ``tol`` is relative to the operator's scale: the run stops when the natural residual r(z) (in F's units)
    is <= tol · L, i.e. when one step of length 1/L moves z by <= tol -- so F and c·F stop at the same point
    (``extras["tol_residual"]`` is the absolute threshold used).
    Extra keyword options go to the method (e.g. ``variant="eag-c"``, ``inner_steps``, ``restart_factor``).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    L = check_positive(L, "L")
    eta = check_positive(eta, "eta")
    common = dict(tol=tol, time_limit=time_limit, callback=callback, device=device, dtype=dtype)
    if max_iter is not None:
        common["max_iter"] = max_iter
    if method == "vr_halpern":
        if components is None:
            raise ValueError("method='vr_halpern' needs components= (a list of F_i or a batched oracle with n=)")
        oracle, n = batched_components(components, n)
        full = F
        if L is None:  # power iteration on the full operator; its component calls are reported
            z = prepare_point(z0, "z0", device, dtype)
            probe = {"calls": 0}

            def full_counted(zz):
                probe["calls"] += 1
                return F(zz) if F is not None else oracle(torch.arange(n, device=zz.device), zz)
            L = 1.1 * estimate_lipschitz(full_counted, z)
            common["tol"] = _scaled_tol(tol, L)
            out = vr_halpern(oracle, z0, n=n, L=L, full=full, projection=projection, eta=eta, batch=batch,
                             restart=restart, **common, **options)
            out.counts["component"] += n * probe["calls"]
            out.extras.update(L=L, tol_residual=common["tol"])
            return out
        common["tol"] = _scaled_tol(tol, L)
        out = vr_halpern(oracle, z0, n=n, L=L, full=full, projection=projection, eta=eta, batch=batch,
                         restart=restart, **common, **options)
        out.extras["tol_residual"] = common["tol"]
        return out
    if F is None:
        raise TypeError(f"method={method!r} needs the operator F (a callable z -> F(z))")
    if method in ("eag", "eg"):
        if L is None:
            L = 1.1 * estimate_lipschitz(F, prepare_point(z0, "z0", device, dtype))
        common["tol"] = _scaled_tol(tol, L)
        if method == "eag":
            out = eag(F, z0, L=L, projection=projection, restart=restart, **common, **options)
        else:
            out = extragradient(F, z0, L=L, eta=eta, projection=projection, **common, **options)
        out.extras["tol_residual"] = common["tol"]
        return out
    if operator not in _OPERATORS:
        raise ValueError(f"operator must be one of {_OPERATORS}, got {operator!r}")
    counts = new_counts()
    Fc = CountedOperator(F, counts)
    P = as_projection(projection)
    z = P(prepare_point(z0, "z0", device, dtype))
    Fc(z)  # checks F's output shape early
    if L is None:
        L = 1.1 * estimate_lipschitz(F, z)
    common["tol"] = _scaled_tol(tol, L)
    eta = eta or 1.0 / L
    if operator == "extragradient":
        T = ExtragradientMap(Fc, eta, P)
    elif operator == "forward_backward":
        T = ForwardBackward(Fc, eta, P)
    else:
        T = Resolvent(Fc, eta, P, L=L, **{k: options.pop(k) for k in ("inner_tol", "inner_max_iter")
                                          if k in options})
    out = halpern(T, z, restart=restart, counts=counts, **common, **options)
    out.extras.update(L=L, eta=eta, operator=operator, tol_residual=common["tol"])
    if isinstance(T, Resolvent):
        out.extras["inner_iterations"] = T.inner_iterations
    return out


def _scaled_tol(tol: Optional[float], L: float) -> Optional[float]:
    """The absolute residual threshold tol · L (tol is relative to the operator's Lipschitz constant)."""
    return None if tol is None else tol * L


def solve_saddle(L: Callable, x0, y0, *, method: str = "halpern", project_x=None, project_y=None,
                 components=None, n: Optional[int] = None, batch: Optional[int] = None,
                 lipschitz: Optional[float] = None, operator_fn: Optional[Callable] = None, gap_fn: Optional[Callable] = None,
                 gap_tol: Optional[float] = None, gap_every: int = 10, max_iter: Optional[int] = None,
                 tol: Optional[float] = 1e-6, time_limit: Optional[float] = None,
                 callback: Optional[Callable] = None, device=None, dtype=None, **options) -> SolverOutput:
    """Solve min_{x∈X} max_{y∈Y} L(x, y) for convex–concave L given as a torch callable (x, y) -> scalar.

    F = (∇ₓL, −∇ᵧL) by autograd; X, Y given by ``project_x``/``project_y`` (set objects or callables).
    Finite sums (``method="vr_halpern"``): ``components`` is a list of callables L_i(x, y), or a callable
    (i, x, y) -> L_i with ``n``; L itself may then be None (the mean is used). ``gap_fn(x, y) -> float``
    (e.g. `bilinear_gap_fn`) adds the ``duality_gap`` certificate; with ``gap_tol`` the run also stops (status
    OPTIMAL) once the gap, checked every ``gap_every`` iterations, is <= gap_tol.
    ``operator_fn``: F(z) on the packed z = (vec x, vec y) when known in closed form (skips autograd; e.g.
    z ↦ (Ay, −Aᵀx) for bilinear games). ``lipschitz``: Lipschitz constant of F (estimated if None).
    Returns SolverOutput with x = (x, y), objective = L(x, y), certificates ``operator_residual`` (+ gap).
    """
    x0 = prepare_point(x0, "x0", device, dtype)
    y0 = prepare_point(y0, "y0", x0.device, x0.dtype)
    xs, ys = tuple(x0.shape), tuple(y0.shape)
    nx, ny = x0.numel(), y0.numel()
    if components is not None:
        if isinstance(components, (list, tuple)):
            Ls = list(components)
            n = len(Ls)
            get = lambda i: Ls[i]  # noqa: E731
        elif callable(components):
            if not isinstance(n, int) or n < 1:
                raise ValueError(f"components given as a callable (i, x, y) -> L_i needs n >= 1, got n={n!r}")
            get = lambda i: (lambda x, y: components(i, x, y))  # noqa: E731
        else:
            raise TypeError(f"components must be a list of callables L_i(x, y) or a callable (i, x, y), "
                            f"got {type(components).__name__}")

        def L_mean_of(idx):
            return lambda x, y: sum(get(int(i))(x, y) for i in idx) / len(idx)

        def oracle(idx, z):
            return saddle_operator(L_mean_of(idx.tolist()), xs, ys)(z)

        if L is None:
            L = L_mean_of(range(n))
    if not callable(L):
        raise TypeError(f"L must be a callable (x, y) -> scalar tensor, got {type(L).__name__}")
    F = saddle_operator(L, xs, ys, sample_x=x0, sample_y=y0)
    if operator_fn is not None:
        if not callable(operator_fn):
            raise TypeError(f"operator_fn must be callable z -> F(z), got {type(operator_fn).__name__}")
        F = operator_fn
    P = None
    if project_x is not None or project_y is not None:
        P = Product([as_projection(project_x, "project_x"), as_projection(project_y, "project_y")],
                    [nx, ny], [xs, ys])
    z0 = pack(x0, y0)

    user_cb, gap_hit = callback, {"hit": False}
    if gap_tol is not None:
        if gap_fn is None:
            raise ValueError("gap_tol needs gap_fn (a callable (x, y) -> duality gap)")

        def callback(info):  # noqa: F811 - wraps the user's callback with the gap test
            if info["iteration"] % gap_every == 0:
                x, y = unpack(info["x"], xs, ys)
                if gap_fn(x, y) <= gap_tol:
                    gap_hit["hit"] = True
                    return False
            return None if user_cb is None else user_cb(info)

    kw = dict(method=method, projection=P, L=lipschitz, max_iter=max_iter, tol=tol, time_limit=time_limit,
              callback=callback, device=x0.device, dtype=x0.dtype, **options)
    if method == "vr_halpern":
        if components is None:
            raise ValueError("method='vr_halpern' needs components= (the L_i of the finite sum)")
        out = solve_inclusion(F, z0, components=oracle, n=n, batch=batch, **kw)
    else:
        out = solve_inclusion(F, z0, **kw)
    x, y = unpack(out.x, xs, ys)
    out.x = (x, y)
    if gap_hit["hit"]:
        out.status = Status.OPTIMAL
        out.message = f"{method}: duality gap <= gap_tol {gap_tol:g}"
    with torch.no_grad():
        val = L(x, y)
    out.objective = float(val) if isinstance(val, torch.Tensor) and val.numel() == 1 else None
    if gap_fn is not None:
        g = float(gap_fn(x, y))
        out.certificates["duality_gap"] = g
        if not math.isfinite(g) and out.status.is_success:
            out.status = Status.NUMERICAL_ERROR
    return out
