"""Shared plumbing for the bilevel backends: variable structures, validation, oracles, batches.

Variables. ``x`` (leader) and ``y`` (follower) are each a floating tensor or a tuple/list of floating
tensors (e.g. the layers of a model). The user's callables always receive the *same structure* they gave
(tensor or tuple); internally every backend works on tuples of tensors.

Oracles. ``f(x, y)`` and ``g(x, y)`` return scalar tensors. With ``batches`` they are called as
``f(x, y, batch)`` / ``g(x, y, batch)``; ``batches`` is a callable ``k -> batch`` (k counts draws) or an
iterable that is cycled (a DataLoader works). Non-finite values raise `NonFinite`, which backends turn
into ``Status.NUMERICAL_ERROR`` naming the iteration.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import torch

from ..common import Budget, SolverOutput, Status, resolve_device

Tensors = tuple  # tuple[torch.Tensor, ...]


class NonFinite(Exception):
    """A callable or iterate became NaN/inf; ``where`` names it."""

    def __init__(self, where: str):
        super().__init__(f"{where} is not finite (NaN/inf)")
        self.where = where


# ----------------------------------------------------------------------------------------------- structure
class Structure:
    """Remembers whether a variable was given as one tensor or as a tuple, and its shapes."""

    def __init__(self, value: Any, name: str, device=None, dtype=None):
        if isinstance(value, torch.Tensor):
            self.is_tuple, parts = False, (value,)
        elif isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) for v in value):
            self.is_tuple, parts = True, tuple(value)
        else:
            raise TypeError(f"{name} must be a torch.Tensor or a non-empty tuple of tensors, "
                            f"got {type(value).__name__}")
        for i, p in enumerate(parts):
            label = name if not self.is_tuple else f"{name}[{i}]"
            if not (p.is_floating_point()):
                raise TypeError(f"{label} must be a floating tensor, got dtype {p.dtype}")
            if not torch.isfinite(p).all():
                raise ValueError(f"{label} (shape {tuple(p.shape)}) contains NaN/inf")
        self.device, self.dtype = resolve_device(device, dtype, like=parts[0])
        self.name = name
        self.shapes = [p.shape for p in parts]
        # clone: never mutate (or alias) the user's tensors
        self.init = tuple(p.detach().to(self.device, self.dtype).clone() for p in parts)

    def pack(self, parts: Sequence[torch.Tensor]):
        return tuple(parts) if self.is_tuple else parts[0]

    def unpack(self, value, what: str = "") -> Tensors:
        parts = tuple(value) if self.is_tuple else (value,)
        if len(parts) != len(self.shapes) or any(p.shape != s for p, s in zip(parts, self.shapes)):
            raise ValueError(f"{what or self.name} returned shapes {[tuple(p.shape) for p in parts]}, "
                             f"expected {[tuple(s) for s in self.shapes]}")
        return parts

    @property
    def numel(self) -> int:
        return sum(math.prod(s) for s in self.shapes)


# ------------------------------------------------------------------------------------------------- tensors
def detach(parts: Tensors) -> Tensors:
    return tuple(p.detach() for p in parts)


def leaf(parts: Tensors) -> Tensors:
    return tuple(p.detach().requires_grad_(True) for p in parts)


def norm(parts: Tensors) -> float:
    return math.sqrt(sum(float((p.detach() ** 2).sum()) for p in parts))


def axpy(a: float, xs: Tensors, ys: Tensors) -> Tensors:
    """a*xs + ys, elementwise over tuples."""
    return tuple(a * x + y for x, y in zip(xs, ys))


def dot(xs: Tensors, ys: Tensors) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(xs, ys))


def zeros_like(parts: Tensors) -> Tensors:
    return tuple(torch.zeros_like(p) for p in parts)


def check_finite(parts: Tensors, where: str) -> None:
    if not all(bool(torch.isfinite(p).all()) for p in parts):
        raise NonFinite(where)


def as_schedule(v, name: str) -> Callable[[int], float]:
    """A float (constant) or a callable k -> float; validated to be positive at k = 0."""
    fn = v if callable(v) else (lambda k, _v=float(v): _v)
    v0 = fn(0)
    if not (isinstance(v0, (int, float)) and math.isfinite(v0) and v0 > 0):
        raise ValueError(f"{name} must be a positive finite number (or a callable k -> number), got {v0!r}")
    return fn


def positive_int(v, name: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return v


# ------------------------------------------------------------------------------------------------- oracles
_NOBATCH = object()


class Batches:
    """Draws mini-batches from a callable ``k -> batch`` or by cycling an iterable; no-op when None."""

    def __init__(self, batches):
        self.source, self.k, self._it = batches, 0, None
        if batches is not None and not callable(batches) and not hasattr(batches, "__iter__"):
            raise TypeError(f"batches must be None, a callable k -> batch or an iterable, got "
                            f"{type(batches).__name__}")

    @property
    def stochastic(self) -> bool:
        return self.source is not None

    def next(self):
        if self.source is None:
            return _NOBATCH
        self.k += 1
        if callable(self.source):
            return self.source(self.k - 1)
        if self._it is None:
            self._it = iter(self.source)
        try:
            return next(self._it)
        except StopIteration:  # cycle: an epoch ended
            self._it = iter(self.source)
            return next(self._it)


class Oracles:
    """Evaluates f or g on tuples, with structure packing, scalar/finite checks and counts."""

    def __init__(self, f, g, xs: Structure, ys: Structure, counts: dict, h=None):
        for fn, nm in ((f, "f"), (g, "g")):
            if not callable(fn):
                raise TypeError(f"{nm} must be a callable {nm}(x, y) -> scalar tensor, got {type(fn).__name__}")
        if h is not None and not callable(h):
            raise TypeError(f"lower_constraints must be a callable h(x, y) -> 1-D tensor (h <= 0), "
                            f"got {type(h).__name__}")
        self.fns = {"f": f, "g": g, "h": h}
        self.xs, self.ys, self.counts = xs, ys, counts

    def __call__(self, which: str, x: Tensors, y: Tensors, batch=_NOBATCH) -> torch.Tensor:
        fn = self.fns[which]
        args = (self.xs.pack(x), self.ys.pack(y))
        val = fn(*args) if batch is _NOBATCH else fn(*args, batch)
        self.counts[which] = self.counts.get(which, 0) + 1
        if which == "h":
            if not isinstance(val, torch.Tensor):
                raise TypeError(f"lower_constraints must return a tensor, got {type(val).__name__}")
            val = val.reshape(-1)
        elif not isinstance(val, torch.Tensor) or val.numel() != 1:
            shape = tuple(val.shape) if isinstance(val, torch.Tensor) else type(val).__name__
            raise TypeError(f"{which}(x, y) must return a scalar tensor, got {shape}")
        else:
            val = val.reshape(())
        if not bool(torch.isfinite(val.detach()).all()):
            raise NonFinite(f"{which}(x, y)")
        return val

    def grad(self, which: str, x: Tensors, y: Tensors, wrt: str = "xy", batch=_NOBATCH, scale=None):
        """(value, grad_x or None, grad_y or None) of f or g (or of ``scale[0]*f + scale[1]*g`` when
        which == "fg"), each gradient a detached tuple (zeros where the callable does not depend on it)."""
        xl = leaf(x) if "x" in wrt else detach(x)
        yl = leaf(y) if "y" in wrt else detach(y)
        with torch.enable_grad():
            if which == "fg":
                val = scale[0] * self("f", xl, yl, batch) + scale[1] * self("g", xl, yl, batch)
            else:
                val = self(which, xl, yl, batch)
            inputs = (xl if "x" in wrt else ()) + (yl if "y" in wrt else ())
            gr = (torch.autograd.grad(val, inputs, allow_unused=True) if val.requires_grad
                  else (None,) * len(inputs))   # the callable does not depend on what we differentiate
        gr = tuple(torch.zeros_like(i) if gi is None else gi for gi, i in zip(gr, inputs))
        for key in ("f", "g") if which == "fg" else (which,):
            self.counts["grad_" + key] = self.counts.get("grad_" + key, 0) + 1
        check_finite(gr, f"gradient of {which}(x, y)")
        nx = len(x) if "x" in wrt else 0
        gx = gr[:nx] if "x" in wrt else None
        gy = gr[nx:] if "y" in wrt else None
        return val.detach(), gx, gy


def make_projection(proj, st: Structure, name: str):
    """Wrap a user projection on the user's structure into one on tuples (None -> identity)."""
    if proj is None:
        return lambda parts: parts
    if not callable(proj):
        raise TypeError(f"{name} must be a callable projection, got {type(proj).__name__}")

    def p(parts):
        with torch.no_grad():
            return tuple(q.detach() for q in st.unpack(proj(st.pack(parts)), what=name))
    return p


def finish(budget: Budget, x, status: Optional[Status], message: str, objective, iterations, counts,
           certificates, extras) -> SolverOutput:
    """Assemble the SolverOutput (history from the budget)."""
    status = status or budget.status or Status.ITERATION_LIMIT
    if not message:
        message = {Status.ITERATION_LIMIT: f"reached max_iter={iterations}",
                   Status.TIME_LIMIT: "time limit reached",
                   Status.INTERRUPTED: "stopped by callback or Ctrl-C"}.get(status, status.value)
    extras = dict(extras)
    extras.update({k: v for k, v in certificates.items() if isinstance(v, str)})  # e.g. a failed certificate
    return SolverOutput(x=x, status=status, objective=objective, iterations=iterations, message=message,
                        certificates={k: float(v) for k, v in certificates.items()
                                      if v is not None and not isinstance(v, str)},
                        counts=dict(counts), history=budget.history, solve_time=budget.elapsed, extras=extras)


class Setup:
    """Validated common arguments of every backend (structures, oracles, projections, budget, batches)."""

    def __init__(self, f, g, x0, y0, *, proj_x=None, proj_y=None, batches=None, eval_batch=None,
                 max_iter=1000, tol=1e-6, time_limit=None, callback=None, device=None, dtype=None,
                 lower_constraints=None):
        if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 0:
            raise ValueError(f"max_iter must be a non-negative integer, got {max_iter!r}")
        if not (isinstance(tol, (int, float)) and tol >= 0):
            raise ValueError(f"tol must be a non-negative number, got {tol!r}")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable(info) -> bool | None, got {type(callback).__name__}")
        self.xs = Structure(x0, "x0", device, dtype)
        self.ys = Structure(y0, "y0", self.xs.device if device is None else device, self.xs.dtype)
        self.device, self.dtype = self.xs.device, self.xs.dtype
        self.counts: dict = {}
        self.orc = Oracles(f, g, self.xs, self.ys, self.counts, h=lower_constraints)
        self.f, self.g, self.h = f, g, lower_constraints
        self.px = make_projection(proj_x, self.xs, "proj_x")
        self.py = make_projection(proj_y, self.ys, "proj_y")
        self.proj_y = proj_y
        self.batches = Batches(batches)
        self.eval_batch = eval_batch
        self.tol = float(tol)
        self.budget = Budget(max_iter, time_limit, callback)
        # validate the callables once at the start point: scalar outputs, finite values
        x, y = self.px(self.xs.init), self.py(self.ys.init)
        b = self.batches.next()
        with torch.no_grad():
            self.orc("f", x, y, b)
            self.orc("g", x, y, b)
            if lower_constraints is not None:
                self.orc("h", x, y, b)
        self.x0, self.y0 = x, y

    def eval_b(self):
        """Batch for reporting/certificates: eval_batch if given, else a fresh draw (or none)."""
        if not self.batches.stochastic:
            return _NOBATCH
        return self.eval_batch if self.eval_batch is not None else self.batches.next()

    def gap_batch(self):
        b = self.eval_b()
        return None if b is _NOBATCH else b

    def conclude(self, oracles, x, y, status, message, k, certificates, extras, *, certify_gap: bool,
                 proj_y="setup") -> SolverOutput:
        """The shared epilogue of the methods: objective at the last iterate, the lower-level gap certificate
        (unless the run failed numerically) and the SolverOutput. ``proj_y`` overrides the setup's projection
        for the gap's inner solve (unrolled keeps its differentiable one out of the setup)."""
        from .gap import certify  # gap imports this module
        obj = None
        if status != Status.NUMERICAL_ERROR:
            with torch.no_grad():
                obj = float(oracles("f", x, y, self.eval_b()))
            if certify_gap:
                certificates.update(certify(self.f, self.g, self.xs, self.ys, x, y, batch=self.gap_batch(),
                                            proj_y=self.proj_y if proj_y == "setup" else proj_y))
        it = k + 1 if self.budget.history else 0
        return finish(self.budget, (self.xs.pack(x), self.ys.pack(y)), status, message, obj, it, self.counts,
                      certificates, extras)


# ----------------------------------------------------------------------------------------- scale-free steps
class Curvature:
    """L ~ lambda_max(grad2_yy phi(y)) by power iteration on Hessian-vector products, warm-started across calls
    (``first`` products the first time, ``again`` after): the follower step 1/L needs no user constant and does
    not change when phi is scaled the other way (1/L scales inversely). ``counts["hvp"]`` is updated."""

    def __init__(self, counts: dict, first: int = 20, again: int = 3):
        self.counts, self.first, self.again, self.v, self.L = counts, first, again, None, None

    def __call__(self, phi, y: Tensors) -> float:
        yl = leaf(y)
        with torch.enable_grad():
            gr = torch.autograd.grad(phi(yl), yl, create_graph=True, allow_unused=True)
            gr = tuple(torch.zeros_like(p) if q is None else q for q, p in zip(gr, yl))
            if not any(q.requires_grad for q in gr):   # phi is linear in y: no curvature
                self.L = 0.0
                return self.L
            v = self.v if self.v is not None else tuple(torch.randn_like(p) for p in yl)
            lam = 0.0
            for _ in range(self.first if self.v is None else self.again):
                nv = norm(v)
                v = tuple(p / max(nv, 1e-300) for p in v)
                hv = torch.autograd.grad(gr, yl, grad_outputs=v, retain_graph=True, allow_unused=True)
                hv = tuple(torch.zeros_like(p) if h is None else h.detach() for h, p in zip(hv, yl))
                self.counts["hvp"] = self.counts.get("hvp", 0) + 1
                lam = norm(hv)
                v = hv if lam > 0 else v
        self.v = tuple(p.detach() for p in v)
        # power iteration approaches lambda_max from below: a 10% margin keeps 1/L under 2/lambda_max
        self.L = 1.1 * lam if math.isfinite(lam) else math.inf
        return self.L

    def step(self, phi, y: Tensors) -> float:
        L = self(phi, y)
        return 1.0 / L if L > 0 else 1.0


class AdaptiveStep:
    """Leader step sizes from the local smoothness seen along the iterates (Malitsky & Mishchenko, "Adaptive
    gradient descent without descent", ICML 2020):

        alpha_k = min( sqrt(1 + theta_{k-1}) alpha_{k-1},  |x_k - x_{k-1}| / (2 |d_k - d_{k-1}|) ),
        theta_k = alpha_k / alpha_{k-1},

    first step ``first_move * max(1, |x_0|) / |d_0|`` (a move of 1e-3 of the point's size). Multiplying the
    objective by c divides every alpha by c: the iterates do not change."""

    def __init__(self, first_move: float = 1e-3):
        self.first_move, self.prev, self.alpha, self.theta = first_move, None, None, math.inf

    def __call__(self, x: Tensors, d: Tensors) -> float:
        dn = norm(d)
        if self.prev is None:
            xn = norm(x)
            alpha = self.first_move * max(1.0, xn) / dn if dn > 0 else 1.0
        else:
            xp, dp = self.prev
            sx, sd = norm(axpy(-1.0, xp, x)), norm(axpy(-1.0, dp, d))
            grow = math.sqrt(1.0 + self.theta) * self.alpha
            alpha = min(grow, sx / (2.0 * sd)) if sd > 0 else grow
            if not (alpha > 0 and math.isfinite(alpha)):
                alpha = self.alpha
            self.theta = alpha / self.alpha
        self.prev, self.alpha = (tuple(p.detach().clone() for p in x), tuple(p.detach().clone() for p in d)), alpha
        return alpha


def steps(lr, name: str):
    """A user's step (number or schedule k -> number), or None for the scale-free default (see `AdaptiveStep`)."""
    return None if lr is None else as_schedule(lr, name)


def relative_scale(value: float, fallback: float = 1.0) -> float:
    """|value| when it is a usable scale (nonzero, finite), else ``fallback`` (else 1): the unit a
    scale-free convergence test divides by."""
    for v in (value, fallback):
        if v is not None and math.isfinite(v) and v != 0:
            return abs(v)
    return 1.0
