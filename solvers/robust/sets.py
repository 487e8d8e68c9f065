"""Uncertainty sets and their support functions.

Every set lives in R^n (``dim``). Box, Ellipsoid and Budget are affine images of a normalised set Z ⊂ R^k,
``U = {c + P z : z ∈ Z}``, and Polyhedron is given by inequalities ``U = {u : A u <= b}``:

* Box        Z = {‖z‖∞ ≤ 1}               σ_U(v) = cᵀv + ‖Pᵀv‖₁
* Ellipsoid  Z = {‖z‖₂ ≤ ρ}               σ_U(v) = cᵀv + ρ‖Pᵀv‖₂
* Budget     Z = {‖z‖∞ ≤ 1, ‖z‖₁ ≤ Γ}     σ_U(v) = cᵀv + min_{λ≥0, μ≥0} {Γλ + 1ᵀμ : μ + λ1 ≥ |Pᵀv|}
  (Bertsimas & Sim 2004, "The price of robustness": the LP dual of max{wᵀz : z ∈ Z})
* Polyhedron                               σ_U(v) = min_{λ≥0} {bᵀλ : Aᵀλ = v}   (LP duality, U nonempty, bounded)

σ_U(v) = max_{u∈U} vᵀu is the support function; the robust counterpart of an affine-in-u constraint is
"nominal part + σ_U(...) ≤ rhs" (Ben-Tal, El Ghaoui & Nemirovski, *Robust Optimization*, 2009, ch. 1-2).
For Budget and Polyhedron the cvxpy form introduces dual variables; it is an *upper* representation of σ that is
exact at the optimum, so it may only appear on the convex side (left of ``<=``, or in a minimised objective).
"""
from __future__ import annotations

import copy
import itertools
import math
from typing import Optional

import numpy as np
from scipy.optimize import linprog
from ..lazy import lazy_module

cp = lazy_module("cvxpy")   # imported on first use: ~0.7 s that models without a convex step skip

__all__ = ["UncertaintySet", "Box", "Ellipsoid", "Budget", "Polyhedron"]


def _vec(name: str, value, dim: Optional[int] = None) -> np.ndarray:
    arr = np.array(value, dtype=float, copy=True)  # copy: never alias the caller's array
    if arr.ndim == 0 and dim is not None:
        arr = np.full(dim, float(arr))
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D vector, got shape {arr.shape}")
    if dim is not None and arr.shape[0] != dim:
        raise ValueError(f"{name} must have shape ({dim},), got {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    return arr


def _mat(name: str, value, rows: int) -> np.ndarray:
    arr = np.array(value, dtype=float, copy=True)
    if arr.ndim == 1:  # a vector of scales means diag(P)
        arr = np.diag(arr)
    if arr.ndim != 2 or arr.shape[0] != rows:
        raise ValueError(f"{name} must be a matrix with {rows} rows (the dimension of center), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite: an infinite scale makes the uncertainty set unbounded")
    return arr


def _as_cvx_vector(v, dim: int, name: str = "v"):
    """Accept a numpy vector or a cvxpy expression of shape (dim,)."""
    expr = v if isinstance(v, cp.Expression) else cp.Constant(np.asarray(v, dtype=float))
    if expr.shape not in ((dim,), (dim, 1)) and not (dim == 1 and expr.shape == ()):
        raise ValueError(f"{name} must have shape ({dim},) to pair with a {dim}-dimensional uncertainty set, "
                         f"got {expr.shape}")
    return cp.reshape(expr, (dim,), order="F") if expr.shape != (dim,) else expr


def _as_cvx_rows(V, dim: int):
    """Accept a numpy matrix or a cvxpy expression of shape (m, dim): one support function per row."""
    expr = V if isinstance(V, cp.Expression) else cp.Constant(np.asarray(V, dtype=float))
    if expr.ndim != 2 or expr.shape[1] != dim:
        raise ValueError(f"V must have shape (m, {dim}) (one row per constraint), got {expr.shape}")
    return expr


def _broadcast_col(vec, k: int):
    """(m,) expression -> (m, k) by repeating columns (explicit, for older cvxpy broadcasting rules)."""
    return cp.reshape(vec, (vec.shape[0], 1), order="F") @ np.ones((1, k))


class UncertaintySet:
    """Base class: ``dim``, support function (cvxpy and numeric), maximiser, membership, sampling."""

    dim: int
    is_polyhedral: bool = True

    # -- to be provided by subclasses -------------------------------------------------------------------------
    def support(self, v) -> tuple[cp.Expression, list]:
        """σ_U(v) for a cvxpy (affine) or numpy vector ``v`` of shape (dim,): (expression, extra constraints)."""
        raise NotImplementedError

    def support_rows(self, V) -> tuple[cp.Expression, list]:
        """Row-wise σ_U(V_i) for a (m, dim) cvxpy/numpy matrix V: ((m,) expression, extra constraints)."""
        raise NotImplementedError

    def worst_case(self, v) -> np.ndarray:
        """A maximiser u* ∈ U of vᵀu (numpy)."""
        raise NotImplementedError

    def constraints(self, u: cp.Expression) -> list:
        """cvxpy constraints saying ``u ∈ U`` (may introduce auxiliary variables)."""
        raise NotImplementedError

    def contains(self, u, tol: float = 1e-9) -> bool:
        """Whether the numpy point ``u`` lies in U (up to ``tol``)."""
        raise NotImplementedError

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` points of U as an (n, dim) array (boundary-heavy: useful for violation checks)."""
        raise NotImplementedError

    def point(self) -> np.ndarray:
        """Some point of U (the centre where there is one)."""
        raise NotImplementedError

    def vertices(self, max_count: int = 100_000) -> np.ndarray:
        """All vertices as a (V, dim) array; raises ValueError when there are more than ``max_count``."""
        raise ValueError(f"{type(self).__name__} has no finite vertex set")

    # -- shared ----------------------------------------------------------------------------------------------
    def support_value(self, v) -> float:
        """Numeric σ_U(v) = max_{u∈U} vᵀu."""
        v = _vec("v", v, self.dim)
        return float(v @ self.worst_case(v))


class _Affine(UncertaintySet):
    """U = {c + P z : z ∈ Z} for a normalised convex set Z ⊂ R^k.

    ``center`` and ``radius`` may have the uncertain quantity's shape (a 6×5 matrix, say: flattened row-major,
    as the quantity is) or be scalars. A set given without an array (``Box(radius=0.1)``, ``Ellipsoid()``)
    is sized by the quantity it is attached to (`for_shape`): the centre defaults to zero in that shape and
    scalars broadcast.
    """

    def __init__(self, center=None, P=None, radius=None):
        if P is not None and radius is not None:
            raise ValueError("give either radius or P, not both")
        self._spec = (center, P, radius)
        if P is None and np.ndim(center) == 0 and np.ndim(radius) == 0:
            self.dim = self.k = None  # sized later, by the uncertain quantity (for_shape)
            return
        self._build(center, P, radius, None)

    def _build(self, center, P, radius, shape):
        if center is None:
            n = (int(np.prod(shape)) if shape is not None else np.shape(P)[0] if P is not None and np.ndim(P) == 2
                 else np.size(P) if P is not None else np.size(radius))
            center = np.zeros(n)
        c = np.asarray(center, dtype=float)
        if shape is not None and c.ndim == 0:
            c = np.full(shape, float(c))
        if shape is not None and c.shape not in (tuple(shape), (int(np.prod(shape)),)):
            raise ValueError(f"center has shape {c.shape} but the uncertain quantity has shape {tuple(shape)}")
        self.center = _vec("center", c.reshape(-1) if c.ndim > 1 else c)
        n = self.center.shape[0]
        if n == 0:
            raise ValueError("center must have at least one entry")
        if not np.isfinite(self.center).all():
            raise ValueError("center must be finite (an infinite centre makes the set unbounded)")
        if radius is not None:
            r = np.asarray(radius, dtype=float)
            if r.ndim > 1:
                if r.size != n:
                    raise ValueError(f"radius has shape {r.shape}, which does not match the {n} entries of center")
                r = r.reshape(-1)
            r = _vec("radius", r, n)
            if (r < 0).any():
                raise ValueError(f"radius must be >= 0 (a negative radius is an empty set), got {r}")
            P = np.diag(r)
        elif P is None:
            P = np.eye(n)
        self.P = _mat("P", P, n)
        self.dim = n
        self.k = self.P.shape[1]

    def for_shape(self, shape) -> "_Affine":
        """This set for an uncertain quantity of `shape`: a set given without arrays is sized here (centre zero,
        scalars broadcast); a sized one must have prod(shape) dimensions."""
        shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,) if shape != () else ()))
        n = int(np.prod(shape)) if shape else 1
        if self.dim is not None:
            if self.dim != n:
                raise ValueError(f"the set has dimension {self.dim} but the uncertain quantity has shape {shape} "
                                 f"({n} entries)")
            return self
        out = copy.copy(self)
        center, P, radius = self._spec
        out._build(center, P, radius, shape or (1,))
        return out

    def _z_from_u(self, u: np.ndarray) -> Optional[np.ndarray]:
        z, *_ = np.linalg.lstsq(self.P, u - self.center, rcond=None)
        return z if np.allclose(self.P @ z, u - self.center, atol=1e-8 * (1 + np.abs(u).max())) else None

    def _z_norm_ok(self, z: np.ndarray, tol: float) -> bool:
        raise NotImplementedError

    def contains(self, u, tol: float = 1e-9) -> bool:
        u = _vec("u", u, self.dim)
        z = self._z_from_u(u)
        if z is None:
            return False
        if self._z_norm_ok(z, tol):
            return True
        if np.linalg.matrix_rank(self.P) == self.k:  # z is unique: the answer is final
            return False
        # P has a null space: another z with P z = u − c may lie in Z (an LP/SOCP feasibility check)
        zv = cp.Variable(self.k)
        pr = cp.Problem(cp.Minimize(self._z_norm_expr(zv)), [self.P @ zv == u - self.center])
        pr.solve(solver="CLARABEL")
        return pr.status == cp.OPTIMAL and zv.value is not None and self._z_norm_ok(zv.value, max(tol, 1e-7))

    def point(self) -> np.ndarray:
        return self.center.copy()

    def from_z(self, z: np.ndarray) -> np.ndarray:
        """Map normalised coordinates to the set: u = c + P z."""
        return self.center + z @ self.P.T

    def project_z(self, z: np.ndarray) -> np.ndarray:
        """Euclidean projection onto Z in the normalised coordinates (rows of a 2-D array independently)."""
        raise NotImplementedError

    def _zvar_constraints(self, u) -> tuple[cp.Variable, list]:
        z = cp.Variable(self.k)
        return z, [u == self.center + self.P @ z]


class Box(_Affine):
    """Box U = {c + P z : ‖z‖∞ ≤ 1}; ``radius`` r gives P = diag(r), i.e. |u_i − c_i| ≤ r_i; ``lo``/``hi``
    give lo ≤ u ≤ hi (centre (lo + hi)/2, radius (hi − lo)/2). Scalars broadcast to the quantity's shape."""

    def __init__(self, center=None, radius=None, P=None, *, lo=None, hi=None):
        if (lo is None) != (hi is None):
            raise ValueError("Box(lo=..., hi=...) needs both bounds")
        if lo is not None:
            if center is not None or radius is not None or P is not None:
                raise ValueError("give Box(lo=..., hi=...) or Box(center, radius / P), not both")
            lo_a, hi_a = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
            if np.any(lo_a > hi_a):
                raise ValueError(f"Box(lo, hi): lo exceeds hi somewhere (an empty set)")
            center, radius = (lo_a + hi_a) / 2, (hi_a - lo_a) / 2
            if center.ndim == 0:
                center, radius = float(center), float(radius)
        elif radius is None and P is None:
            radius = 1.0
        super().__init__(center, P=P, radius=radius)

    def __repr__(self):
        return f"Box(dim={self.dim}, k={self.k})"

    def support(self, v):
        v = _as_cvx_vector(v, self.dim)
        return self.center @ v + cp.norm1(self.P.T @ v), []

    def support_rows(self, V):
        V = _as_cvx_rows(V, self.dim)
        return V @ self.center + cp.norm(V @ self.P, 1, axis=1), []

    def worst_case(self, v):
        v = _vec("v", v, self.dim)
        return self.from_z(np.sign(self.P.T @ v))

    def constraints(self, u):
        z, cons = self._zvar_constraints(u)
        return cons + [cp.abs(z) <= 1]

    def _z_norm_ok(self, z, tol):
        return bool(np.abs(z).max(initial=0.0) <= 1 + tol)

    def _z_norm_expr(self, z):
        return cp.norm(z, "inf")

    def project_z(self, z):
        return np.clip(z, -1.0, 1.0)

    def sample(self, n, seed=0):
        rng = np.random.default_rng(seed)
        z = rng.uniform(-1, 1, (n, self.k))
        z[: n // 2] = np.sign(z[: n // 2])  # half on vertices, where violations live
        return self.from_z(z)

    def vertices(self, max_count: int = 100_000):
        if 2 ** self.k > max_count:
            raise ValueError(f"a {self.k}-dimensional box has 2^{self.k} vertices, more than max_count={max_count}")
        z = np.array(list(itertools.product([-1.0, 1.0], repeat=self.k)))
        return np.unique(self.from_z(z), axis=0)


class Ellipsoid(_Affine):
    """Ellipsoid U = {c + P z : ‖z‖₂ ≤ ρ} (default P = I, ρ = 1)."""

    is_polyhedral = False

    def __init__(self, center=None, P=None, rho: float = None, *, radius: float = None):
        if radius is not None and rho is not None and float(radius) != float(rho):
            raise ValueError(f"Ellipsoid: radius is another name for rho; got rho={rho} and radius={radius}")
        rho = 1.0 if rho is None and radius is None else float(rho if rho is not None else radius)
        super().__init__(center, P=P)
        if not np.isfinite(rho):
            raise ValueError(f"rho must be finite (an infinite radius is an unbounded set), got {rho}")
        if rho < 0:
            raise ValueError(f"rho must be >= 0 (a negative radius is an empty set), got {rho}")
        self.rho = float(rho)

    def __repr__(self):
        return f"Ellipsoid(dim={self.dim}, k={self.k}, rho={self.rho})"

    def support(self, v):
        v = _as_cvx_vector(v, self.dim)
        return self.center @ v + self.rho * cp.norm(self.P.T @ v, 2), []

    def support_rows(self, V):
        V = _as_cvx_rows(V, self.dim)
        return V @ self.center + self.rho * cp.norm(V @ self.P, 2, axis=1), []

    def worst_case(self, v):
        v = _vec("v", v, self.dim)
        w = self.P.T @ v
        nw = np.linalg.norm(w)
        return self.from_z(self.rho * w / nw if nw > 0 else np.zeros(self.k))

    def constraints(self, u):
        z, cons = self._zvar_constraints(u)
        return cons + [cp.norm(z, 2) <= self.rho]

    def _z_norm_ok(self, z, tol):
        return bool(np.linalg.norm(z) <= self.rho * (1 + tol) + tol)

    def _z_norm_expr(self, z):
        return cp.norm(z, 2)

    def project_z(self, z):
        nz = np.linalg.norm(z, axis=-1, keepdims=True)
        return z * np.minimum(1.0, self.rho / np.maximum(nz, 1e-300))

    def sample(self, n, seed=0):
        rng = np.random.default_rng(seed)
        g = rng.standard_normal((n, self.k))
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        rad = np.where(np.arange(n) < n // 2, 1.0, rng.uniform(0, 1, n) ** (1.0 / self.k))
        return self.from_z(self.rho * g * rad[:, None])


class Budget(_Affine):
    """Budget (Bertsimas–Sim) set U = {c + P z : ‖z‖∞ ≤ 1, ‖z‖₁ ≤ Γ}, Γ ≥ 0 (Γ ≥ k is the box)."""

    def __init__(self, center=None, P=None, gamma: float = 1.0, radius=None):
        super().__init__(center, P=P, radius=radius)
        if not np.isfinite(gamma) or gamma < 0:
            raise ValueError(f"gamma must be a finite number >= 0 (gamma < 0 is an empty set), got {gamma}")
        self.gamma = float(gamma)

    def __repr__(self):
        return f"Budget(dim={self.dim}, k={self.k}, gamma={self.gamma})"

    def support(self, v):
        v = _as_cvx_vector(v, self.dim)
        w = self.P.T @ v
        lam = cp.Variable(nonneg=True)   # multiplier of ‖z‖₁ ≤ Γ
        mu = cp.Variable(self.k, nonneg=True)  # multipliers of |z_j| ≤ 1
        return self.center @ v + self.gamma * lam + cp.sum(mu), [mu + lam >= w, mu + lam >= -w]

    def support_rows(self, V):
        V = _as_cvx_rows(V, self.dim)
        m = V.shape[0]
        W = V @ self.P
        lam, mu = cp.Variable(m, nonneg=True), cp.Variable((m, self.k), nonneg=True)
        lam_b = _broadcast_col(lam, self.k)
        return (V @ self.center + self.gamma * lam + cp.sum(mu, axis=1),
                [mu + lam_b >= W, mu + lam_b >= -W])

    def worst_case(self, v):
        v = _vec("v", v, self.dim)
        w = self.P.T @ v
        order = np.argsort(-np.abs(w), kind="stable")
        z = np.zeros(self.k)
        g = min(self.gamma, self.k)
        full = int(math.floor(g))
        z[order[:full]] = np.sign(w[order[:full]])
        if full < self.k:  # fractional remainder on the next largest |w_j|
            z[order[full]] = (g - full) * np.sign(w[order[full]])
        return self.from_z(z)

    def constraints(self, u):
        z, cons = self._zvar_constraints(u)
        return cons + [cp.abs(z) <= 1, cp.norm1(z) <= self.gamma]

    def _z_norm_ok(self, z, tol):
        return bool(np.abs(z).max(initial=0.0) <= 1 + tol and np.abs(z).sum() <= self.gamma + tol)

    def _z_norm_expr(self, z):  # gauge of Z: ≤ 1 exactly on Z
        return cp.maximum(cp.norm(z, "inf"), cp.norm1(z) / max(self.gamma, 1e-300))

    def project_z(self, z):
        z = np.atleast_2d(np.asarray(z, dtype=float))
        a = np.abs(z)
        over = np.minimum(a, 1).sum(axis=1) > self.gamma  # rows where clipping alone is not enough
        tau = np.zeros(z.shape[0])
        if over.any():  # soft threshold τ with Σ clip(|z| − τ, 0, 1) = Γ, bisection on all rows at once
            lo, hi = np.zeros(over.sum()), a[over].max(axis=1)
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                big = np.clip(a[over] - mid[:, None], 0, 1).sum(axis=1) > self.gamma
                lo, hi = np.where(big, mid, lo), np.where(big, hi, mid)
            tau[over] = hi
        return np.sign(z) * np.clip(a - tau[:, None], 0, 1)

    def sample(self, n, seed=0):
        rng = np.random.default_rng(seed)
        z = self.project_z(rng.uniform(-1, 1, (n, self.k)) * max(1.0, self.gamma))
        v = rng.standard_normal((n // 2, self.dim))  # half: exact maximisers of random directions (vertices)
        pts = self.from_z(z)
        if n // 2:
            pts[: n // 2] = [self.worst_case(vi) for vi in v]
        return pts

    def vertices(self, max_count: int = 100_000):
        k, g = self.k, min(self.gamma, self.k)
        full = int(math.floor(g))
        frac = g - full
        m = full + (1 if frac > 1e-12 else 0)
        count = math.comb(k, m) * 2 ** m * (m if frac > 1e-12 else 1)
        if count > max_count:
            raise ValueError(f"this budget set has about {count} vertices, more than max_count={max_count}")
        verts = []
        for support in itertools.combinations(range(k), m):
            for signs in itertools.product([-1.0, 1.0], repeat=m):
                fracs = range(m) if frac > 1e-12 else [None]
                for fi in fracs:  # which coordinate carries the fractional part
                    z = np.zeros(k)
                    z[list(support)] = signs
                    if fi is not None:
                        z[support[fi]] *= frac
                    verts.append(z)
        return np.unique(self.from_z(np.array(verts)), axis=0)


class Polyhedron(UncertaintySet):
    """Polyhedron U = {u : A u ≤ b}; must be nonempty and bounded (checked with LPs at construction)."""

    def __init__(self, A, b):
        A = np.array(A, dtype=float, copy=True)
        if A.ndim != 2 or A.shape[0] == 0 or A.shape[1] == 0:
            raise ValueError(f"A must be a non-empty 2-D matrix (m inequalities x n dims), got shape {A.shape}")
        self.A = A
        self.b = _vec("b", b, A.shape[0])
        if not (np.isfinite(A).all() and np.isfinite(self.b).all()):
            raise ValueError("A and b must be finite")
        self.dim = A.shape[1]
        # Bounding box by 2n LPs: detects emptiness and unboundedness with a clear message.
        lo, hi = np.empty(self.dim), np.empty(self.dim)
        for i in range(self.dim):
            for sgn, store in ((1.0, lo), (-1.0, hi)):
                c = np.zeros(self.dim)
                c[i] = sgn
                res = linprog(c, A_ub=A, b_ub=self.b, bounds=[(None, None)] * self.dim, method="highs")
                if res.status == 2:
                    raise ValueError(f"Polyhedron is empty: no u satisfies A u <= b (A shape {A.shape})")
                if res.status == 3:
                    raise ValueError(f"Polyhedron is unbounded along coordinate {i}: add bounds to A u <= b")
                if res.status != 0:
                    raise ValueError(f"could not validate the polyhedron (linprog: {res.message})")
                store[i] = sgn * res.fun
        self.lower, self.upper = lo, hi

    def __repr__(self):
        return f"Polyhedron(dim={self.dim}, m={self.A.shape[0]})"

    def support(self, v):
        v = _as_cvx_vector(v, self.dim)
        lam = cp.Variable(self.A.shape[0], nonneg=True)  # dual of A u <= b
        return self.b @ lam, [self.A.T @ lam == v]

    def support_rows(self, V):
        V = _as_cvx_rows(V, self.dim)
        Lam = cp.Variable((V.shape[0], self.A.shape[0]), nonneg=True)  # one dual vector per row
        return Lam @ self.b, [Lam @ self.A == V]

    def worst_case(self, v):
        v = _vec("v", v, self.dim)
        res = linprog(-v, A_ub=self.A, b_ub=self.b, bounds=[(None, None)] * self.dim, method="highs")
        if res.status != 0:
            raise RuntimeError(f"linprog failed on a validated polyhedron: {res.message}")
        return res.x

    def constraints(self, u):
        return [self.A @ u <= self.b]

    def contains(self, u, tol: float = 1e-9) -> bool:
        u = _vec("u", u, self.dim)
        return bool((self.A @ u <= self.b + tol * (1 + np.abs(self.b))).all())

    def point(self) -> np.ndarray:
        """Chebyshev-like interior point: the average of the 2n bounding-box maximisers is in U (convexity)."""
        if getattr(self, "_point", None) is not None:
            return self._point.copy()
        pts = []
        for i in range(self.dim):
            e = np.zeros(self.dim)
            e[i] = 1.0
            pts += [self.worst_case(e), self.worst_case(-e)]
        self._point = np.mean(pts, axis=0)  # cached: sampling starts every hit-and-run chain here
        return self._point.copy()

    def sample(self, n, seed=0):
        rng = np.random.default_rng(seed)
        try:  # half on vertices (where violations live) when they are cheap to list
            verts = self.vertices(max_count=20_000)
        except ValueError:
            verts = np.array([self.worst_case(v) for v in rng.standard_normal((min(n // 2, 50), self.dim))])
        pts = [self._hit_and_run(rng) for _ in range(n - n // 2)]
        return np.vstack([verts[rng.integers(0, len(verts), n // 2)], np.array(pts).reshape(-1, self.dim)])

    def _hit_and_run(self, rng, steps: int = 10):
        u = self.point()
        for _ in range(steps):
            d = rng.standard_normal(self.dim)
            Ad, slack = self.A @ d, self.b - self.A @ u
            with np.errstate(divide="ignore", invalid="ignore"):
                t = slack / Ad
            tmax = np.min(t[Ad > 1e-12], initial=np.inf)
            tmin = np.max(t[Ad < -1e-12], initial=-np.inf)
            u = u + rng.uniform(tmin, tmax) * d
        return u

    def vertices(self, max_count: int = 100_000):
        m, n = self.A.shape
        if math.comb(m, n) > max_count:
            raise ValueError(f"brute-force vertex enumeration needs C({m},{n}) = {math.comb(m, n)} solves, "
                             f"more than max_count={max_count}")
        verts = []
        for rows in itertools.combinations(range(m), n):
            Ar = self.A[list(rows)]
            if abs(np.linalg.det(Ar)) < 1e-12:
                continue
            u = np.linalg.solve(Ar, self.b[list(rows)])
            if self.contains(u, 1e-9):
                verts.append(np.round(u, 12))
        return np.unique(np.array(verts), axis=0)
