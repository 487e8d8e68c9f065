r"""Randomized iterative sketching for square linear systems ``K z = b`` (sketch-and-project family).

Each iteration draws a random sketch ``S`` (size N x q) and projects the iterate onto the solution set of the
sketched system ``Sᵀ K z = Sᵀ b`` in the Euclidean norm:

    z_{j+1} = z_j - Kᵀ S (Sᵀ K Kᵀ S)^+ Sᵀ (K z_j - b)

(Gower & Richtárik, "Randomized iterative methods for linear systems", SIMAX 2015). Two sketch families:

* ``"rows"``  — S selects q rows of K (block randomized Kaczmarz; Strohmer & Vershynin 2009, Needell & Tropp 2014),
  rows sampled without replacement with probability proportional to their squared norm (``row_probs="norm"``)
  or uniformly (``"uniform"``, as in the Hong–Na–Kolar reference code).
* ``"gaussian"`` — S has i.i.d. N(0, 1) entries; needs only products with Kᵀ (q per iteration), so it works with a
  matrix-free operator.

Both converge linearly in expectation, E‖z_j − z*‖² ≤ (1 − γ)^j ‖z_0 − z*‖², whenever K is nonsingular, with
γ = λ_min⁺(E[Kᵀ S (Sᵀ K Kᵀ S)^+ Sᵀ K]); this covers symmetric *indefinite* KKT matrices
[[H, Jᵀ], [J, 0]], which is why Hong, Na, Mahoney & Kolar (ICML 2023, "Constrained optimization via exact augmented
Lagrangian and randomized iterative sketching") use it for Newton–KKT steps with an adaptive stopping rule (pass it
as ``stop``). The rate degrades like σ_min(K)² / ‖K‖_F², so it suits moderate, reasonably conditioned systems; use a
direct or Krylov solver for large ill-conditioned ones. ``grow=True`` doubles the block size when the iteration
stalls (larger blocks contract faster; a block spanning all of K is an exact projection and is counted as such).

K may be a dense tensor, a torch sparse tensor (COO/CSR), a ``scipy.sparse`` matrix, or a :class:`SketchOperator`
(matrix-free products, optional row access).
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from optdsl.solvers.common import SolverOutput, Status, resolve_device

__all__ = ["SketchOperator", "as_operator", "solve"]


@dataclass
class SketchOperator:
    """Matrix-free square operator: ``matmat(V) = K @ V`` for V of shape (N, q).

    ``rmatmat(V) = Kᵀ @ V`` (defaults to ``matmat`` when ``symmetric``), ``rows(idx)`` returns the dense rows
    ``K[idx, :]`` (needed only by the ``"rows"`` sketch), ``row_norms2`` the squared row norms (optional).
    """

    n: int
    matmat: Callable[[torch.Tensor], torch.Tensor]
    rmatmat: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
    rows: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
    row_norms2: Optional[torch.Tensor] = None
    symmetric: bool = False

    def rmm(self, v: torch.Tensor) -> torch.Tensor:
        if self.rmatmat is not None:
            return self.rmatmat(v)
        if self.symmetric:
            return self.matmat(v)
        raise ValueError("sketch: a Gaussian sketch needs products with K^T; give SketchOperator(rmatmat=...) "
                         "or symmetric=True")


def as_operator(K, *, device=None, dtype=None, symmetric: bool = False) -> SketchOperator:
    """Wrap a dense tensor, torch sparse tensor, scipy.sparse matrix or SketchOperator as a SketchOperator."""
    if isinstance(K, SketchOperator):
        return K
    try:  # scipy.sparse -> torch sparse CSR (no hard dependency at import time)
        import scipy.sparse as sp
        if sp.issparse(K):
            K = K.tocsr()
            dev, dt = resolve_device(device, dtype)
            K = torch.sparse_csr_tensor(torch.as_tensor(K.indptr, dtype=torch.int64),
                                        torch.as_tensor(K.indices, dtype=torch.int64),
                                        torch.as_tensor(K.data), size=K.shape, dtype=dt, device=dev,
                                        check_invariants=False)
    except ImportError:  # pragma: no cover
        pass
    if not isinstance(K, torch.Tensor):
        raise TypeError(f"sketch: K must be a torch tensor, a scipy.sparse matrix or a SketchOperator, "
                        f"got {type(K).__name__}")
    if K.dim() != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"sketch: K must be a square matrix, got shape {tuple(K.shape)}")
    n = K.shape[0]
    dev, dt = resolve_device(device, dtype, like=K if not K.is_sparse and K.layout == torch.strided else None)
    if K.layout == torch.strided:
        K = K.to(device=dev, dtype=dt)
        return SketchOperator(n, matmat=lambda v: K @ v, rmatmat=lambda v: K.T @ v,
                              rows=lambda idx: K.index_select(0, idx), row_norms2=(K * K).sum(1),
                              symmetric=symmetric)
    # sparse: torch CSR for products on the device; a scipy CSR copy (CPU) for fast row extraction
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    import numpy as np
    import scipy.sparse as sp
    Kc = K.to_sparse_coo().coalesce().to(device=device or K.device, dtype=dtype or K.dtype)
    Kcsr = Kc.to_sparse_csr()
    KT = Kc.t().coalesce().to_sparse_csr()
    vals, ij = Kc.values(), Kc.indices()
    vnp = vals.detach().cpu().numpy()
    ijn = ij.cpu().numpy()
    Ks = sp.csr_matrix((vnp, (ijn[0], ijn[1])), shape=(n, n))
    rn2 = torch.zeros(n, dtype=vals.dtype, device=vals.device).index_add_(0, ij[0], vals * vals)

    def rows(idx):
        return torch.from_numpy(np.asarray(Ks[idx.cpu().numpy()].toarray())).to(device=vals.device,
                                                                                 dtype=vals.dtype)
    return SketchOperator(n, matmat=lambda v: Kcsr @ v, rmatmat=lambda v: KT @ v, rows=rows, row_norms2=rn2,
                          symmetric=symmetric)


def _pinv_solve(G: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """w = G^+ r for a small symmetric PSD Gram matrix (rank-deficient blocks are fine)."""
    if G.shape[0] == 1:
        g = G[0, 0]
        return r / g if g > 0 else torch.zeros_like(r)
    return torch.linalg.pinv(G, hermitian=True) @ r


def solve(K, b: torch.Tensor, *, x0: Optional[torch.Tensor] = None, sketch: str = "rows",
          sketch_size: Optional[int] = None, tol: float = 1e-8, atol: float = 0.0,
          max_iter: Optional[int] = None, stop: Optional[Callable[[float, int], bool]] = None,
          row_probs: str = "norm", symmetric: bool = False, generator: Optional[torch.Generator] = None,
          seed: Optional[int] = None, time_limit: Optional[float] = None, check_every: int = 1,
          grow: bool = False, max_sketch_size: Optional[int] = None, stall_windows: Optional[int] = None,
          device=None,
          dtype=None) -> SolverOutput:
    """Solve the square system ``K z = b`` by randomized sketch-and-project.

    Parameters
    ----------
    K : dense tensor (N, N), torch sparse tensor, scipy.sparse matrix, or :class:`SketchOperator`.
    b : right-hand side, shape (N,).
    x0 : starting point (default zeros). Not modified.
    sketch : ``"rows"`` (block Kaczmarz) or ``"gaussian"``.
    sketch_size : rows/columns of S per iteration, q (default ``min(N, max(1, ceil(sqrt(N))))``).
    tol, atol : stop when ``‖K z − b‖ <= max(atol, tol·‖b‖)``.
    max_iter : iteration cap (default ``100 000``, the reference code's inner cap).
    stop : optional ``stop(residual_norm, iteration) -> bool``; when given it *replaces* the tol test
        (this is how an outer method imposes an adaptive accuracy condition).
    row_probs : ``"norm"`` (∝ ‖K_i‖², Strohmer–Vershynin) or ``"uniform"``.
    generator / seed : randomness source (a fresh ``torch.Generator`` seeded with ``seed`` if given).
    grow : adaptive block size. The contraction factor per iteration improves with q (at q = N one projection
        solves the system exactly), so when the best residual over a window of ``max(8, ceil(2N/q))`` iterations
        has not halved, q doubles, up to ``max_sketch_size`` (default N). Iterations taken with q = N are exact
        projections, i.e. direct solves; they are counted in ``counts["exact_projections"]``.
    stall_windows : give up (status SLOW_PROGRESS) after this many consecutive windows at the largest allowed
        block size in which the residual did not halve — e.g. an inconsistent (singular) system, where the
        caller would rather regularize than spend ``max_iter`` iterations.

    Returns a :class:`SolverOutput` with ``x`` = z, status OPTIMAL when the stopping test held, ITERATION_LIMIT /
    TIME_LIMIT otherwise, NUMERICAL_ERROR on NaN/inf; ``certificates["residual"]`` = ‖K z − b‖,
    ``certificates["relative_residual"]``; counts ``operator`` (products with K or Kᵀ, one column each),
    ``linear_iterations``, ``sketch_growths``, ``exact_projections``; extras ``sketch_size`` (final q).
    """
    t0 = time.perf_counter()
    if sketch not in ("rows", "gaussian"):
        raise ValueError(f"sketch must be 'rows' or 'gaussian', got {sketch!r}")
    if row_probs not in ("norm", "uniform"):
        raise ValueError(f"row_probs must be 'norm' or 'uniform', got {row_probs!r}")
    if not isinstance(b, torch.Tensor):
        raise TypeError(f"sketch: b must be a torch tensor, got {type(b).__name__}")
    dev, dt = resolve_device(device, dtype, like=b)
    op = as_operator(K, device=dev, dtype=dt, symmetric=symmetric)
    N = op.n
    if b.shape != (N,):
        raise ValueError(f"sketch: b must have shape ({N},) to match K, got {tuple(b.shape)}")
    b = b.to(device=dev, dtype=dt)
    q = sketch_size if sketch_size is not None else min(N, max(1, math.ceil(math.sqrt(N))))
    if not (isinstance(q, int) and 1 <= q <= N):
        raise ValueError(f"sketch_size must be an int in [1, {N}], got {sketch_size!r}")
    if sketch == "rows" and op.rows is None:
        raise ValueError("sketch='rows' needs row access: give SketchOperator(rows=...) or use sketch='gaussian'")
    max_iter = 100_000 if max_iter is None else int(max_iter)
    if generator is None:
        generator = torch.Generator(device=dev)
        generator.manual_seed(0 if seed is None else int(seed))

    z = torch.zeros(N, device=dev, dtype=dt) if x0 is None else x0.detach().to(device=dev, dtype=dt).clone()
    if z.shape != (N,):
        raise ValueError(f"sketch: x0 must have shape ({N},), got {tuple(z.shape)}")
    r = (op.matmat(z[:, None])[:, 0] - b) if x0 is not None else -b.clone()
    nops = 1 if x0 is not None else 0
    bnorm = float(b.norm())
    thresh = max(atol, tol * bnorm)
    probs = None
    if sketch == "rows":
        if row_probs == "norm" and op.row_norms2 is not None:
            probs = op.row_norms2.to(dt).clamp_min(0)
            if float(probs.sum()) <= 0:
                probs = None
        if probs is None:
            probs = torch.ones(N, device=dev, dtype=dt)
        q = min(q, int((probs > 0).sum()))

    def done(rn: float, j: int) -> bool:
        return stop(rn, j) if stop is not None else rn <= thresh

    rn = float(r.norm())
    if probs is not None and not bool(torch.isfinite(probs).all()):
        rn = math.nan  # NaN/inf in K: report, do not sample
    status, msg, j = Status.ITERATION_LIMIT, "", 0
    history = []
    q_full = N if probs is None else int((probs > 0).sum())  # a block of q_full rows is the whole system
    q_cap = q_full if max_sketch_size is None else max(q, min(q_full, int(max_sketch_size)))
    growths, exact, n_stall = 0, 0, 0
    window = max(50, 20 * math.ceil(N / q))
    w_start, w_ref, w_best = 0, None, math.inf
    if not math.isfinite(rn):
        status, msg = Status.NUMERICAL_ERROR, "non-finite entries in K or b (before the first iteration)"
    elif done(rn, 0):
        status = Status.OPTIMAL
    else:
        for j in range(1, max_iter + 1):
            if sketch == "rows":
                idx = torch.multinomial(probs, q, replacement=False, generator=generator)
                A = op.rows(idx)                       # (q, N) = Sᵀ K
                rs = r.index_select(0, idx)
                nops += q
            else:
                S = torch.randn(N, q, device=dev, dtype=dt, generator=generator)
                A = op.rmm(S).T                        # Sᵀ K, via q products with Kᵀ
                rs = S.T @ r
                nops += q
            exact += int(q >= q_full)
            w = _pinv_solve(A @ A.T, rs)
            d = -(A.T @ w)                            # projection step  −Kᵀ S (SᵀKKᵀS)^+ Sᵀ r
            z = z + d
            r = r + op.matmat(d[:, None])[:, 0]
            nops += 1
            if j % check_every:
                continue
            rn = float(r.norm())
            if not math.isfinite(rn):
                status, msg = Status.NUMERICAL_ERROR, f"non-finite residual at sketch iteration {j}"
                break
            if done(rn, j):
                status = Status.OPTIMAL
                break
            if (grow and q < q_cap) or stall_windows:
                # stall test: Kaczmarz residuals are not monotone, so compare the window's best to its start
                w_ref = rn if w_ref is None else w_ref
                w_best = min(w_best, rn)
                if j - w_start >= window:
                    stalled = w_best > 0.5 * w_ref
                    if stalled and grow and q < q_cap:
                        q = min(q_cap, 2 * q)
                        growths += 1
                        window = max(50, 20 * math.ceil(N / q))
                    elif stall_windows:
                        n_stall = n_stall + 1 if stalled else 0
                        if n_stall >= stall_windows:
                            status, msg = Status.SLOW_PROGRESS, f"sketch iteration stalled at residual {rn:.3e}"
                            break
                    w_start, w_ref, w_best = j, rn, math.inf
            if time_limit is not None and time.perf_counter() - t0 > time_limit:
                status = Status.TIME_LIMIT
                break
    if status == Status.ITERATION_LIMIT:
        msg = f"sketch solver hit max_iter={max_iter} with residual {rn:.3e}"
    return SolverOutput(x=z, status=status, iterations=j, message=msg,
                        certificates={"residual": rn, "relative_residual": rn / bnorm if bnorm > 0 else rn},
                        counts={"operator": nops, "linear_iterations": j, "sketch_growths": growths,
                                "exact_projections": exact}, history=history,
                        solve_time=time.perf_counter() - t0, extras={"sketch": sketch, "sketch_size": q})
