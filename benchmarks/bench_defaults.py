"""Defaults vs the best tuned setting of a small grid, per backend family, on models the defaults were not
tuned on (none of them is a gallery file or a test model; each is drawn fresh here, some at scaled objectives).

For each family the same model is solved once with the backend's defaults (a plain ``m.solve()`` or the
tensor-level entry point with no step options) and once per grid point; "best" is the grid point with the
smallest final error. Printed per row: the final error of the defaults and of the best grid point, their
ratio (default / best: ~1 means the defaults lose nothing; < 1 means they beat the whole grid) and the
time ratio (defaults' time / best grid point's time; the grid as a whole costs the sum of its times).

Families and models (all fresh):
  zo       a 12-variable box-constrained quadratic black box (numpy, Hessian eigenvalues 0.2..5, 4 bounds
           active), objective x 1e3; a linear-regression nn.Linear(20, 1) fine-tuned in place (mini-batches).
           Grid: lr in 1e-4..1 (x10), linear decay.
  halpern  a random 15x20 matrix game (simplices), objective x 1e3. Grid: the Lipschitz constant given as
           {0.5, 1, 2, 4} x ||A||.
  dag      a fresh ER2 graph, d = 8, n = 400 (seed 11); error = SHD. Grid: method in {notears, logdet, topo,
           colide}.
  lbfgs    least squares 0.5||Ax - b||^2 (60 x 30, condition 1e3), objective x 1e4. Grid: tol {1e-6, 1e-8, 1e-10}.
  nlp      a convex QP with 10 linear inequalities (cvxpy reference), objective x 1e-4. Grid: method x tol.
  bilevel  the two-variable toy (follower y = argmin (y - x)^2, leader (x - 1)^2 + (y - 2)^2, x* = 1.5).
           Grid: method in {hyper, implicit, penalty}.

    python benchmarks/bench_defaults.py [--quick] [--repeat 3] [--only zo,halpern,...]
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch


REPEAT = 1  # --repeat: timings are the median of this many calls (the machine is shared and noisy)


def timed(fn, warm=False):
    if warm:   # the first call pays for imports and compilation: time the second
        fn()
    times = []
    for _ in range(REPEAT):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, float(np.median(times))


def row(family, model, default, grid, note=""):
    """default: (error, seconds); grid: {setting: (error, seconds)}."""
    best = min(grid, key=lambda k: (grid[k][0], grid[k][1]))
    (e0, t0), (e1, t1) = default, grid[best]
    ratio = e0 / e1 if e1 > 0 else (1.0 if e0 == 0 else math.inf)
    print(f"{family:8s} {model:34s} default err {e0:9.2e}  best err {e1:9.2e} ({best})  "
          f"err ratio {ratio:8.2g}  time ratio {t0 / max(t1, 1e-9):6.2f}  {note}", flush=True)
    return dict(family=family, model=model, default=e0, best=e1, setting=best, err_ratio=ratio,
                time_ratio=t0 / max(t1, 1e-9))


# --- zo --------------------------------------------------------------------------------------------------

def bench_zo(quick):
    from scipy.optimize import minimize as sp_min
    from optdsl.solvers import zo
    rng = np.random.default_rng(5)
    d, scale = 12, 1e3
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    H = Q @ np.diag(np.geomspace(0.2, 5.0, d)) @ Q.T
    c = rng.uniform(-1.5, 1.5, d)
    f = lambda x: float(scale * 0.5 * (x - c) @ H @ (x - c))  # noqa: E731
    ref = sp_min(f, np.zeros(d), jac=lambda x: scale * H @ (x - c), bounds=[(-1, 1)] * d, method="L-BFGS-B",
                 options={"gtol": 1e-12, "ftol": 0, "maxiter": 10000}).x
    iters = 500 if quick else 2000

    def err(out):
        return float(np.abs(out.x.numpy() - ref).max())
    x0 = torch.zeros(d, dtype=torch.float64)
    fx = lambda v: f(v.numpy())  # noqa: E731
    out, t = timed(lambda: zo.minimize(fx, x0, lb=-1, ub=1, max_iter=iters))
    grid = {}
    for lr in (1e-4, 1e-3, 1e-2, 1e-1, 1.0):
        o, tt = timed(lambda: zo.minimize(fx, x0, lb=-1, ub=1, max_iter=iters, lr=lr, schedule="linear"))
        grid[f"lr={lr:g}"] = (err(o) if math.isfinite(o.objective or math.nan) else math.inf, tt)
    rows = [row("zo", f"box quadratic d=12 x1e3 ({iters} steps)", (err(out), t), grid, out.status.name)]

    g = torch.Generator().manual_seed(9)
    X = torch.randn(400, 20, generator=g)
    y = X @ torch.randn(20, generator=g) + 0.1 * torch.randn(400, generator=g)
    Xa = torch.cat([X, torch.ones(400, 1)], 1).double()
    sol = torch.linalg.lstsq(Xa, y.double().unsqueeze(1)).solution
    opt = float(((Xa @ sol).squeeze(1) - y.double()).pow(2).mean())
    batches = [(X[i:i + 50], y[i:i + 50]) for i in range(0, 400, 50)]
    steps = 1000 if quick else 3000

    def ft(**kw):
        torch.manual_seed(2)
        net = torch.nn.Linear(20, 1)
        zo.fine_tune(net, lambda m, b: torch.nn.functional.mse_loss(m(b[0]).squeeze(-1), b[1]), batches,
                     steps=steps, **kw)
        with torch.no_grad():
            v = float(torch.nn.functional.mse_loss(net(X).squeeze(-1), y))
        return v - opt if math.isfinite(v) else math.inf
    e0, t = timed(lambda: ft())
    grid = {}
    for lr in (1e-4, 1e-3, 1e-2, 1e-1):
        grid[f"lr={lr:g}"] = timed(lambda: ft(lr=lr, schedule="linear"))
    rows.append(row("zo", f"fine-tune Linear(20,1) ({steps} steps)", (e0, t), grid, "error = loss gap"))
    return rows


# --- halpern ---------------------------------------------------------------------------------------------

def bench_halpern(quick):
    from optdsl.solvers import halpern as H
    rng = np.random.default_rng(3)
    A = torch.tensor(rng.uniform(-1, 1, (15, 20)) * 1e3)

    def gap(x, y):
        return float((A.T @ x).max() - (A @ y).min())
    x0, y0 = torch.full((15,), 1 / 15, dtype=torch.float64), torch.full((20,), 1 / 20, dtype=torch.float64)
    kw = dict(project_x=H.Simplex(), project_y=H.Simplex(), operator_fn=lambda z: torch.cat([A @ z[15:], -A.T @ z[:15]]),
              max_iter=20_000 if quick else 100_000)
    solve = lambda **o: H.solve_saddle(lambda x, y: x @ A @ y, x0, y0, **kw, **o)  # noqa: E731
    out, t = timed(lambda: solve(), warm=True)
    nA = float(torch.linalg.matrix_norm(A, 2))
    grid = {}
    for m in (0.5, 1.0, 2.0, 4.0):
        o, tt = timed(lambda: solve(lipschitz=m * nA))
        grid[f"L={m:g}||A||"] = (gap(*o.x) if o.status.has_point else math.inf, tt)
    return [row("halpern", "matrix game 15x20 x1e3", (gap(*out.x), t), grid, f"{out.status.name}, error = gap")]


# --- dag -------------------------------------------------------------------------------------------------

def bench_dag(quick):
    import optdsl as od
    from optdsl.solvers.dag import data
    from optdsl.solvers.dag.metrics import count_accuracy
    d = 8
    B = data.simulate_dag(d, 2 * d, "ER", seed=11)
    W = data.simulate_parameter(B, seed=11)
    X = data.simulate_linear_sem(W, 400, seed=11)

    def solve(**o):
        m = od.Model("dag_bench")
        Wv = m.variable((d, d), name="W")
        m.minimize(od.sem_loss(Wv, X) + 0.05 * od.norm1(Wv))
        m.subject_to(od.acyclic(Wv), name="dag")
        r = m.solve(**o)
        return count_accuracy(B != 0, np.abs(r.values["W"]) > 0.3)["shd"]
    e0, t = timed(lambda: solve(), warm=True)
    grid = {f"method={mm}": timed(lambda: solve(method=mm)) for mm in ("notears", "logdet", "topo", "colide")}
    return [row("dag", f"ER2 d={d} n=400 (fresh seed)", (e0, t), grid, "error = SHD")]


# --- lbfgs / nlp -----------------------------------------------------------------------------------------

def bench_lbfgs(quick):
    import optdsl as od
    rng = np.random.default_rng(4)
    U, _ = np.linalg.qr(rng.standard_normal((60, 30)))
    V, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    A = U @ np.diag(np.geomspace(1, 1e-3 ** 0.5, 30)) @ V.T
    b = rng.standard_normal(60)
    xs = np.linalg.lstsq(A, b, rcond=None)[0]

    def solve(**o):
        m = od.Model("ls_bench")
        x = m.variable(30, name="x")
        m.minimize(1e4 * 0.5 * od.sum_squares(A @ x - b))
        r = m.solve(solver="lbfgs", **o)
        return float(np.abs(r.values["x"] - xs).max())
    e0, t = timed(lambda: solve(), warm=True)
    grid = {f"tol={tl:g}": timed(lambda: solve(tol=tl)) for tl in (1e-6, 1e-8, 1e-10)}
    return [row("lbfgs", "least squares 60x30 cond 1e3 x1e4", (e0, t), grid, "error = max |x - x*|")]


def bench_nlp(quick):
    import cvxpy as cp
    import optdsl as od
    rng = np.random.default_rng(6)
    n = 12
    M = rng.standard_normal((n, n))
    P = M @ M.T / n + 0.1 * np.eye(n)
    q = rng.standard_normal(n)
    G, h = rng.standard_normal((10, n)), rng.uniform(0.5, 1.5, 10)
    xc = cp.Variable(n)
    ref = cp.Problem(cp.Minimize(0.5 * cp.quad_form(xc, P) + q @ xc), [G @ xc <= h])
    ref.solve()
    fstar = ref.value

    def solve(**o):
        m = od.Model("qp_bench")
        x = m.variable(n, name="x")
        m.minimize(1e-4 * (0.5 * od.quad_form(x, P) + q @ x))
        m.subject_to(G @ x <= h)
        r = m.solve(solver="nlp", **o)
        return abs(r.objective * 1e4 - fstar) / abs(fstar) if r.objective is not None else math.inf
    e0, t = timed(lambda: solve(), warm=True)
    grid = {f"{mm},tol={tl:g}": timed(lambda: solve(method=mm, tol=tl))
            for mm in ("slsqp", "trust-constr") for tl in (1e-8, 1e-12)}
    return [row("nlp", "convex QP n=12, 10 ineq, x1e-4", (e0, t), grid, "error = rel. objective gap")]


# --- bilevel ---------------------------------------------------------------------------------------------

def bench_bilevel(quick):
    import optdsl as od

    def solve(**o):
        m = od.Model("bilevel_toy_bench")
        x = m.variable(name="x")
        follower = m.level("follower")
        y = follower.variable(name="y")
        follower.minimize(od.square(y - x))
        m.minimize(od.square(x - 1) + od.square(y - 2))
        r = m.solve(**o)
        return abs(float(r.values["x"]) - 1.5) if r.values else math.inf
    e0, t = timed(lambda: solve(), warm=True)
    grid = {}
    for mm in ("hyper", "implicit", "penalty"):
        try:
            grid[f"method={mm}"] = timed(lambda: solve(method=mm))
        except Exception as exc:  # noqa: BLE001 - a method that refuses the model is reported, not fatal
            grid[f"method={mm} ({type(exc).__name__})"] = (math.inf, 0.0)
    return [row("bilevel", "toy x*=1.5", (e0, t), grid, "error = |x - x*|")]


FAMILIES = {"zo": bench_zo, "halpern": bench_halpern, "dag": bench_dag, "lbfgs": bench_lbfgs, "nlp": bench_nlp,
            "bilevel": bench_bilevel}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller budgets (a minute or two)")
    ap.add_argument("--only", default=",".join(FAMILIES), help="comma-separated families")
    ap.add_argument("--repeat", type=int, default=1, help="time each run this many times (median; the errors "
                    "are deterministic)")
    args = ap.parse_args(argv)
    global REPEAT
    REPEAT = max(1, args.repeat)
    torch.set_num_threads(1)
    rows = []
    for name in args.only.split(","):
        try:
            rows += FAMILIES[name](args.quick)
        except Exception as exc:  # noqa: BLE001 - one family's failure must not hide the others
            print(f"{name:8s} FAILED: {type(exc).__name__}: {exc}", flush=True)
    return rows


if __name__ == "__main__":
    main()
