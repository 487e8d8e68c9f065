"""Successive over-relaxation (SOR) and symmetric SOR (SSOR) for ``A x = b``.

Split ``A = D + L + U`` (diagonal, strictly lower, strictly upper). One SOR sweep with relaxation ``ω`` is

    (D + ωL) x_{k+1} = ω b − (ωU + (ω − 1)D) x_k,

i.e. a *triangular solve* with ``D + ωL`` (dense: ``torch.linalg.solve_triangular``; sparse CSR:
``torch.triangular_solve``, MKL on CPU / cuSPARSE on CUDA). ``ω = 1`` is Gauss–Seidel. SSOR follows each
forward sweep with the backward one, ``(D + ωU) x = ω b − (ωL + (ω − 1)D) x``.

Convergence: for SPD ``A`` SOR converges iff ``0 < ω < 2`` (Ostrowski–Reich); for any ``A`` the iteration
matrix has spectral radius ``≥ |ω − 1|`` (Kahan), so ``ω`` outside ``(0, 2)`` never converges and is rejected.
For consistently ordered matrices (5-point Laplacians) with Jacobi spectral radius ``ρ_J`` the optimal
factor is ``ω* = 2 / (1 + sqrt(1 − ρ_J²))`` (Young); :func:`omega_opt` estimates it.

Red–black ordering: when the off-diagonal graph of ``A`` is bipartite (e.g. a 5-point grid stencil, colours
by ``(i + j) mod 2``), the unknowns of one colour are coupled only to the other colour, so a sweep is two
vectorised half-steps ``x_R ← (1−ω)x_R + ω D_R⁻¹(b_R − A_RB x_B)``, then the same for black — SOR in the
red-then-black ordering, with the same fixed point as natural ordering and, for consistently ordered
matrices, the same asymptotic rate. This is the form that runs well on GPUs.

Stopping: relative residual ``‖b − A x_k‖₂ / ‖b‖₂ ≤ tol``; the returned ``iterations`` is the number of
sweeps (an SSOR step counts as one iteration of two sweeps; ``counts["sweeps"]`` has the sweep count).

Reference: M. Khodak, E. Chow, M.-F. Balcan, A. Talwalkar, "Learning to Relax: Setting Solver Parameters
Across a Sequence of Linear System Instances", ICLR 2024 (arXiv 2310.02246) — SOR as used there; Y. Saad,
*Iterative Methods for Sparse Linear Systems*, 2nd ed., §4.1 (SOR/SSOR, red–black ordering).
"""
from __future__ import annotations

import contextlib
import math
import time
import warnings
from typing import Any, Optional

import numpy as np
import scipy.sparse as sp
import torch

from optdsl.solvers.common import Budget, Callback, SolverOutput, Status, resolve_device

__all__ = ["SORMatrix", "solve", "solve_spd", "omega_opt", "jacobi_spectral_radius", "redblack_colors"]

# A residual this many times larger than the starting one means the iteration has blown up.
_DIVERGENCE_FACTOR = 1e8


def _csr_tensor(M: sp.csr_matrix, device, dtype) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR is beta" / invariant-check notices
        return torch.sparse_csr_tensor(torch.as_tensor(M.indptr, dtype=torch.int64),
                                       torch.as_tensor(M.indices, dtype=torch.int64),
                                       torch.as_tensor(M.data), size=M.shape).to(device=device, dtype=dtype)


def _to_scipy(A: Any) -> Optional[sp.csr_matrix]:
    """scipy CSR copy of a sparse input (scipy or torch sparse), or None for a dense input."""
    if sp.issparse(A):
        return sp.csr_matrix(A, dtype=np.float64)
    if isinstance(A, torch.Tensor) and A.layout != torch.strided:
        C = A.detach().to("cpu", torch.float64)
        if A.layout == torch.sparse_csr:
            return sp.csr_matrix((C.values().numpy(), C.col_indices().numpy(), C.crow_indices().numpy()),
                                 shape=tuple(A.shape))
        C = C.to_sparse_coo().coalesce() if A.layout != torch.sparse_coo else C.coalesce()
        i = C.indices().numpy()
        return sp.csr_matrix((C.values().numpy(), (i[0], i[1])), shape=tuple(A.shape))
    return None


def redblack_colors(A: Any) -> np.ndarray:
    """Boolean "is red" mask for a 2-colouring of the off-diagonal graph of ``A``.

    Found by breadth-first search from one node per connected component; raises ``ValueError`` when the
    graph is not bipartite (then no red–black ordering exists). For an ``ny × nx`` 5-point grid in natural
    order the result is the checkerboard ``(i + j) % 2`` up to swapping colours per component.
    """
    S = _to_scipy(A)
    if S is None:
        S = sp.csr_matrix(np.asarray(A.detach().cpu() if isinstance(A, torch.Tensor) else A))
    S = S.copy()
    S.setdiag(0)
    S.eliminate_zeros()
    G = (abs(S) + abs(S).T).tocsr()
    n = G.shape[0]
    from scipy.sparse.csgraph import breadth_first_order, connected_components

    _, labels = connected_components(G, directed=False)
    depth = np.full(n, -1, dtype=np.int64)
    for comp in range(labels.max() + 1):
        root = int(np.flatnonzero(labels == comp)[0])
        order, pred = breadth_first_order(G, root, directed=False, return_predecessors=True)
        depth[root] = 0
        for v in order[1:]:  # BFS order: a predecessor's depth is always known first
            depth[v] = depth[pred[v]] + 1
    red = depth % 2 == 0
    rows = np.repeat(np.arange(n), np.diff(G.indptr))
    if np.any(red[rows] == red[G.indices]):
        raise ValueError("ordering='redblack' needs a matrix whose off-diagonal graph is 2-colourable "
                         "(e.g. a 5-point grid Laplacian); this A has an odd cycle — use ordering='natural'")
    return red


class SORMatrix:
    """``A`` split once for SOR sweeps on a given device/dtype; reuse it across many solves and ω values.

    Accepts a dense ``torch.Tensor`` / ``numpy.ndarray``, a ``scipy.sparse`` matrix, or a torch sparse tensor
    (COO or CSR). Sparse inputs are split on the CPU once (structure work), then the pieces live on
    ``device`` as CSR tensors. ``ordering`` is ``"natural"`` or ``"redblack"`` (``colors`` optionally gives the
    red mask; otherwise it is found by :func:`redblack_colors`). The input is never modified.
    """

    def __init__(self, A: Any, *, ordering: str = "natural", colors: Any = None, device: Any = None,
                 dtype: Any = None):
        if ordering not in ("natural", "redblack"):
            raise ValueError(f"ordering must be 'natural' or 'redblack', got {ordering!r}")
        if isinstance(A, SORMatrix):
            raise TypeError("A is already a SORMatrix; pass it to solve() directly")
        shape = tuple(getattr(A, "shape", ()))
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"A must be a square 2-D matrix, got shape {shape}")
        like = A if isinstance(A, torch.Tensor) else None
        self.device, self.dtype = resolve_device(device, dtype, like=like)
        self.n = n = shape[0]
        self.ordering = ordering
        S = _to_scipy(A)
        self.sparse = S is not None
        if S is None:
            if isinstance(A, torch.Tensor):
                Ad = A.detach().to(self.device, self.dtype)
            elif isinstance(A, np.ndarray) or isinstance(A, (list, tuple)):
                Ad = torch.as_tensor(np.asarray(A, dtype=np.float64)).to(self.device, self.dtype)
            else:
                raise TypeError(f"A must be a torch tensor, numpy array or scipy.sparse matrix, got {type(A)}")
            self.A = Ad
            d = torch.diagonal(Ad).clone()
        else:
            S.sum_duplicates()
            S.sort_indices()
            self.A = _csr_tensor(S, self.device, self.dtype)
            d = torch.as_tensor(S.diagonal()).to(self.device, self.dtype)
        if not bool(torch.isfinite(self.A.values() if self.sparse else self.A).all()):
            raise ValueError("A contains NaN or inf entries")
        zero = torch.nonzero(d == 0).flatten()
        if zero.numel():
            raise ValueError(f"A has a zero diagonal entry at row {int(zero[0])} (of {n}); SOR divides by a_ii")
        self.d = d
        if ordering == "natural":
            self._setup_natural(S)
        else:
            self._setup_redblack(S if S is not None else sp.csr_matrix(self.A.cpu().double().numpy()), colors)

    # -- natural ordering: triangular factors ------------------------------------------------------------
    def _setup_natural(self, S):
        self._tri_cache: dict = {}  # lower/upper -> (omega, D + omega*T): one factor each, no growth
        if not self.sparse:
            self.Lo = torch.tril(self.A, -1)
            self.Up = torch.triu(self.A, 1)
            return
        Lo = sp.tril(S, k=0, format="csr")      # lower part incl. diagonal: the triangular-solve pattern
        Lo.sort_indices()
        rows = np.repeat(np.arange(self.n), np.diff(Lo.indptr))
        self._lo_is_diag = torch.as_tensor(rows == Lo.indices, device=self.device)
        self._lo = _csr_tensor(Lo, self.device, self.dtype)
        Up = sp.triu(S, k=0, format="csr")
        Up.sort_indices()
        rows = np.repeat(np.arange(self.n), np.diff(Up.indptr))
        self._up_is_diag = torch.as_tensor(rows == Up.indices, device=self.device)
        self._up = _csr_tensor(Up, self.device, self.dtype)
        self.Lo = _csr_tensor(sp.tril(S, k=-1, format="csr"), self.device, self.dtype)
        self.Up = _csr_tensor(sp.triu(S, k=1, format="csr"), self.device, self.dtype)

    def _tri(self, omega: float, lower: bool) -> torch.Tensor:
        """D + ωL (lower) or D + ωU (upper), built once per ω."""
        hit = self._tri_cache.get(lower)
        if hit is not None and hit[0] == omega:
            return hit[1]
        if not self.sparse:
            T = omega * (self.Lo if lower else self.Up) + torch.diag(self.d)
        else:
            base, is_diag = (self._lo, self._lo_is_diag) if lower else (self._up, self._up_is_diag)
            vals = torch.where(is_diag, base.values(), omega * base.values())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                T = torch.sparse_csr_tensor(base.crow_indices(), base.col_indices(), vals, size=base.shape)
        self._tri_cache[lower] = (omega, T)
        return T

    def _trisolve(self, T: torch.Tensor, r: torch.Tensor, lower: bool) -> torch.Tensor:
        if self.sparse:  # torch.triangular_solve is the entry point that accepts sparse CSR (MKL / cuSPARSE)
            return torch.triangular_solve(r[:, None], T, upper=not lower).solution[:, 0]
        return torch.linalg.solve_triangular(T, r[:, None], upper=not lower)[:, 0]

    # -- red-black ordering: two vectorised half-sweeps ----------------------------------------------------
    def _setup_redblack(self, S: sp.csr_matrix, colors):
        red = redblack_colors(S) if colors is None else np.asarray(
            colors.detach().cpu() if isinstance(colors, torch.Tensor) else colors, dtype=bool).ravel()
        if red.shape != (self.n,):
            raise ValueError(f"colors must be a boolean mask of shape ({self.n},), got {red.shape}")
        R, B = np.flatnonzero(red), np.flatnonzero(~red)
        off = S.copy()
        off.setdiag(0)
        off.eliminate_zeros()
        if off[R][:, R].nnz or off[B][:, B].nnz:
            raise ValueError("colors is not a valid red-black colouring: two same-coloured unknowns are coupled")
        self.R = torch.as_tensor(R, device=self.device)
        self.B = torch.as_tensor(B, device=self.device)
        if self.sparse:
            self.ARB = _csr_tensor(off[R][:, B].tocsr(), self.device, self.dtype)
            self.ABR = _csr_tensor(off[B][:, R].tocsr(), self.device, self.dtype)
        else:
            self.ARB = self.A[self.R][:, self.B]
            self.ABR = self.A[self.B][:, self.R]
        self.dR, self.dB = self.d[self.R], self.d[self.B]

    # -- public pieces -------------------------------------------------------------------------------
    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        """A @ x."""
        return self.A @ x

    def sweep(self, x: torch.Tensor, b: torch.Tensor, omega: float, symmetric: bool = False) -> torch.Tensor:
        """One SOR sweep (or one SSOR forward+backward pair) from ``x``; returns a new tensor."""
        if self.ordering == "redblack":
            xR, xB = x[self.R], x[self.B]
            bR, bB = b[self.R], b[self.B]
            xR = (1 - omega) * xR + omega * (bR - self.ARB @ xB) / self.dR
            xB = (1 - omega) * xB + omega * (bB - self.ABR @ xR) / self.dB
            if symmetric:  # backward sweep: black then red
                xB = (1 - omega) * xB + omega * (bB - self.ABR @ xR) / self.dB
                xR = (1 - omega) * xR + omega * (bR - self.ARB @ xB) / self.dR
            out = torch.empty_like(x)
            out[self.R], out[self.B] = xR, xB
            return out
        # (D + ωL) x⁺ = ω(b − U x) + (1 − ω) D x
        x = self._trisolve(self._tri(omega, True), omega * (b - self.Up @ x) + (1 - omega) * self.d * x, True)
        if symmetric:  # (D + ωU) x⁺ = ω(b − L x) + (1 − ω) D x
            x = self._trisolve(self._tri(omega, False), omega * (b - self.Lo @ x) + (1 - omega) * self.d * x, False)
        return x


@contextlib.contextmanager
def _single_thread_if_small(M: "SORMatrix", limit: int = 200_000):
    """Run small CPU sweeps on one thread: a triangular solve is sequential anyway, and on a loaded 2-core
    machine OpenMP hand-offs made a 36-unknown sparse mat-vec ~1000x slower (13 ms vs 5 µs, measured)."""
    if M.device.type != "cpu" or M.n > limit:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _vector(v: Any, n: int, name: str, device, dtype) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        t = v.detach()
    elif isinstance(v, (np.ndarray, list, tuple)):
        t = torch.as_tensor(np.asarray(v, dtype=np.float64))
    else:
        raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(v).__name__}")
    if tuple(t.shape) != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match A of shape ({n}, {n}), got {tuple(t.shape)}")
    return t.to(device=device, dtype=dtype).clone()  # clone: never alias the user's tensor


def check_omega(omega: float) -> float:
    """Validate a relaxation factor: SOR cannot converge outside (0, 2) (Kahan: ρ ≥ |ω − 1|)."""
    try:
        w = float(omega)
    except (TypeError, ValueError):
        raise TypeError(f"omega must be a real number, got {omega!r}") from None
    if not (0.0 < w < 2.0):
        raise ValueError(f"omega must lie in (0, 2), got {w}: for omega outside (0, 2) the SOR iteration "
                         f"matrix has spectral radius >= |omega - 1| >= 1 (Kahan) and cannot converge")
    return w


def solve(A: Any, b: Any, *, omega: float = 1.0, x0: Any = None, tol: float = 1e-8,
          max_iter: Optional[int] = None, symmetric: bool = False, ordering: str = "natural",
          colors: Any = None, time_limit: Optional[float] = None, callback: Optional[Callback] = None,
          device: Any = None, dtype: Any = None) -> SolverOutput:
    """Solve ``A x = b`` by SOR (``symmetric=False``) or SSOR sweeps with relaxation ``omega``.

    ``A``: dense torch/numpy, scipy.sparse, torch sparse (COO/CSR), or a prepared :class:`SORMatrix`
    (then ``ordering``/``colors``/``device``/``dtype`` come from it). Stops when
    ``‖b − A x‖/‖b‖ ≤ tol`` (status OPTIMAL), after ``max_iter`` sweeps (default ``max(100, 10 n)``;
    ITERATION_LIMIT), on ``time_limit`` (TIME_LIMIT), when ``callback(info)`` returns False (INTERRUPTED),
    or when the residual becomes non-finite or grows by 1e8 (NUMERICAL_ERROR, message names the iteration).
    ``x`` in the output is a tensor on ``device``; certificates: ``"residual"`` (relative) and
    ``"residual_abs"``; counts: ``"linear_iterations"``, ``"sweeps"``, ``"matvec"``.
    """
    t0 = time.perf_counter()
    omega = check_omega(omega)
    if not (tol > 0):
        raise ValueError(f"tol must be > 0, got {tol}")
    if isinstance(A, SORMatrix):
        M = A
    else:
        # device/dtype: explicit, else A's (torch), else b's (torch), else CPU float64
        like = A if isinstance(A, torch.Tensor) else (b if isinstance(b, torch.Tensor) else None)
        if like is not None and not isinstance(A, torch.Tensor) and not like.is_floating_point():
            like = None
        dev, dt = resolve_device(device, dtype, like=like)
        M = SORMatrix(A, ordering=ordering, colors=colors, device=dev, dtype=dt)
    with _single_thread_if_small(M):
        out = _iterate(M, b, omega, x0, tol, max_iter, symmetric, time_limit, callback)
    out.solve_time = time.perf_counter() - t0
    return out


def _iterate(M: "SORMatrix", b, omega, x0, tol, max_iter, symmetric, time_limit, callback) -> SolverOutput:
    """The sweep loop of :func:`solve` (M prepared, ω and tol validated)."""
    n = M.n
    bt = _vector(b, n, "b", M.device, M.dtype)
    x = torch.zeros(n, device=M.device, dtype=M.dtype) if x0 is None else _vector(x0, n, "x0", M.device, M.dtype)
    if max_iter is None:
        max_iter = max(100, 10 * n)
    bnorm = float(torch.linalg.vector_norm(bt))
    scale = bnorm if bnorm > 0 else 1.0
    res = float(torch.linalg.vector_norm(bt - M.matvec(x))) / scale
    res0 = res
    budget = Budget(max_iter, time_limit, callback)
    extras = {"omega": omega, "ordering": M.ordering, "symmetric": symmetric, "initial_residual": res0}
    status, message, k, matvecs = None, "", 0, 1
    if not math.isfinite(res):
        status, message = Status.NUMERICAL_ERROR, "initial residual is not finite (check A, b, x0)"
    elif res <= tol:
        status, message = Status.OPTIMAL, "x0 already satisfies the tolerance"
    else:
        try:
            for k in budget:
                x = M.sweep(x, bt, omega, symmetric)
                res = float(torch.linalg.vector_norm(bt - M.matvec(x))) / scale
                matvecs += 1
                if not math.isfinite(res) or res > _DIVERGENCE_FACTOR * max(res0, 1.0):
                    status = Status.NUMERICAL_ERROR
                    message = (f"SOR diverged at iteration {k + 1} with omega={omega}: relative residual {res:.3g} "
                               f"(started at {res0:.3g}); A may not be SPD or omega is too large")
                    k += 1
                    break
                if res <= tol:
                    status, message = Status.OPTIMAL, f"relative residual {res:.3g} <= tol {tol:g}"
                    budget.report(k + 1, x=x, residual=res)
                    k += 1
                    break
                if budget.report(k + 1, x=x, residual=res):
                    k += 1
                    break
            else:
                k = max_iter
        except KeyboardInterrupt:
            budget.interrupt()
        if status is None:
            status = budget.status or Status.ITERATION_LIMIT
            message = message or f"{status.value} after {k} iterations, relative residual {res:.3g}"
    sweeps = k * (2 if symmetric else 1)
    return SolverOutput(
        x=x, status=status, objective=None, iterations=k, message=message,
        certificates={"residual": res, "residual_abs": res * scale},
        counts={"linear_iterations": k, "sweeps": sweeps, "matvec": matvecs},
        history=budget.history, extras=extras)


def jacobi_spectral_radius(A: Any, *, iters: int = 40, seed: int = 0, device: Any = None,
                           dtype: Any = None) -> float:
    """Estimate ρ_J = ρ(I − D⁻¹A) for symmetric ``A`` with positive diagonal.

    I − D⁻¹A is similar to I − D^{-1/2} A D^{-1/2} =: I − S, so ρ_J = max |1 − λ(S)|; the extreme
    eigenvalues of S come from ``iters`` Lanczos steps (full reorthogonalisation), which converge far
    faster than power iteration on the ± symmetric Jacobi spectrum. Runs on ``A``'s device.
    """
    M = A if isinstance(A, SORMatrix) else SORMatrix(A, device=device, dtype=dtype)
    if bool((M.d <= 0).any()):
        raise ValueError("jacobi_spectral_radius needs a positive diagonal (symmetric positive definite A)")
    s = M.d.rsqrt()
    g = torch.Generator(device="cpu").manual_seed(seed)
    q = torch.randn(M.n, generator=g, dtype=torch.float64).to(M.device, M.dtype)
    k = max(2, min(iters, M.n))
    Q = torch.zeros(k, M.n, device=M.device, dtype=M.dtype)
    alpha, beta = [], []
    q = q / torch.linalg.vector_norm(q)
    for j in range(k):
        Q[j] = q
        w = s * M.matvec(s * q)
        a = float(w @ q)
        for _ in range(2):  # full reorthogonalisation, twice ("twice is enough"); k is small
            w = w - Q[: j + 1].T @ (Q[: j + 1] @ w)
        alpha.append(a)
        bn = float(torch.linalg.vector_norm(w))
        if j == k - 1 or bn < 1e-10 * max(1.0, abs(a)) or not math.isfinite(bn):
            break
        beta.append(bn)
        q = w / bn
    T = np.diag(alpha) + np.diag(beta[: len(alpha) - 1], 1) + np.diag(beta[: len(alpha) - 1], -1)
    ev = np.linalg.eigvalsh(T)
    return float(max(abs(1 - ev[0]), abs(1 - ev[-1])))


def omega_opt(rho_jacobi: float) -> float:
    """Young's optimal factor ω* = 2 / (1 + sqrt(1 − ρ_J²)) for consistently ordered matrices."""
    r = min(max(float(rho_jacobi), 0.0), 1.0 - 1e-12)
    return 2.0 / (1.0 + math.sqrt(1.0 - r * r))


def solve_spd(A: Any, b: Any, x0: Any = None, tol: float = 1e-8, *, omega: Optional[float] = None,
              max_iter: Optional[int] = None, symmetric: bool = False, ordering: str = "natural",
              device: Any = None, dtype: Any = None):
    """Linear-solver callback for SPD systems: ``(x, info)``.

    ``omega=None`` estimates ``ω*`` from the Jacobi spectral radius (power iteration, clipped to
    [1, 1.98]); exact for consistently ordered matrices and a safe over-relaxation for other SPD ones.
    ``info`` holds ``status`` (str), ``iterations``, ``residual`` (relative), ``omega``, ``converged``.
    """
    M = A if isinstance(A, SORMatrix) else SORMatrix(A, ordering=ordering, device=device, dtype=dtype)
    if omega is None:
        rho = jacobi_spectral_radius(M)
        omega = min(max(omega_opt(rho), 1.0), 1.98) if math.isfinite(rho) else 1.0
    out = solve(M, b, omega=omega, x0=x0, tol=tol, max_iter=max_iter, symmetric=symmetric)
    return out.x, {"status": out.status.value, "converged": out.status is Status.OPTIMAL,
                   "iterations": out.iterations, "residual": out.certificates["residual"], "omega": float(omega),
                   "message": out.message}
