"""Structures that compose: exact linear bilevel through the KKT route, DAG learning with prior knowledge, and a
robust bilevel model with a black-box leader (a zeroth-order loop over the hyper-objective).

Part A — linear bilevel (solvers/testing/linear_bilevel.py: scalar leader x ∈ [0, 10], follower LP with ny
variables in [0, 10] and m = ny sparse rows A y <= b + a x, 3 follower variables each): the KKT → MILP route (``bilevel_to_kkt`` + HiGHS) vs
LV-HBA (``solver="bilevel", method="lvhba"``, small sizes only) vs enumeration over a grid of x (follower LP by
scipy linprog at each point, optimistic ties; "where possible": small ny). Columns: time, leader objective,
gap to the best known value (enumeration's grid optimum, or KKT's where enumeration is not run), whether the
big-M bounds were derived from the model (certified) or grown until inactive.

Part B — DAG SHD with vs without prior knowledge (tiers = the true topological order cut in thirds, 20 known
non-edges), TOPO, linear-Gaussian SEM with unequal noise scales U[0.5, 1.5], n = 100 (hard regime), ER2 and SF4.

Part C — a robust bilevel model with a black-box leader cost (problems/robust_bilevel_blackbox.py): one plain
``m.solve()`` (robust follower cap by vertex rows, zeroth-order leader, follower by SLSQP) vs enumeration over a
grid of the leader's s with the follower solved by scipy's SLSQP at each point (the same vertex rows, written by
hand) and the black box evaluated there (grids that miss s* = 3.5). Columns: time (median of 3), cost, gap to C* = 2.75,
black-box evaluations.

Part D — Stackelberg toll pricing (solvers/testing/toll_pricing.py: A tolled arcs, K = 2A commodities with a
toll-free alternative, arc capacities; revenue Σ T_a·flow_a is bilinear): the KKT route with the strong-duality
rewrite of the revenue (certified by HiGHS; time median of 3) vs the first-order bilevel route
(``solver="bilevel"``, A = 2 only, its tolls re-scored with the follower solved exactly) vs enumeration over a grid
of tolls (A = 2; revenue by linprog with optimistic ties). Columns: time, revenue at the returned tolls, gap to
the KKT value, certified.

Part E — DAG SHD with vs without the sign prior W >= 0 (TOPO with bounded least squares per node), data from DAGs
with positive weights U[0.5, 2], unequal noise scales, n = 100, ER2 and SF4.

    OMP_NUM_THREADS=1 python benchmarks/bench_compose.py --quick   # ~2 min: ny 10, 25; d = 20, 2 seeds
    OMP_NUM_THREADS=1 python benchmarks/bench_compose.py           # ny 10..200; d = 20, 50, 5 seeds (~15 min)

(Dense random rows are much harder for branch and bound: ny = 25 with 50 dense rows found no incumbent in 30 s.)
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def _bilevel_model(inst):
    import optdsl as od
    m = od.Model("linear_bilevel")
    x = m.variable(lb=0, ub=inst.x_hi, name="x")
    f = m.level("follower")
    y = f.variable(len(inst.d_y), lb=0, ub=inst.y_hi, name="y")
    m.minimize(inst.c_x * x + inst.c_y @ y)
    f.minimize(inst.d_y @ y)
    f.subject_to(inst.A @ y <= inst.b + inst.a * x, name="rows")
    return m, x


def part_a(sizes, lvhba_sizes, enum_sizes, grid, time_limit, seed=0):
    from optdsl.solvers.testing.linear_bilevel import enumerate_grid, random_linear_bilevel, value_at
    rows = []
    for ny in sizes:
        inst = random_linear_bilevel(ny=ny, m=ny, seed=seed, per_row=3)
        row = {"ny": ny}
        m, x = _bilevel_model(inst)
        t = time.perf_counter()
        res = m.solve(time_limit=time_limit)
        row["kkt_s"] = time.perf_counter() - t
        row["kkt_obj"] = res.objective
        row["kkt_status"] = res.status.name
        row["mip_gap"] = res.certificates.get("mip_gap")
        row["certified"] = res.extras.get("big_m", {}).get("certified")
        # the KKT point, re-evaluated with the follower solved by linprog at its x (bilevel feasibility check)
        row["kkt_check"] = value_at(inst, float(x.value))[0] if res.values else float("nan")
        if ny in enum_sizes:
            t = time.perf_counter()
            row["enum_obj"], _ = enumerate_grid(inst, grid)
            row["enum_s"] = time.perf_counter() - t
        if ny in lvhba_sizes:
            m2, x2 = _bilevel_model(inst)
            t = time.perf_counter()
            r2 = m2.solve(solver="bilevel", method="lvhba")
            row["lvhba_s"] = time.perf_counter() - t
            # LV-HBA's x with the follower's true (optimistic) response: the value the leader really gets
            row["lvhba_obj"] = value_at(inst, float(x2.value))[0] if x2.value is not None else float("nan")
            row["lvhba_status"] = r2.status.name
        rows.append(row)
        print(_fmt_a(row), flush=True)
    return rows


def _fmt_a(r):
    known = [v for v in (r.get("enum_obj"), r["kkt_obj"]) if v is not None]
    best = min(known) if known else float("nan")
    gap = lambda v: "" if v is None else f"{v - best:+.2e}"  # noqa: E731
    obj = "none" if r["kkt_obj"] is None else f"{r['kkt_obj']:.6g}"
    mg = "" if r.get("mip_gap") is None else f", MIP gap {r['mip_gap']:.1e}"
    parts = [f"ny={r['ny']:4d}", f"KKT {r['kkt_s']:7.2f}s obj {obj} ({r['kkt_status']}{mg}, "
             f"{'M derived' if r['certified'] else 'M sampled'}; linprog at its x {r['kkt_check']:.6g}) "
             f"gap {gap(r['kkt_obj'])}"]
    if "enum_obj" in r:
        parts.append(f"enum {r['enum_s']:6.2f}s obj {r['enum_obj']:.6g}")
    if "lvhba_obj" in r:
        parts.append(f"LV-HBA {r['lvhba_s']:6.2f}s obj {r['lvhba_obj']:.6g} gap {gap(r['lvhba_obj'])} "
                     f"time ratio KKT/LV-HBA {r['kkt_s'] / r['lvhba_s']:.3f}")
    return " | ".join(parts)


def part_b(ds, seeds, n=100):
    import networkx as nx

    import optdsl as od
    from optdsl.solvers.dag import count_accuracy, data
    out = []
    for d in ds:
        for gt, s0 in (("ER", 2 * d), ("SF", 4 * d)):
            shd = {False: [], True: []}
            secs = {False: 0.0, True: 0.0}
            for seed in seeds:
                rng = np.random.default_rng(seed)
                B = data.simulate_dag(d, s0, gt, rng)
                W_true = data.simulate_parameter(B, seed=rng)
                X = data.simulate_linear_sem(W_true, n, "gauss", noise_scale=rng.uniform(0.5, 1.5, d), seed=rng)
                order = list(nx.topological_sort(nx.DiGraph(B)))
                tiers = [order[:d // 3], order[d // 3:2 * d // 3], order[2 * d // 3:]]
                non = [(i, j) for i in range(d) for j in range(d) if i != j and not B[i, j] and not B[j, i]]
                forbidden = [non[k] for k in np.random.default_rng(seed + 1).choice(len(non), 20, replace=False)]
                for prior in (False, True):
                    m = od.Model("dag")
                    W = m.variable((d, d), name="W")
                    m.minimize(od.sem_loss(W, X))
                    m.subject_to(od.acyclic(W), name="dag")
                    if prior:
                        m.subject_to(od.tiers(W, tiers), name="tiers")
                        m.subject_to(od.forbid(W, forbidden), name="known_non_edges")
                    t = time.perf_counter()
                    m.solve(method="topo")
                    secs[prior] += time.perf_counter() - t
                    shd[prior].append(count_accuracy(B, W.value)["shd"])
            row = {"graph": f"{gt}{s0 // d}", "d": d, "shd_without": float(np.mean(shd[False])),
                   "shd_with": float(np.mean(shd[True])), "s_without": secs[False] / len(seeds),
                   "s_with": secs[True] / len(seeds)}
            out.append(row)
            print(f"{row['graph']} d={d}: mean SHD without prior {row['shd_without']:.1f} ({row['s_without']:.2f}s), "
                  f"with tiers + 20 forbidden edges {row['shd_with']:.1f} ({row['s_with']:.2f}s), "
                  f"ratio {row['shd_with'] / max(row['shd_without'], 1e-9):.2f}  [seeds {list(seeds)}]", flush=True)
    return out


def part_c(grids, repeats=3):
    """The gallery's robust bilevel model with a black-box leader: the zeroth-order leader vs grid enumeration."""
    import importlib.util
    from pathlib import Path

    from scipy.optimize import minimize
    path = Path(__file__).resolve().parent.parent / "problems" / "robust_bilevel_blackbox.py"
    spec = importlib.util.spec_from_file_location("robust_bilevel_blackbox", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    def firm(s, q0):   # the follower by SLSQP, its robust cap written as the two vertex rows e = 0.8, 1.2
        cons = [{"type": "ineq", "fun": lambda q, e=e: mod.CAP + mod.CAP_SLOPE * s - e * q[0]}
                for e in (mod.E_LO, mod.E_HI)]
        r = minimize(lambda q: 0.5 * q[0] ** 2 - s * q[0], [q0], jac=lambda q: [q[0] - s], method="SLSQP",
                     bounds=[(0, None)], constraints=cons, options={"ftol": 1e-14})
        return float(r.x[0])

    def solve_once():
        calls = {"n": 0}
        sim = mod.simulate

        def counted(s, q):
            calls["n"] += 1
            return sim(s, q)
        mod.simulate = counted
        try:
            t = time.perf_counter()
            res = mod.build().solve()
            return time.perf_counter() - t, res.objective, calls["n"], res.status.name
        finally:
            mod.simulate = sim

    def enumerate_once(n):
        t = time.perf_counter()
        best, q = np.inf, 0.0
        for s in np.linspace(0.0, 4.0, n):
            q = firm(s, q)
            best = min(best, mod.simulate(s, q))
        return time.perf_counter() - t, best, n, "grid"
    rows = [("optdsl m.solve() (zo leader)", solve_once)] + [(f"enumeration, {n} points", lambda n=n: enumerate_once(n))
                                                              for n in grids]
    for name, run in rows:
        runs = [run() for _ in range(repeats)]
        t = float(np.median([r[0] for r in runs]))
        _, cost, evals, status = runs[-1]
        print(f"  {name:32s} time {t:7.3f} s  cost {cost:.8f}  gap {cost - mod.C_STAR:+.2e}  black-box evals {evals:5d}"
              f"  {status}", flush=True)


def part_e(ds, seeds, n=100):
    """SHD with vs without the sign prior W >= 0 on data from DAGs with positive weights U[0.5, 2] (TOPO)."""
    import optdsl as od
    from optdsl.solvers.dag import count_accuracy, data
    for d in ds:
        for gt, s0 in (("ER", 2 * d), ("SF", 4 * d)):
            shd, secs = {False: [], True: []}, {False: 0.0, True: 0.0}
            for seed in seeds:
                rng = np.random.default_rng(seed)
                B = data.simulate_dag(d, s0, gt, rng)
                W_true = data.simulate_parameter(B, w_ranges=((0.5, 2.0),), seed=rng)
                X = data.simulate_linear_sem(W_true, n, "gauss", noise_scale=rng.uniform(0.5, 1.5, d), seed=rng)
                for sign in (False, True):
                    m = od.Model("dag")
                    W = m.variable((d, d), name="W")
                    m.minimize(od.sem_loss(W, X))
                    m.subject_to(od.acyclic(W), name="dag")
                    if sign:
                        m.subject_to(W >= 0, name="nonneg")
                    t = time.perf_counter()
                    m.solve(method="topo")
                    secs[sign] += time.perf_counter() - t
                    shd[sign].append(count_accuracy(B, W.value)["shd"])
            k = len(seeds)
            print(f"{gt}{s0 // d} d={d}: mean SHD without {np.mean(shd[False]):.1f} ({secs[False] / k:.2f}s), "
                  f"with W >= 0 {np.mean(shd[True]):.1f} ({secs[True] / k:.2f}s)  [seeds {list(seeds)}]", flush=True)


def _toll_model(inst):
    import optdsl as od
    Ek, Ea = inst.incidence()
    m = od.Model("tolls")
    T = m.variable(inst.A, lb=0, ub=inst.T_hi, name="T")
    users = m.level("users")
    q = users.variable(len(inst.k), lb=0, name="q")     # flow of each (commodity, tolled arc) pair
    r = users.variable(inst.K, lb=0, name="r")          # each commodity's toll-free alternative
    users.minimize(inst.base @ q + T @ (Ea @ q) + inst.out @ r)
    users.subject_to(Ek @ q + r == inst.demand, name="demand")
    users.subject_to(Ea @ q <= inst.cap, name="cap")
    m.maximize(T @ (Ea @ q))
    return m, T


def part_d(sizes, grid_step, first_order_time, repeats=3):
    from optdsl.solvers.testing.toll_pricing import enumerate_grid, random_toll_instance, value_at
    for A in sizes:
        inst = random_toll_instance(A=A, K=2 * A, seed=0)
        m, T = _toll_model(inst)
        times = []
        for _ in range(repeats if A <= 10 else 1):    # a run at the time limit is not repeated
            t = time.perf_counter()
            res = m.solve(time_limit=120)
            times.append(time.perf_counter() - t)
        kkt = value_at(inst, T.value)
        print(f"A={A:3d} K={2 * A:3d}  KKT route   {np.median(times):8.3f} s  revenue {kkt:10.4f}  "
              f"({res.status.name}, certified {res.extras.get('big_m', {}).get('certified')})", flush=True)
        if A == 2:
            t = time.perf_counter()
            fo = m.solve(solver="bilevel", time_limit=first_order_time)
            t = time.perf_counter() - t
            v = value_at(inst, T.value)
            print(f"{'':13s}first-order {t:8.3f} s  revenue {v:10.4f}  gap {kkt - v:+.3e}  (claimed "
                  f"{fo.objective:.4f}, {fo.status.name})", flush=True)
            t = time.perf_counter()
            best, _ = enumerate_grid(inst, step=grid_step, top=13.0)   # tolls above 13 carry nothing here
            t = time.perf_counter() - t
            print(f"{'':13s}grid {grid_step:<6g} {t:8.3f} s  revenue {best:10.4f}  gap {kkt - best:+.3e}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only (~1 min)")
    ap.add_argument("--parts", default="ABCDE", help="which parts to run (letters A, B, C, D, E)")
    args = ap.parse_args()
    parts = args.parts.upper()
    if args.quick:
        if "A" in parts:
            print("== A: linear bilevel, KKT route vs LV-HBA vs grid enumeration (201 points) ==")
            part_a([10, 25], lvhba_sizes={10}, enum_sizes={10, 25}, grid=201, time_limit=30)
        if "B" in parts:
            print("== B: DAG SHD with vs without prior knowledge (TOPO, n = 100) ==")
            part_b([20], seeds=range(2))
        if "C" in parts:
            print("== C: robust bilevel, black-box leader: zeroth-order loop vs grid enumeration (median of 3) ==")
            part_c([400])
        if "D" in parts:
            print("== D: Stackelberg toll pricing, KKT route (strong-duality revenue) vs first-order vs grid ==")
            part_d([2, 5], grid_step=0.5, first_order_time=20)
        if "E" in parts:
            print("== E: DAG SHD with vs without the sign prior W >= 0 (TOPO, positive weights, n = 100) ==")
            part_e([20], seeds=range(2))
    else:
        if "A" in parts:
            print("== A: linear bilevel, KKT route vs LV-HBA vs grid enumeration (1001 points) ==")
            part_a([10, 25, 50, 100, 200], lvhba_sizes={10, 25}, enum_sizes={10, 25, 50}, grid=1001,
                   time_limit=120)
        if "B" in parts:
            print("== B: DAG SHD with vs without prior knowledge (TOPO, n = 100) ==")
            part_b([20, 50], seeds=range(5))
        if "C" in parts:
            print("== C: robust bilevel, black-box leader: zeroth-order loop vs grid enumeration (median of 3) ==")
            part_c([400, 4000])
        if "D" in parts:
            print("== D: Stackelberg toll pricing, KKT route (strong-duality revenue) vs first-order vs grid ==")
            part_d([2, 5, 10, 20], grid_step=0.1, first_order_time=60)
        if "E" in parts:
            print("== E: DAG SHD with vs without the sign prior W >= 0 (TOPO, positive weights, n = 100) ==")
            part_e([20, 50], seeds=range(5))


if __name__ == "__main__":
    main()
