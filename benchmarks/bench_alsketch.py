"""Benchmark: AdaSketch-SQP (optdsl.solvers.alsketch) vs scipy trust-constr, SLSQP and IPOPT (casadi).

    python benchmarks/bench_alsketch.py          # HS set + Poisson control at n ~ 1e4
    python benchmarks/bench_alsketch.py --full   # Poisson control at n ~ 1e4 and 1e5

Part 1: the 24 Hock-Schittkowski problems (solved = relative objective error <= 1e-6 and a success status).
Part 2: 2-D Poisson optimal control QP, each solver in a forked child process (peak RSS of that child).
IPOPT comes from `pip install casadi` (benchmark-only dependency); it is skipped if casadi is missing. To give
IPOPT the HS problems as exact symbolic expressions, the torch functions are evaluated on casadi symbols with
torch.sin/cos/log/stack temporarily pointed at casadi's (benchmark-only shim).
"""
from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
import warnings

import numpy as np
import scipy.optimize as so
import torch

from optdsl.solvers import alsketch
from optdsl.solvers.testing import hock_schittkowski as hs
from optdsl.solvers.testing import poisson_control as pc

try:
    import casadi as ca
except ImportError:  # pragma: no cover
    ca = None

warnings.filterwarnings("ignore")


# ------------------------------------------------------------------------------------------ HS with IPOPT
class _SymVec:
    """Just enough of a tensor for the HS lambdas: indexing, elementwise *, sum, prod."""

    def __init__(self, items):
        self.items = list(items)

    def __getitem__(self, i):
        return self.items[i]

    def __mul__(self, o):
        return _SymVec(a * b for a, b in zip(self.items, o.items))

    def sum(self):
        return sum(self.items[1:], self.items[0])

    def prod(self):
        out = self.items[0]
        for a in self.items[1:]:
            out = out * a
        return out


@contextlib.contextmanager
def _casadi_torch():
    saved = {k: getattr(torch, k) for k in ("sin", "cos", "log", "stack")}
    torch.sin, torch.cos, torch.log = ca.sin, ca.cos, ca.log
    torch.stack = lambda xs: ca.vertcat(*xs)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(torch, k, v)


def ipopt_hs(p):
    x = ca.SX.sym("x", p.n)
    xv = _SymVec([x[i] for i in range(p.n)])
    with _casadi_torch():
        fe = p.f(xv)
        gs, lbg, ubg = [], [], []
        if p.eq:
            e = p.eq(xv)
            gs.append(e)
            lbg += [0.0] * e.shape[0]
            ubg += [0.0] * e.shape[0]
        if p.ineq:
            e = p.ineq(xv)
            gs.append(e)
            lbg += [-np.inf] * e.shape[0]
            ubg += [0.0] * e.shape[0]
    solver = ca.nlpsol("s", "ipopt", {"x": x, "f": fe, "g": ca.vertcat(*gs)},
                       {"print_time": False, "ipopt": {"print_level": 0, "tol": 1e-8, "sb": "yes"}})
    lbx = list(p.lb) if p.lb else [-np.inf] * p.n
    ubx = list(p.ub) if p.ub else [np.inf] * p.n
    t = time.perf_counter()
    r = solver(x0=list(p.x0), lbg=lbg, ubg=ubg, lbx=lbx, ubx=ubx)
    dt = time.perf_counter() - t
    st = solver.stats()
    return float(r["f"]), st["iter_count"], dt, st["success"]


def scipy_hs(p, method):
    T = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731

    def fg(v):
        xt = T(v).requires_grad_(True)
        fx = p.f(xt)
        g, = torch.autograd.grad(fx, xt)
        return float(fx.detach()), g.numpy()
    cons = []
    bounds = None
    if p.lb or p.ub:
        bounds = so.Bounds(p.lb or [-np.inf] * p.n, p.ub or [np.inf] * p.n)
    jac = lambda fn: (lambda v: torch.autograd.functional.jacobian(fn, T(v)).numpy())  # noqa: E731
    if method == "SLSQP":
        if p.eq:
            cons.append({"type": "eq", "fun": lambda v: p.eq(T(v)).numpy(), "jac": jac(p.eq)})
        if p.ineq:
            cons.append({"type": "ineq", "fun": lambda v: -p.ineq(T(v)).numpy(),
                         "jac": jac(lambda z: -p.ineq(z))})
        opts = {"ftol": 1e-12, "maxiter": 500}
    else:
        hessf = lambda v: torch.autograd.functional.hessian(p.f, T(v)).numpy()  # noqa: E731
        if p.eq:
            cons.append(so.NonlinearConstraint(lambda v: p.eq(T(v)).numpy(), 0, 0, jac=jac(p.eq)))
        if p.ineq:
            cons.append(so.NonlinearConstraint(lambda v: p.ineq(T(v)).numpy(), -np.inf, 0, jac=jac(p.ineq)))
        opts = {"gtol": 1e-8, "xtol": 1e-12, "maxiter": 1000}
    t = time.perf_counter()
    kw = {"hess": hessf} if method == "trust-constr" else {}
    r = so.minimize(fg, np.array(p.x0, dtype=float), jac=True, method=method, constraints=cons, bounds=bounds,
                    options=opts, **kw)
    return float(r.fun), int(r.nit), time.perf_counter() - t, bool(r.success) or r.status in (1, 2)


def ours_hs(p, linear_solver):
    t = time.perf_counter()
    o = alsketch.minimize(p.f, p.x0_tensor(), eq=p.eq, ineq=p.ineq, lb=p.lb, ub=p.ub, linear_solver=linear_solver,
                          time_limit=5.0)
    return o.objective, o.iterations, time.perf_counter() - t, o.status.is_success


def bench_hs():
    solvers = {"alsketch(direct)": lambda p: ours_hs(p, "direct"),
               "alsketch(sketch)": lambda p: ours_hs(p, "sketch"),
               "trust-constr": lambda p: scipy_hs(p, "trust-constr"),
               "SLSQP": lambda p: scipy_hs(p, "SLSQP")}
    if ca is not None:
        solvers["IPOPT(casadi)"] = ipopt_hs
    res = {k: {} for k in solvers}
    for num in hs.NUMBERS:
        p = hs.get(num)
        for name, fn in solvers.items():
            try:
                fv, it, dt, ok = fn(p)
            except Exception as e:  # a peer crashing counts as unsolved
                fv, it, dt, ok = float("nan"), 0, 0.0, False
                print(f"  {name} on {p.name}: {type(e).__name__}: {e}", file=sys.stderr)
            res[name][num] = (ok and hs.relative_error(fv, p.f_star) <= 1e-6, it, dt)
    print("\nPer-problem iterations (* = not solved to 1e-6 relative):")
    print("problem " + " ".join(f"{k:>17s}" for k in solvers))
    for num in hs.NUMBERS:
        print(f"HS{num:<5d} " + " ".join(f"{res[k][num][1]:>16d}{' ' if res[k][num][0] else '*'}"
                                         for k in solvers))
    print("\nHock-Schittkowski summary (24 problems)")
    print(f"{'solver':18s} {'solved':>7s} {'median it':>10s} {'median ms':>10s} {'total s':>8s}")
    for k in solvers:
        v = res[k].values()
        print(f"{k:18s} {sum(s for s, _, _ in v):>4d}/24 {statistics.median(i for _, i, _ in v):>10.1f} "
              f"{1e3 * statistics.median(t for _, _, t in v):>10.2f} {sum(t for _, _, t in v):>8.2f}")
    if ca is not None:
        for k in ("alsketch(direct)", "alsketch(sketch)"):
            mi = statistics.median(i for _, i, _ in res[k].values())
            mp_ = statistics.median(i for _, i, _ in res["IPOPT(casadi)"].values())
            print(f"median-iteration ratio {k} / IPOPT = {mi / mp_:.2f}   (target <= 2)")


# ------------------------------------------------------------------------------------------ Poisson control
def _pde_child(kind, N, q):
    P = pc.make(N)
    t = time.perf_counter()
    if kind == "alsketch":
        o = alsketch.minimize(P.f, P.x0, eq=P.eq, jac_eq=P.jac_eq, hess_lag=P.hess_lag, linear_solver="direct",
                              tol=1e-8)
        x, it = o.x.numpy(), o.iterations
    elif kind == "trust-constr":
        M = N * N
        w = 1.0 / (N + 1) ** 2
        s = np.arange(1, N + 1) / (N + 1)
        yd = np.outer(np.sin(np.pi * s), np.sin(np.pi * s)).ravel()
        J = P.jac_eq(None)
        Hs = P.hess_lag(None, None)

        def fg(v):
            y, u = v[:M], v[M:]
            return 0.5 * w * (((y - yd) ** 2).sum() + P.alpha * (u * u).sum()), \
                np.concatenate([w * (y - yd), w * P.alpha * u])
        con = so.LinearConstraint(J, 0, 0)
        r = so.minimize(fg, np.zeros(2 * M), jac=True, hess=lambda v: Hs, method="trust-constr", constraints=[con],
                        options={"gtol": 1e-8, "xtol": 1e-12, "maxiter": 1000})
        x, it = r.x, r.nit
    else:
        M = N * N
        w = 1.0 / (N + 1) ** 2
        s = np.arange(1, N + 1) / (N + 1)
        yd = np.outer(np.sin(np.pi * s), np.sin(np.pi * s)).ravel()
        v = ca.MX.sym("x", 2 * M)
        y, u = v[:M], v[M:]
        A = P.A.tocsc()
        Ad = ca.DM(ca.Sparsity(M, M, A.indptr.tolist(), A.indices.tolist()), A.data.tolist())
        fe = 0.5 * w * (ca.sumsqr(y - ca.DM(yd)) + P.alpha * ca.sumsqr(u))
        solver = ca.nlpsol("s", "ipopt", {"x": v, "f": fe, "g": ca.mtimes(Ad, y) - u},
                           {"print_time": False, "ipopt": {"print_level": 0, "tol": 1e-8, "sb": "yes"}})
        r = solver(x0=np.zeros(2 * M), lbg=0, ubg=0)
        x, it = np.array(r["x"]).ravel(), solver.stats()["iter_count"]
    dt = time.perf_counter() - t
    err = float(np.abs(x - P.x_star.numpy()).max() / np.abs(P.x_star.numpy()).max())
    q.put((dt, it, err, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def run_child(kind, N, timeout):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    pr = ctx.Process(target=_pde_child, args=(kind, N, q))
    pr.start()
    pr.join(timeout)
    if pr.is_alive():
        pr.terminate()
        pr.join()
        return None
    return q.get() if not q.empty() else None


def bench_pde(sizes, timeout):
    kinds = ["alsketch", "trust-constr"] + (["IPOPT(casadi)"] if ca is not None else [])
    print("\nPoisson optimal control QP (n = 2N^2 unknowns, m = N^2 constraints); child-process peak RSS")
    print(f"{'N':>4s} {'n':>7s} {'solver':14s} {'time s':>8s} {'iters':>6s} {'rel err':>9s} {'peak MB':>8s} "
          f"{'time / ours':>11s}")
    for N in sizes:
        rows = {k: run_child(k, N, timeout) for k in kinds}
        ours = rows["alsketch"]
        for k, r in rows.items():
            if r is None:
                print(f"{N:>4d} {2 * N * N:>7d} {k:14s} {'> ' + str(timeout):>8s}")
                continue
            ratio = r[0] / ours[0] if ours else float("nan")
            print(f"{N:>4d} {2 * N * N:>7d} {k:14s} {r[0]:>8.2f} {r[1]:>6d} {r[2]:>9.1e} {r[3]:>8.0f} {ratio:>11.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="Poisson sizes n ~ 1e4 and 1e5")
    ap.add_argument("--skip-hs", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    if not a.skip_hs:
        bench_hs()
    bench_pde([71, 224] if a.full else [71], timeout=600)


if __name__ == "__main__":
    main()
