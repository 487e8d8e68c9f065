"""Autograd oracles over plain torch callables: cached value+gradient and constraint Jacobians.

Backends take ``f(x) -> scalar tensor`` and ``c(x) -> 1-D tensor`` on a flat tensor ``x`` and get
derivatives here, so the same callables serve every method. Each oracle counts its evaluations and
raises `NonFinite` (caught by the backend and turned into ``Status.NUMERICAL_ERROR``) when a value or
derivative is NaN/inf.
"""
from __future__ import annotations

import warnings
from typing import Callable, Optional

import numpy as np
import torch


# what to do about a NaN/inf met at the start point (log(0), sqrt'(0) at the default start of 0)
DOMAIN_HINT = "start the variables inside the functions' domain (value=...) or bound them away from its edge (lb=/ub=)"


class NonFinite(Exception):
    """A callable returned NaN/inf; `where` says which one and at which evaluation."""

    def __init__(self, where: str, evaluation: Optional[int] = None, x: Optional[torch.Tensor] = None):
        at = ""
        if evaluation == 1:   # (the first evaluation is at the start point: most often log/sqrt at a default 0)
            at = f" at the start point: {DOMAIN_HINT}"
        elif evaluation:
            at = f" at evaluation {evaluation}"
        super().__init__(f"{where} is not finite (NaN/inf){at}")
        self.where, self.evaluation, self.x = where, evaluation, x


class Objective:
    """Value and gradient of a scalar torch function, cached at the last point."""

    def __init__(self, f: Callable[[torch.Tensor], torch.Tensor], device, dtype, name: str = "objective"):
        self.f, self.device, self.dtype, self.name = f, device, dtype, name
        self.n_f = 0
        self.n_grad = 0
        self._key: Optional[bytes] = None
        self._val = 0.0
        self._grad: Optional[np.ndarray] = None

    def _eval(self, x_np: np.ndarray):
        key = x_np.tobytes()
        if key == self._key:
            return
        x = torch.as_tensor(x_np, dtype=self.dtype, device=self.device).requires_grad_(True)
        val = self.f(x)
        if not isinstance(val, torch.Tensor) or val.numel() != 1:
            raise TypeError(f"{self.name} must return a scalar tensor, got "
                            f"{type(val).__name__}{'' if not isinstance(val, torch.Tensor) else tuple(val.shape)}")
        self.n_f += 1
        if not torch.isfinite(val):
            raise NonFinite(self.name, self.n_f, x.detach())
        (g,) = torch.autograd.grad(val.reshape(()), x, allow_unused=True)
        self.n_grad += 1
        g = torch.zeros_like(x) if g is None else g
        if not torch.isfinite(g).all():
            raise NonFinite(f"gradient of {self.name}", self.n_grad, x.detach())
        self._key, self._val, self._grad = key, float(val.detach()), g.detach().cpu().double().numpy()

    def value(self, x_np) -> float:
        self._eval(np.ascontiguousarray(x_np, dtype=float))
        return self._val

    def grad(self, x_np) -> np.ndarray:
        self._eval(np.ascontiguousarray(x_np, dtype=float))
        return self._grad


class Constraints:
    """Values and Jacobian of a vector torch function, cached at the last point."""

    def __init__(self, c: Callable[[torch.Tensor], torch.Tensor], device, dtype, name: str = "constraints"):
        self.c, self.device, self.dtype, self.name = c, device, dtype, name
        self.n_f = 0
        self.n_jac = 0
        self._vkey = self._jkey = None
        self._val: Optional[np.ndarray] = None
        self._jac: Optional[np.ndarray] = None

    def _x(self, x_np):
        return torch.as_tensor(np.ascontiguousarray(x_np, dtype=float), dtype=self.dtype, device=self.device)

    def value(self, x_np) -> np.ndarray:
        key = np.ascontiguousarray(x_np, dtype=float).tobytes()
        if key != self._vkey:
            with torch.no_grad():
                v = self.c(self._x(x_np)).reshape(-1)
            self.n_f += 1
            if not torch.isfinite(v).all():
                bad = int((~torch.isfinite(v)).nonzero()[0])
                raise NonFinite(f"{self.name} row {bad}", self.n_f)
            self._vkey, self._val = key, v.detach().cpu().double().numpy()
        return self._val

    def jac(self, x_np) -> np.ndarray:
        key = np.ascontiguousarray(x_np, dtype=float).tobytes()
        if key != self._jkey:
            x = self._x(x_np).requires_grad_(True)
            out = self.c(x).reshape(-1)
            J = rows_of(out, x) if out.numel() <= 64 else jacobian(self.c, x)
            self.n_jac += 1
            if not torch.isfinite(J).all():
                raise NonFinite(f"Jacobian of {self.name}", self.n_jac)
            self._jkey, self._jac = key, J.detach().cpu().double().numpy()
            if key != self._vkey and bool(torch.isfinite(out).all()):  # the values came with it
                self.n_f += 1
                self._vkey, self._val = key, out.detach().cpu().double().numpy()
        return self._jac


class Compiled:
    """Objective and constraint oracles with the interface of `Objective` / `Constraints`, over compiled
    derivatives ``eval(x) -> (f, ∇f, c, J)`` (torch tensors; c = (c_E, c_I)): one call per point, shared by
    the objective and both constraint groups. ``Compiled(d, m_eq).objective()``, ``.constraints(eq=True)``."""

    def __init__(self, derivatives, m_eq: int):
        self.d, self.m_eq = derivatives, m_eq
        self._key: Optional[bytes] = None
        self._out = None

    def at(self, x_np) -> tuple:
        x_np = np.ascontiguousarray(x_np, dtype=float)
        key = x_np.tobytes()
        if key != self._key:
            f, g, c, J = self.d.eval(torch.as_tensor(x_np, dtype=torch.float64))
            self._key, self._out = key, (float(f), g.cpu().double().numpy(), c.cpu().double().numpy(),
                                         J.cpu().double().numpy())
        return self._out

    def objective(self) -> "_CompiledObjective":
        return _CompiledObjective(self)

    def constraints(self, eq: bool) -> "_CompiledRows":
        return _CompiledRows(self, slice(0, self.m_eq) if eq else slice(self.m_eq, None),
                             "equality constraints" if eq else "inequality constraints")


class _CompiledObjective:
    def __init__(self, src: Compiled, name: str = "objective"):
        self.src, self.name = src, name
        self.n_f = self.n_grad = 0
        self._fkey = self._gkey = None

    def value(self, x_np) -> float:
        f = self.src.at(x_np)[0]
        if self.src._key != self._fkey:
            self._fkey = self.src._key
            self.n_f += 1
        return f

    def grad(self, x_np) -> np.ndarray:
        g = self.src.at(x_np)[1]
        if self.src._key != self._gkey:
            self._gkey = self.src._key
            self.n_grad += 1
            if not np.isfinite(g).all():
                raise NonFinite(f"gradient of {self.name}", self.n_grad)
        return g


class _CompiledRows:
    def __init__(self, src: Compiled, rows: slice, name: str):
        self.src, self.rows, self.name = src, rows, name
        self.n_f = self.n_jac = 0
        self._vkey = self._jkey = None

    def value(self, x_np) -> np.ndarray:
        c = self.src.at(x_np)[2][self.rows]
        if self.src._key != self._vkey:
            self._vkey = self.src._key
            self.n_f += 1
        return c

    def jac(self, x_np) -> np.ndarray:
        J = self.src.at(x_np)[3][self.rows]
        if self.src._key != self._jkey:
            self._jkey = self.src._key
            self.n_jac += 1
            if not np.isfinite(J).all():
                raise NonFinite(f"Jacobian of {self.name}", self.n_jac)
        return J


def rows_of(y: torch.Tensor, x: torch.Tensor, batched: bool = True, chunk: int = 256) -> torch.Tensor:
    """The dense Jacobian (k, n) of a 1-D ``y`` already computed on a graph from the leaf ``x``.

    One reverse pass batched over the rows (``is_grads_batched``: vmap over the seeds eᵢ, in chunks of
    `chunk` rows), which on a small model costs about what one plain reverse pass does; one pass per row where
    an op in the graph has no batching rule (or with ``batched=False``), and where the batched rows are not all
    finite. The graph is kept (``retain_graph``),
    so it can be differentiated again. Rows that do not depend on x are zero.
    """
    k, n = y.numel(), x.numel()
    if k == 0 or not y.requires_grad:
        return x.new_zeros(k, n)
    if batched and k > 1:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # vmap's "performance drop" fallback: take the per-row loop
                parts = []
                for s in range(0, k, chunk):
                    c = min(chunk, k - s)
                    seeds = y.new_zeros(c, k)
                    seeds[torch.arange(c), torch.arange(s, s + c)] = 1.0
                    (g,) = torch.autograd.grad(y, x, seeds, retain_graph=True, allow_unused=True,
                                               is_grads_batched=True)
                    parts.append(x.new_zeros(c, n) if g is None else g.reshape(c, n))
            out = torch.cat(parts) if len(parts) > 1 else parts[0]
            # a non-finite derivative of one row reaches the others as 0·inf = NaN in a batched pass: such
            # points get the per-row passes, so each row is its own (finite rows stay finite)
            if bool(torch.isfinite(out).all()):
                return out
        except Exception:  # noqa: BLE001 - an op without a batching rule: one pass per row below
            pass
    rows = []
    for i in range(k):
        (g,) = torch.autograd.grad(y[i], x, retain_graph=True, allow_unused=True)
        rows.append(x.new_zeros(n) if g is None else g.reshape(n))
    return torch.stack(rows)


def jacobian(c: Callable, x: torch.Tensor, small: int = 64) -> torch.Tensor:
    """Dense Jacobian of a vector function.

    Few rows: one reverse pass batched over the rows (`rows_of`; no set-up cost). Many rows: torch.func,
    whose first call in a process costs about a second of warm-up but whose per-call cost is flat.
    """
    x = x.detach().requires_grad_(True)
    out = c(x).reshape(-1)
    if out.numel() <= small:
        return rows_of(out, x).reshape(out.numel(), *x.shape)
    try:
        return torch.func.jacrev(lambda z: c(z).reshape(-1))(x)
    except Exception:  # functions with in-place ops or data-dependent control flow: plain reverse mode
        return torch.autograd.functional.jacobian(lambda z: c(z).reshape(-1), x)
