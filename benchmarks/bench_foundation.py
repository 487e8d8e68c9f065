"""Foundation benchmarks for the modeling layer.

(1) overhead of optdsl -> cvxpy vs the same QP written directly in cvxpy (same solver), 10^4 constraint rows;
(2) building + compiling (plan/explain) a model with a 10^5-row vectorized constraint;
(3) re-solve after a parameter change vs first solve on the smooth backend (compiled chain reused).

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_foundation.py
"""
import statistics
import time

import cvxpy as cp
import numpy as np

import optdsl as od

SOLVER = "CLARABEL"


def qp_data(m=10_000, n=100, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(m, n))
    c = rng.normal(size=n) * 3
    b = rng.uniform(0.5, 1.5, size=m)
    return A, b, c


def bench_overhead(repeats=3):
    A, b, c = qp_data()
    t_od, t_cp, objs = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        m = od.Model("qp10k")
        x = m.variable(A.shape[1], name="x")
        m.minimize(od.sum_squares(x - c))
        m.subject_to(A @ x <= b, name="rows")
        r = m.solve(solver="cvxpy", cvxpy_solver=SOLVER)
        t_od.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        xv = cp.Variable(A.shape[1])
        p = cp.Problem(cp.Minimize(cp.sum_squares(xv - c)), [A @ xv <= b])
        p.solve(solver=SOLVER)
        t_cp.append(time.perf_counter() - t0)
        objs.append((r.objective, p.value))
    assert abs(objs[-1][0] - objs[-1][1]) <= 1e-5 * (1 + abs(objs[-1][1])), objs[-1]
    mo, mc = statistics.median(t_od), statistics.median(t_cp)
    print(f"[1] QP 10^4 x 100 rows ({SOLVER}): optdsl {mo:.3f} s, direct cvxpy {mc:.3f} s, "
          f"ratio {mo / mc:.2f} (target <= 1.2; median of {repeats})")
    return mo / mc


def bench_build_compile(repeats=3):
    rng = np.random.default_rng(1)
    rows, n = 100_000, 20
    A = rng.normal(size=(rows, n))
    b = rng.uniform(1, 2, size=rows)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        m = od.Model("big")
        x = m.variable(n, lb=-1, ub=1, name="x")
        m.minimize(od.sum_squares(x - 0.5))
        m.subject_to(A @ x <= b, name="rows")
        m.plan()
        text = m.explain()
        ts.append(time.perf_counter() - t0)
    assert "chosen" in text
    print(f"[2] build + plan + explain, 10^5-row constraint: {statistics.median(ts):.3f} s (target < 1 s; "
          f"median of {repeats})")
    return statistics.median(ts)


def bench_resolve(solver="lbfgs", repeats=5):
    n = 200
    rng = np.random.default_rng(2)
    F = rng.normal(size=(300, n)) / np.sqrt(n)
    firsts, res, info = [], [], []
    for i in range(repeats):
        m = od.Model("smooth")
        x = m.variable(n, name="x")
        t = m.parameter(value=rng.normal(size=300), name="t")
        m.minimize(od.sum_squares(F @ x - t) + 0.1 * od.sum_squares(x) + od.sum(od.exp(0.1 * x)))
        t0 = time.perf_counter()
        r1 = m.solve(solver=solver)
        firsts.append(time.perf_counter() - t0)
        t.value = t.value + 0.01 * rng.normal(size=300)   # small data change; warm start from the last point
        t0 = time.perf_counter()
        r2 = m.solve(solver=solver)
        res.append(time.perf_counter() - t0)
        info.append((r1.times["compile"], r2.times["compile"], r1.iterations, r2.iterations))
        ok = ("OPTIMAL", "LOCALLY_OPTIMAL", "SLOW_PROGRESS")
        assert r1.status.name in ok and r2.status.name in ok, (r1.status, r1.message, r2.status, r2.message)
    f, s = statistics.median(firsts), statistics.median(res)
    print(f"[3] {solver}: first solve {f * 1e3:.1f} ms, re-solve after parameter change {s * 1e3:.1f} ms, "
          f"speedup {f / s:.1f}x (target >= 5x; median of {repeats})")
    c1, c2, i1, i2 = (statistics.median(v) for v in zip(*info))
    print(f"    compile {c1 * 1e3:.2f} ms -> {c2 * 1e3:.3f} ms (chain reused); iterations {i1:.0f} -> {i2:.0f} (warm start)")
    return f / s


if __name__ == "__main__":
    bench_overhead()
    bench_build_compile()
    bench_resolve("lbfgs")
    bench_resolve("nlp")
