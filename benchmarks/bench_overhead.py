"""Benchmark: modeling overhead -- loop-built vs vectorised models, and the CLI's start-up cost.

1. Hanging chain (N links between fixed ends, minimise potential energy, link lengths <= L) and a small
   CasADi-style race car (minimum time, RK4 steps, speed limit along the track), each written twice:
   *loop*: one scalar constraint per link / per step (`for k in range(N): m.subject_to(...)`);
   *vectorised*: one constraint over slices (`x[1:] - x[:-1]`).
   Measured per form: build (Python model construction), compile and solve (Result.times), total, status,
   objective; and the ratio loop / vectorised. The peer is the same vectorised model written directly with
   CasADi's Opti stack and solved by the same IPOPT, in the same run (ratio optdsl vectorised / CasADi).
2. CPU time (user + system, from resource.getrusage of the child) of `python -c "import optdsl"`,
   `optdsl --help`, `optdsl solve --help`, `optdsl solve` on an NLP and on a convex QP, and, for comparison,
   `python -c "import torch"` -- each the median of --repeats fresh interpreters.

Usage:  OMP_NUM_THREADS=1 python benchmarks/bench_overhead.py [--quick] [--chain N] [--car N] [--repeats R]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import optdsl as od

ROOT = Path(__file__).resolve().parent.parent


# --- models ---------------------------------------------------------------------------------------------------

def hanging_chain(N: int, loop: bool) -> od.Model:
    """N links of length <= L = 1.5/N between (0, 0) and (1, 0); minimise the sum of heights (unit masses)."""
    L = 1.5 / N
    m = od.Model(f"chain_{'loop' if loop else 'vec'}")
    x = m.variable(N + 1, name="x", value=np.linspace(0, 1, N + 1))
    y = m.variable(N + 1, name="y", value=np.zeros(N + 1))
    m.minimize(y.sum())
    m.subject_to(x[0] == 0, name="x0"); m.subject_to(y[0] == 0, name="y0")
    m.subject_to(x[N] == 1, name="xN"); m.subject_to(y[N] == 0, name="yN")
    if loop:
        for i in range(N):
            m.subject_to((x[i + 1] - x[i]) ** 2 + (y[i + 1] - y[i]) ** 2 <= L ** 2, name=f"link{i}")
    else:
        m.subject_to((x[1:] - x[:-1]) ** 2 + (y[1:] - y[:-1]) ** 2 <= L ** 2, name="links")
    return m


def race_car(N: int, loop: bool) -> od.Model:
    """CasADi's race-car example: min T s.t. pos' = speed, speed' = U - speed, speed <= 1 - sin(2 pi pos)/2,
    0 <= U <= 1, pos(0) = speed(0) = 0, pos(T) = 1; RK4 with N steps of T/N."""
    m = od.Model(f"race_{'loop' if loop else 'vec'}")
    pos = m.variable(N + 1, name="pos", value=np.linspace(0, 1, N + 1))
    speed = m.variable(N + 1, name="speed", value=np.ones(N + 1))
    U = m.variable(N, lb=0, ub=1, name="U", value=np.full(N, 0.5))
    T = m.variable(lb=0, name="T", value=1.0)
    m.minimize(T)
    dt = T / N

    def f(p, s, u):  # right-hand side of the ODE, elementwise on scalars or slices
        return s, u - s

    def rk4(p, s, u):
        k1 = f(p, s, u)
        k2 = f(p + dt / 2 * k1[0], s + dt / 2 * k1[1], u)
        k3 = f(p + dt / 2 * k2[0], s + dt / 2 * k2[1], u)
        k4 = f(p + dt * k3[0], s + dt * k3[1], u)
        return (p + dt / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0]),
                s + dt / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1]))

    if loop:
        for k in range(N):
            p_next, s_next = rk4(pos[k], speed[k], U[k])
            m.subject_to(pos[k + 1] == p_next, name=f"pos_step{k}")
            m.subject_to(speed[k + 1] == s_next, name=f"speed_step{k}")
        for k in range(N + 1):
            m.subject_to(speed[k] <= 1 - od.sin(2 * np.pi * pos[k]) / 2, name=f"track{k}")
    else:
        p_next, s_next = rk4(pos[:-1], speed[:-1], U)
        m.subject_to(pos[1:] == p_next, name="pos_steps")
        m.subject_to(speed[1:] == s_next, name="speed_steps")
        m.subject_to(speed <= 1 - od.sin(2 * np.pi * pos) / 2, name="track")
    m.subject_to(pos[0] == 0, name="pos0"); m.subject_to(speed[0] == 0, name="speed0")
    m.subject_to(pos[N] == 1, name="finish")
    return m


def casadi_chain(N: int):
    import casadi as ca
    L = 1.5 / N
    opti = ca.Opti()
    x, y = opti.variable(N + 1), opti.variable(N + 1)
    opti.set_initial(x, np.linspace(0, 1, N + 1)); opti.set_initial(y, 0)
    opti.minimize(ca.sum1(y))
    opti.subject_to([x[0] == 0, y[0] == 0, x[N] == 1, y[N] == 0])
    opti.subject_to((x[1:] - x[:-1]) ** 2 + (y[1:] - y[:-1]) ** 2 <= L ** 2)
    return opti


def casadi_race(N: int):
    import casadi as ca
    opti = ca.Opti()
    X, U, T = opti.variable(2, N + 1), opti.variable(1, N), opti.variable()
    pos, speed = X[0, :], X[1, :]
    opti.minimize(T)
    f = lambda x, u: ca.vertcat(x[1], u - x[1])  # noqa: E731
    dt = T / N
    for k in range(N):  # CasADi's own example is written this way; its cost is what a CasADi user pays
        k1 = f(X[:, k], U[:, k]); k2 = f(X[:, k] + dt / 2 * k1, U[:, k])
        k3 = f(X[:, k] + dt / 2 * k2, U[:, k]); k4 = f(X[:, k] + dt * k3, U[:, k])
        opti.subject_to(X[:, k + 1] == X[:, k] + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4))
    opti.subject_to(speed <= 1 - ca.sin(2 * ca.pi * pos) / 2)
    opti.subject_to(opti.bounded(0, U, 1))
    opti.subject_to([pos[0] == 0, speed[0] == 0, pos[N] == 1, T >= 0])
    opti.set_initial(speed, 1); opti.set_initial(T, 1); opti.set_initial(pos, np.linspace(0, 1, N + 1))
    opti.set_initial(U, 0.5)
    return opti


# --- measurements ---------------------------------------------------------------------------------------------

def time_optdsl(build, N: int, loop: bool) -> dict:
    t0 = time.perf_counter()
    m = build(N, loop)
    t_build = time.perf_counter() - t0
    res = m.solve()
    total = time.perf_counter() - t0
    return {"build": t_build, "compile": res.times.get("compile", float("nan")),
            "solve": res.times.get("solve", float("nan")), "total": total, "status": res.status.value,
            "objective": res.objective, "solver": res.solver}


def time_casadi(make, N: int) -> dict:
    t0 = time.perf_counter()
    opti = make(N)
    opti.solver("ipopt", {"print_time": False}, {"print_level": 0, "sb": "yes"})
    sol = opti.solve()
    total = time.perf_counter() - t0
    return {"total": total, "objective": float(sol.value(opti.f)), "status": opti.stats()["return_status"]}


def child_cpu(argv: list[str], repeats: int) -> float:
    """Median CPU seconds (user + system) of a fresh child process running argv."""
    samples = []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        samples.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes and one repeat (a smoke run)")
    ap.add_argument("--chain", type=int, default=None, help="hanging-chain links (default 200, quick 40)")
    ap.add_argument("--car", type=int, default=None, help="race-car RK4 steps (default 50, quick 10)")
    ap.add_argument("--repeats", type=int, default=None, help="fresh interpreters per start-up figure (default 5)")
    args = ap.parse_args()
    n_chain = args.chain or (40 if args.quick else 200)
    n_car = args.car or (10 if args.quick else 50)
    repeats = args.repeats or (1 if args.quick else 5)

    # warm-up: imports (torch, cvxpy, casadi) and first-call caches are not part of any figure below
    for build in (hanging_chain, race_car):
        for loop in (False, True):
            build(4, loop).solve()
    print("== loop-built vs vectorised (default solver; CasADi Opti + IPOPT as the peer)")
    print(f"{'model':<22}{'form':<8}{'build s':>9}{'compile s':>11}{'solve s':>9}{'total s':>9}  {'status':<16}"
          f"{'objective':>12}  solver")
    for label, build, peer, N in (("hanging chain", hanging_chain, casadi_chain, n_chain),
                                  ("race car", race_car, casadi_race, n_car)):
        rows = {loop: time_optdsl(build, N, loop) for loop in (False, True)}
        for loop, r in rows.items():
            print(f"{f'{label} N={N}':<22}{'loop' if loop else 'vector':<8}{r['build']:9.3f}{r['compile']:11.3f}"
                  f"{r['solve']:9.3f}{r['total']:9.3f}  {r['status']:<16}{r['objective']:12.6g}  {r['solver']}")
        try:
            c = time_casadi(peer, N)
            print(f"{f'{label} N={N}':<22}{'casadi':<8}{'':9}{'':11}{'':9}{c['total']:9.3f}  {c['status']:<16}"
                  f"{c['objective']:12.6g}  casadi direct")
            peer_ratio = f"   optdsl vectorised / casadi: {rows[False]['total'] / c['total']:.2f}x"
        except ImportError:
            peer_ratio = "   (casadi not installed: no peer)"
        print(f"   loop / vectorised total: {rows[True]['total'] / rows[False]['total']:.2f}x{peer_ratio}")

    print(f"\n== start-up CPU (user + system, median of {repeats} fresh interpreters)")
    exe = sys.executable
    optdsl_cli = [exe, "-m", "optdsl.cli"]
    for label, argv in (("python -c 'import optdsl'", [exe, "-c", "import optdsl"]),
                        ("optdsl --help", optdsl_cli + ["--help"]),
                        ("optdsl solve --help", optdsl_cli + ["solve", "--help"]),
                        ("python -c 'import optdsl; optdsl.Model'", [exe, "-c", "import optdsl; optdsl.Model"]),
                        # a whole solve: an NLP (IPOPT: no cvxpy, sympy or networkx is imported) and a convex QP
                        ("optdsl solve problems/hs071.py -q", optdsl_cli + ["solve", str(ROOT / "problems" / "hs071.py"), "-q"]),
                        ("optdsl solve problems/qp_portfolio.py -q",
                         optdsl_cli + ["solve", str(ROOT / "problems" / "qp_portfolio.py"), "-q"]),
                        ("python -c 'import torch' (reference)", [exe, "-c", "import torch"]),
                        ("python -c 'pass' (interpreter)", [exe, "-c", "pass"])):
        print(f"{label:<44}{child_cpu(argv, repeats):7.2f} s")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
