"""Bilevel problem generators with known answers (tests, benchmarks, gallery).

Each returns a `BilevelProblem`: torch callables ``f(x, y)`` (leader) and ``g(x, y)`` (follower), start
points, and the known solution where one exists. Closed forms are from the optdsl refs (Part 2, [derived]):
* `ridge_tuning`      — log-regularization of ridge on a validation split; F(t), F'(t) in closed form.
* `ridge_scalar`      — the 2x1 instance with lambda* = 2/3, F* = 0.
* `quadratic_toy`     — f = (x-1)^2/2 + (y-2)^2/2, g = (y-x)^2/2: x* = y* = 1.5; penalty point
                         x_sigma = (3+sigma)/(2+sigma), y_sigma = (3+2 sigma)/(2+sigma).
* `nonsingleton_toy`  — g = (y1-x)^2/2 (y2 free): optimistic x* = 0.5, y* = (0.5, 1).
* `constrained_toy`   — LL min (y-2)^2/2 s.t. x + y <= 2; UL x^2/2 + y^2/2, x in [0, 2]: x* = y* = 1, lam* = 1.
* `lvhba_toy`         — the 100-dim LV-HBA toy: x* = -0.3, y1* = 0.7, y2* = -0.4 (coupled set sum(w) = 0).
* `hyper_cleaning`    — per-example weights on sklearn digits with corrupted training labels.
* `three_level_toy`   — x* = 2.6, y* = z* = 1.8 (see the function).
* `synthetic_large`   — n lower-level variables in m groups with per-group regularization (benchmarks).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import torch


@dataclass
class BilevelProblem:
    f: Callable
    g: Callable
    x0: Any
    y0: Any
    x_star: Any = None
    y_star: Any = None
    F_star: Optional[float] = None
    lower_constraints: Optional[Callable] = None
    proj_x: Optional[Callable] = None
    proj_y: Optional[Callable] = None
    extras: dict = field(default_factory=dict)


def _t(a, dtype=torch.float64, device=None):
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


def ridge_tuning(n_train: int = 40, n_val: int = 40, d: int = 10, noise: float = 0.5, seed: int = 0,
                 dtype=torch.float64, device=None) -> BilevelProblem:
    """x = t = log(lambda) (shape (1,)), y = w (d,); g = ||A_tr w - b_tr||^2/2 + e^t ||w||^2/2,
    f = ||A_val w - b_val||^2/2. extras: F(t), dF(t) (closed forms, numpy) and t_star (bounded search)."""
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=d)
    Atr, Ava = rng.normal(size=(n_train, d)), rng.normal(size=(n_val, d))
    btr = Atr @ w_true + noise * rng.normal(size=n_train) * 3
    bva = Ava @ w_true + noise * rng.normal(size=n_val)
    AtA, Atb = Atr.T @ Atr, Atr.T @ btr

    def w_of(t):
        return np.linalg.solve(AtA + math.exp(t) * np.eye(d), Atb)

    def F(t):
        r = Ava @ w_of(t) - bva
        return 0.5 * float(r @ r)

    def dF(t):  # F'(t) = lam F'(lam) = -lam (A_val^T r)^T (AtA + lam I)^{-1} w*
        lam, w = math.exp(t), w_of(t)
        r = Ava @ w - bva
        return -lam * float((Ava.T @ r) @ np.linalg.solve(AtA + lam * np.eye(d), w))

    from scipy.optimize import minimize_scalar
    grid = np.linspace(-8, 8, 321)
    t0 = grid[int(np.argmin([F(t) for t in grid]))]
    t_star = minimize_scalar(F, bounds=(t0 - 0.05, t0 + 0.05), method="bounded",
                             options={"xatol": 1e-10}).x
    A_tr, b_tr, A_va, b_va = (_t(a, dtype, device) for a in (Atr, btr, Ava, bva))

    def g(x, y, batch=None):
        A, b = (A_tr, b_tr) if batch is None else (A_tr[batch], b_tr[batch])
        scale = 1.0 if batch is None else n_train / len(batch)   # unbiased mini-batch estimate
        return 0.5 * scale * ((A @ y - b) ** 2).sum() + 0.5 * torch.exp(x[0]) * (y ** 2).sum()

    def f(x, y, batch=None):
        return 0.5 * ((A_va @ y - b_va) ** 2).sum()

    x0 = torch.zeros(1, dtype=dtype, device=device)
    return BilevelProblem(f, g, x0, torch.zeros(d, dtype=dtype, device=device),
                          x_star=_t([t_star], dtype, device), y_star=_t(w_of(t_star), dtype, device),
                          F_star=F(t_star), extras={"F": F, "dF": dF, "w_of": w_of, "n_train": n_train,
                                                     "AtA": AtA})


def ridge_scalar(dtype=torch.float64) -> BilevelProblem:
    """A_tr = [1; 1], b_tr = [1; 3], A_val = [1], b_val = [1.5]; x = log lambda: lambda* = 2/3, F* = 0."""
    def g(x, y):
        return 0.5 * ((y[0] - 1) ** 2 + (y[0] - 3) ** 2) + 0.5 * torch.exp(x[0]) * y[0] ** 2

    def f(x, y):
        return 0.5 * (y[0] - 1.5) ** 2
    return BilevelProblem(f, g, torch.zeros(1, dtype=dtype), torch.zeros(1, dtype=dtype),
                          x_star=torch.tensor([math.log(2 / 3)], dtype=dtype), y_star=torch.tensor([1.5], dtype=dtype),
                          F_star=0.0)


def quadratic_toy(dtype=torch.float64) -> BilevelProblem:
    """x* = y* = 1.5, F* = 0.25; extras['x_sigma'](sigma) = (3+sigma)/(2+sigma), 'y_sigma' likewise."""
    f = lambda x, y: 0.5 * ((x - 1) ** 2).sum() + 0.5 * ((y - 2) ** 2).sum()
    g = lambda x, y: 0.5 * ((y - x) ** 2).sum()
    return BilevelProblem(f, g, torch.zeros(1, dtype=dtype), torch.zeros(1, dtype=dtype),
                          x_star=torch.tensor([1.5], dtype=dtype), y_star=torch.tensor([1.5], dtype=dtype),
                          F_star=0.25, extras={"x_sigma": lambda s: (3 + s) / (2 + s),
                                               "y_sigma": lambda s: (3 + 2 * s) / (2 + s)})


def nonsingleton_toy(dtype=torch.float64) -> BilevelProblem:
    """g = (y1 - x)^2/2 with y2 free (singular LL Hessian); optimistic x* = 0.5, y* = (0.5, 1), psi* = 0.25."""
    f = lambda x, y: 0.5 * (x[0] - 1) ** 2 + 0.5 * y[0] ** 2 + 0.5 * (y[1] - 1) ** 2
    g = lambda x, y: 0.5 * (y[0] - x[0]) ** 2
    return BilevelProblem(f, g, torch.zeros(1, dtype=dtype), torch.zeros(2, dtype=dtype),
                          x_star=torch.tensor([0.5], dtype=dtype), y_star=torch.tensor([0.5, 1.0], dtype=dtype),
                          F_star=0.25)


def constrained_toy(dtype=torch.float64) -> BilevelProblem:
    """LL min_y (y-2)^2/2 s.t. x + y <= 2 (y* = 2 - x for x >= 0); UL min_{x in [0,2]} x^2/2 + y^2/2:
    x* = y* = 1, F* = 1, LL multiplier 1."""
    f = lambda x, y: 0.5 * (x ** 2).sum() + 0.5 * (y ** 2).sum()
    g = lambda x, y: 0.5 * ((y - 2) ** 2).sum()
    h = lambda x, y: (x + y).reshape(-1) - 2
    return BilevelProblem(f, g, torch.full((1,), 2.0, dtype=dtype), torch.zeros(1, dtype=dtype),
                          x_star=torch.ones(1, dtype=dtype), y_star=torch.ones(1, dtype=dtype), F_star=1.0,
                          lower_constraints=h, proj_x=lambda x: x.clamp(0.0, 2.0),
                          extras={"multiplier": 1.0})


def lvhba_toy(n: int = 100, dtype=torch.float64) -> BilevelProblem:
    """LV-HBA reference toy. x in R^n, y = (y1, y2) in R^{2n}; C = {sum(x)+sum(y1)+sum(y2) = 0};
    LL min (1/2)||y1||^2 - x^T y1 + 1^T y2 s.t. 1^T x + 1^T y1 + 1^T y2 = 0 (an *equality*);
    UL (1/2)||x - y2||^2 + (1/2)||y1 - 1||^2. Optimum x* = -0.3, y1* = 0.7, y2* = -0.4 (all ones)."""
    f = lambda x, y: 0.5 * ((x - y[1]) ** 2).sum() + 0.5 * ((y[0] - 1) ** 2).sum()
    g = lambda x, y: 0.5 * (y[0] ** 2).sum() - (x * y[0]).sum() + y[1].sum()
    h_eq = lambda x, y: (x.sum() + y[0].sum() + y[1].sum()).reshape(1)

    def proj_xy(x, y):  # Euclidean projection onto the hyperplane sum(w) = 0
        shift = (x.sum() + y[0].sum() + y[1].sum()) / (3 * n)
        return x - shift, (y[0] - shift, y[1] - shift)
    ten = torch.full((n,), 10.0, dtype=dtype)
    x0, y0 = proj_xy(ten.clone(), (ten.clone(), ten.clone()))
    one = torch.ones(n, dtype=dtype)
    return BilevelProblem(f, g, x0, y0, x_star=-0.3 * one, y_star=(0.7 * one, -0.4 * one),
                          extras={"lower_equalities": h_eq, "proj_xy": proj_xy})


def hyper_cleaning(n_train: int = 500, n_val: int = 300, corrupt: float = 0.5, reg: float = 1e-3,
                   seed: int = 0, dtype=torch.float32, device=None) -> BilevelProblem:
    """Data hyper-cleaning on sklearn digits: x = per-example weight logits (n_train,), y = (W (64,10), b (10,)).
    g = mean_i sigmoid(x_i) CE_i(y) + reg/2 ||W||^2 on the corrupted training set; f = mean CE on the clean
    validation set. extras: 'accuracy'(y, split) for split in {'train','val','test'}, 'corrupted' mask."""
    from sklearn.datasets import load_digits
    X, lab = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(X))
    X = (X / 16.0).astype(np.float64)
    X = X - X.mean(0)
    tr, va, te = perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]
    ytr = lab[tr].copy()
    bad = rng.random(n_train) < corrupt
    ytr[bad] = rng.integers(0, 10, size=int(bad.sum()))   # uniform relabelling (some stay correct)
    T = lambda a: torch.as_tensor(a, dtype=dtype, device=device)
    L = lambda a: torch.as_tensor(a, dtype=torch.long, device=device)
    data = {"train": (T(X[tr]), L(ytr)), "val": (T(X[va]), L(lab[va])), "test": (T(X[te]), L(lab[te]))}
    Xtr, Ytr = data["train"]
    Xva, Yva = data["val"]
    ce = torch.nn.functional.cross_entropy

    def g(x, y, batch=None):
        W, b = y
        idx = slice(None) if batch is None else batch
        losses = ce(Xtr[idx] @ W + b, Ytr[idx], reduction="none")
        return (torch.sigmoid(x[idx]) * losses).mean() + 0.5 * reg * (W ** 2).sum()

    def f(x, y, batch=None):
        W, b = y
        return ce(Xva @ W + b, Yva)

    def accuracy(y, split="test"):
        W, b = y
        Xs, Ys = data[split]
        with torch.no_grad():
            return float(((Xs @ W + b).argmax(1) == Ys).double().mean())
    y0 = (torch.zeros(64, 10, dtype=dtype, device=device), torch.zeros(10, dtype=dtype, device=device))
    return BilevelProblem(f, g, torch.zeros(n_train, dtype=dtype, device=device), y0,
                          extras={"accuracy": accuracy, "corrupted": torch.as_tensor(ytr != lab[tr]),
                                  "data": data})


def three_level_toy(dtype=torch.float64) -> dict:
    """Three levels, x -> y -> z (scalars):
        z*(x, y) = argmin_z g3 = (z - y)^2/2                          -> z* = y
        y*(x)    = argmin_y g2(x, y, z*(x, y)) = (y - x)^2/2 + (z* - 1)^2/2   -> y* = (x + 1)/2
        min_x f1(x, y*, z*) = (x - 2)^2/2 + (z* - 3)^2/2              -> x* = 2.6, y* = z* = 1.8, F* = 0.9.
    (Treating z as fixed in level 2 would give y = x and x* = 2.5: the toy tells the two apart.)"""
    f1 = lambda x, y, z: 0.5 * ((x - 2) ** 2).sum() + 0.5 * ((z - 3) ** 2).sum()
    g2 = lambda x, y, z: 0.5 * ((y - x) ** 2).sum() + 0.5 * ((z - 1) ** 2).sum()
    g3 = lambda x, y, z: 0.5 * ((z - y) ** 2).sum()
    z0 = lambda: torch.zeros(1, dtype=dtype)
    return {"levels": [f1, g2, g3], "starts": [z0(), z0(), z0()], "x_star": 2.6, "y_star": 1.8, "z_star": 1.8,
            "F_star": 0.9}


def synthetic_large(n: int = 100_000, m: int = 10, seed: int = 0, dtype=torch.float64, device=None
                    ) -> BilevelProblem:
    """n lower-level variables in m contiguous groups (n % m == 0); x in R^m are per-group log-regularizations:
        g(x, y) = (1/2) sum_i d_i (y_i - c_i)^2 + (1/2) sum_i exp(x_{G(i)}) y_i^2     (L_g <= 1.5 + e^x),
        f(x, y) = (1/2n) ||y - t||^2,   y*_i = d_i c_i / (d_i + exp(x_G(i))).
    extras['F'](x) is the exact validation loss F(x) = f(x, y*(x)) and F_star its minimum (L-BFGS)."""
    if n % m:
        raise ValueError(f"n={n} must be a multiple of m={m}")
    gen = torch.Generator().manual_seed(seed)
    d = 0.5 + torch.rand(m, n // m, generator=gen, dtype=torch.float64)
    c = torch.randn(m, n // m, generator=gen, dtype=torch.float64)
    shrink = torch.linspace(0.2, 0.9, m, dtype=torch.float64)[:, None]   # best shrinkage differs per group
    t = shrink * c + 0.1 * torch.randn(m, n // m, generator=gen, dtype=torch.float64)
    D, C, Tt = (a.reshape(-1).to(device=device, dtype=dtype) for a in (d, c, t))

    def g(x, y, batch=None):   # per-group sums via a reshape (an index gather's backward is slow on CPU)
        return 0.5 * ((D * (y - C) ** 2).sum() + (torch.exp(x) * (y ** 2).reshape(m, -1).sum(1)).sum())

    def f(x, y, batch=None):
        return (0.5 / n) * ((y - Tt) ** 2).sum()

    def ystar(x):
        return d * c / (d + torch.exp(x)[:, None])

    def F(x):
        x = x.detach().to(torch.float64).cpu()
        return float((0.5 / n) * ((ystar(x) - t) ** 2).sum())
    xs = torch.zeros(m, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([xs], max_iter=200, line_search_fn="strong_wolfe", tolerance_grad=1e-12)

    def closure():
        opt.zero_grad()
        v = (0.5 / n) * ((ystar(xs) - t) ** 2).sum()
        v.backward()
        return v
    opt.step(closure)
    return BilevelProblem(f, g, torch.zeros(m, dtype=dtype, device=device),
                          torch.zeros(n, dtype=dtype, device=device), x_star=xs.detach(),
                          F_star=F(xs.detach()), extras={"F": F})
