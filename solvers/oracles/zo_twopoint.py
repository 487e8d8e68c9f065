"""Two-point randomized ZO estimator (Gaussian smoothing / SPSA), in place with seeded perturbations.

For f: R^d -> R, direction z (Gaussian or Rademacher, E[z zᵀ] = I) and smoothing radius ε,

    central (antithetic) :  p = [f(θ + εz) − f(θ − εz)] / (2ε),     ĝ = p·z
    forward (one-sided)  :  p = [f(θ + εz) − f(θ)] / ε,             ĝ = p·z

and the q-query average ĝ = (1/q) Σ_i p_i z_i. The central form is an unbiased gradient of the Gaussian
smoothing f_ε(θ) = E_u[f(θ + εu)] and is *exact* along z for quadratics (p = zᵀ∇f(θ)).
References: Nesterov & Spokoiny (2017) Gaussian smoothing; Spall (1992) SPSA; MeZO (Malladi et al., 2023)
for the in-place scheme: θ += εz; f₊; θ −= 2εz; f₋; θ += εz, with z regenerated from an integer seed
(`zo_noise`) in every sweep, so no parameter-sized noise or copy is ever held. The result of one estimate is
a list of (seed, scalar) pairs -- the whole "gradient" -- which optimizers expand tensor by tensor.

Restoring is exact in the sense MeZO relies on: θ + εz − 2εz + εz is θ up to a few ulp (exact when the
additions are exact, e.g. fp64 with dyadic ε); tests check the bound.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch

from ..autodiff import NonFinite
from .zo_noise import add_noise_, check_kind, derive_seed, noise_like, unpack_mask


class ZOEvalError(RuntimeError):
    """An objective evaluation failed (raised, non-scalar, NaN/inf). Optimizers turn it into a Status."""


class ZONonFinite(ZOEvalError):
    """The objective returned NaN or inf (a NUMERICAL_ERROR, as opposed to a raising/ill-typed objective)."""


def to_scalar(value, where: str) -> float:
    """Convert an objective's return value to a finite Python float or raise ZOEvalError saying ``where``."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ZOEvalError(f"objective returned a tensor of shape {tuple(value.shape)} at {where}; "
                              f"expected a scalar")
        value = value.item()
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ZOEvalError(f"objective returned {type(value).__name__} at {where}; expected a scalar") from None
    if not math.isfinite(v):
        raise ZONonFinite(f"objective returned {v} at {where}")
    return v


def safe_eval(f: Callable, where: str, *args) -> float:
    """Evaluate f(*args) -> float; any exception or bad value becomes ZOEvalError naming ``where``."""
    try:
        out = f(*args)
    except ZOEvalError:
        raise
    except NonFinite as exc:  # a wrapped model (optdsl.solvers.autodiff) found NaN/inf itself
        raise ZONonFinite(f"{exc} at {where}") from exc
    except Exception as exc:  # user code: report, never crash the solver
        raise ZOEvalError(f"objective raised {type(exc).__name__}: {exc} at {where}") from exc
    return to_scalar(out, where)


def check_eps(eps: float, name: str = "eps") -> float:
    if not isinstance(eps, (int, float)) or not eps > 0 or not math.isfinite(eps):
        raise ValueError(f"{name} must be a finite number > 0, got {eps!r}")
    return float(eps)


def check_q(q: int) -> int:
    if not isinstance(q, int) or isinstance(q, bool) or q < 1:
        raise ValueError(f"q (queries per estimate) must be an integer >= 1, got {q!r}")
    return q


def perturb_(params: Sequence[torch.Tensor], seed: int, alpha: float, kind: str = "gaussian",
             masks: Optional[Sequence] = None) -> None:
    """In place: p_i += alpha · z_i(seed) [· mask_i] for every tensor, z_i from ``derive_seed(seed, i)``.

    ``masks`` (optional) holds per tensor None, a bool tensor, or a packed (uint8, shape) pair from
    ``zo_noise.pack_mask``.
    """
    with torch.no_grad():
        for i, p in enumerate(params):
            m = _mask(masks, i)
            add_noise_(p.data if isinstance(p, torch.nn.Parameter) else p, derive_seed(seed, i), kind, alpha,
                       m)


def _mask(masks, i):
    if masks is None:
        return None
    m = masks[i]
    if isinstance(m, tuple):
        return unpack_mask(*m)
    return m


def direction(params: Sequence[torch.Tensor], seed: int, kind: str = "gaussian",
              masks: Optional[Sequence] = None) -> list[torch.Tensor]:
    """Materialise z(seed) tensor by tensor (for tests, dense optimizers and small black-box problems)."""
    out = []
    for i, p in enumerate(params):
        z = noise_like(p.detach(), derive_seed(seed, i), kind)
        m = _mask(masks, i)
        out.append(z if m is None else z.mul_(m))
    return out


@dataclass
class ZOEstimate:
    """A ZO gradient in seed form: ĝ = Σ_i coef_i · z(seed_i) with coef_i = proj_i / q."""

    seeds: list[int]
    projs: list[float]
    f0: Optional[float] = None           # f(θ) when evaluated (forward mode), else mean of f(θ ± εz)
    f_plus: list[float] = field(default_factory=list)
    f_minus: list[float] = field(default_factory=list)
    n_evals: int = 0
    pending_offset: float = 0.0          # params sit at θ + pending_offset·z(seeds[-1]) (restore_last=False)

    @property
    def coefs(self) -> list[float]:
        return [p / len(self.projs) for p in self.projs]

    @property
    def loss(self) -> float:
        """Best available estimate of f(θ) at the unperturbed point."""
        if self.f0 is not None:
            return self.f0
        return sum(a + b for a, b in zip(self.f_plus, self.f_minus)) / (2 * len(self.f_plus))

    @property
    def variance(self) -> float:
        """Sample variance of the projected gradients across queries (0.0 when q = 1)."""
        q = len(self.projs)
        if q < 2:
            return 0.0
        m = sum(self.projs) / q
        return sum((p - m) ** 2 for p in self.projs) / (q - 1)

    def dense(self, params: Sequence[torch.Tensor], kind: str = "gaussian", masks=None) -> list[torch.Tensor]:
        """Expand to gradient tensors (parameter-sized; avoid on large models)."""
        out = [torch.zeros_like(p) for p in params]
        for s, c in zip(self.seeds, self.coefs):
            for acc, z in zip(out, direction(params, s, kind, masks)):
                acc.add_(z, alpha=c)
        return out


def two_point(f: Callable[[], object], params: Sequence[torch.Tensor], *, seed: int, eps: float = 1e-3,
              q: int = 1, kind: str = "gaussian", antithetic: bool = True, masks=None,
              f0: Optional[float] = None, where: str = "", reduce: Optional[Callable] = None,
              restore_last: bool = True) -> ZOEstimate:
    """Estimate ∇f at the current ``params`` with q seeded directions, perturbing them in place.

    ``f()`` evaluates the objective at the current (perturbed) parameter values and returns a scalar.
    Query i uses seed ``derive_seed(seed, i)``. ``antithetic=True`` (default) uses the central difference
    f(θ ± εz) (2q evaluations); ``False`` the forward difference against f(θ) (q + 1 evaluations; pass
    ``f0`` to reuse a known f(θ)). Parameters are restored before returning, also when ``f`` fails
    (then ZOEvalError is raised, with ``where`` in the message).

    ``reduce([f₊, f₋]) -> [f₊, f₋]`` (optional) combines the two local values across workers before the
    difference is taken (data-parallel ZO: one all-reduce of two scalars per query).
    ``restore_last=False`` leaves the last query's parameters at θ − εz (central) so the caller can fuse the
    restore with its update sweep (see ``optdsl.solvers.zo.step``); ``est.pending_offset`` says by how much.
    """
    eps = check_eps(eps)
    q = check_q(q)
    check_kind(kind)
    est = ZOEstimate(seeds=[], projs=[])
    if not antithetic:
        if f0 is None:
            f0 = safe_eval(f, f"{where} (unperturbed point)")
            est.n_evals += 1
        est.f0 = f0
    for i in range(q):
        s = derive_seed(seed, i)
        offset = 0.0  # how far params currently sit from θ along z (restored in `finally`)
        try:
            perturb_(params, s, eps, kind, masks)
            offset = eps
            fp = safe_eval(f, f"{where} (query {i}, +eps)")
            est.n_evals += 1
            if antithetic:
                perturb_(params, s, -2.0 * eps, kind, masks)
                offset = -eps
                fm = safe_eval(f, f"{where} (query {i}, -eps)")
                est.n_evals += 1
                if reduce is not None:
                    fp, fm = reduce([fp, fm])
                proj = (fp - fm) / (2.0 * eps)
            else:
                fm = f0
                if reduce is not None:
                    fp = reduce([fp])[0]
                proj = (fp - f0) / eps
            ok = True
        except BaseException:
            ok = False
            raise
        finally:
            if offset != 0.0 and (not ok or restore_last is True or i < q - 1):
                perturb_(params, s, -offset, kind, masks)
                offset = 0.0
                perturb_(params, s, -offset, kind, masks)
        est.seeds.append(s)
        est.projs.append(proj)
        est.f_plus.append(fp)
        est.f_minus.append(fm)
        est.pending_offset = offset
    return est
