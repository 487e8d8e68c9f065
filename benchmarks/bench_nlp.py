"""Benchmark: standard nonlinear programs through `m.solve()` vs CasADi + IPOPT written directly vs SciPy.

Measured side by side in one run:
  1. the 24 Hock–Schittkowski problems of problems/hs/: build (the gallery's `build()`) + `m.solve()` with
     defaults (IPOPT through the CasADi lowering; the 7 DCP ones too, being small and twice differentiable), against the
     same problem written directly in CasADi (SX symbols from the torch reference functions) and solved by
     IPOPT, and against SciPy trust-constr with exact torch derivatives;
  2. the hanging chain (problems/hanging_chain.py) at N = 50, 500, 2000 (`--sizes` for others): `m.solve()` vs
     CasADi written directly (vectorized SX) vs trust-constr (sparse exact derivatives; N <= 500 only). At
     N = 10000 IPOPT with MUMPS's automatic ordering never gets past its first iteration (an endless memory
     reallocation on the KKT matrix, whose Hessian block is zero at the start; from N = 2500 on); the ipopt
     backend switches MUMPS to the METIS ordering from 4500 variables with nonlinear constraints, and the
     direct CasADi run here gets the same option from 4500 variables (as a user would have to find). Not run
     by default;
  3. parameter re-solve: the chain with the right end's height a parameter; first solve (lowering + building
     the IPOPT solver + solving; median over 9 fresh models) vs the median re-solve after changing the
     parameter in steps of 0.05: in a sweep (each value continues the last two: the re-solve starts from the
     extrapolation of the last two solutions), back and forth (b&f: each value returns to the one before the
     last), and the sweep with extrapolate=False (IPOPT's warm start from the last solution alone).
Columns: build time, solve time, total, iterations, objective agreement |f - f_direct| / (1 + |f_direct|).
Ratios are ours / CasADi-direct (total time), medians over the set.

  4. Poisson control at N = 64, 128, 224 (`--poisson`): the default dispatch vs cvxpy, ipopt and alsketch by
     name (one run each; cvxpy only up to N = 128), the objective against the module's closed-form KKT solve.
  5. convex smooth models (`--convex`, `--only-convex`): cvxpy vs ipopt by name on the DCP HS models, small
     gallery QPs, constrained logistic regression and dense QPs of n = 5, 20, 100, 500 (CPU time, objective
     gap, KKT stationarity of each): the measurements behind CvxpyBackend.size_cost.
Timings: each HS problem and chain size runs `--repeat` times interleaved with its CasADi-direct peer (a load
spike on the shared machine hits both); the median run of each is reported, after one untimed warm-up. The HS
summary adds the median of per-problem fastest-run ratios (each side's fastest run: the least load-hit estimate).

Usage:  OMP_NUM_THREADS=1 python benchmarks/bench_nlp.py [--quick] [--alsketch] [--repeat R] [--sizes N ...]
        [--poisson N ...] [--skip-hs] [--convex N ...] [--only-convex]
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
import warnings
from pathlib import Path

import casadi as ca
import numpy as np
import scipy.optimize as so
import scipy.sparse as sp

import optdsl as od
from optdsl.graph import analyze
from optdsl.solvers.testing import hock_schittkowski as hs

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_alsketch import _casadi_torch, _SymVec, scipy_hs  # noqa: E402  (the torch-on-casadi shim)

IPOPT_OPTS = {"print_time": False, "ipopt": {"print_level": 0, "tol": 1e-8, "sb": "yes"}}


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def median_of(runs):
    """The run with the median total time (runs of one method, interleaved with its peers' on a shared machine)."""
    return sorted(runs, key=lambda r: r["build"] + r["solve"])[len(runs) // 2]


def interleaved(k, *fns):
    """k rounds, each running every fn once (so a load spike hits all of them alike); the median run of each,
    with "cpu": the median process CPU time of a run (build + solve; what other processes' load leaves alone)."""
    runs = [[] for _ in fns]
    for _ in range(k):
        for out, fn in zip(runs, fns):
            c = time.process_time()
            r = fn()
            r["cpu"] = time.process_time() - c
            out.append(r)
    return [{**median_of(r), "cpu": statistics.median(x["cpu"] for x in r),
             "best": min(x["build"] + x["solve"] for x in r)} for r in runs]


# --- the three ways to solve ------------------------------------------------------------------------------

def optdsl_solve(build, **opts):
    m, tb = timed(build)
    r, ts = timed(lambda: m.solve(**opts))
    return {"build": tb, "solve": ts, "it": r.iterations, "f": r.objective, "ok": r.status.is_success,
            "solver": r.solver}


def casadi_hs(p):
    def build():
        x = ca.SX.sym("x", p.n)
        xv = _SymVec([x[i] for i in range(p.n)])
        gs, lbg, ubg = [], [], []
        with _casadi_torch():
            f = p.f(xv)
            for fn, lo in ((p.eq, 0.0), (p.ineq, -np.inf)):
                if fn:
                    e = fn(xv)
                    gs.append(e)
                    lbg += [lo] * e.shape[0]
                    ubg += [0.0] * e.shape[0]
        return ca.nlpsol("s", "ipopt", {"x": x, "f": f, "g": ca.vertcat(*gs)}, IPOPT_OPTS), lbg, ubg
    (solver, lbg, ubg), tb = timed(build)
    lbx = list(p.lb) if p.lb else [-np.inf] * p.n
    ubx = list(p.ub) if p.ub else [np.inf] * p.n
    r, ts = timed(lambda: solver(x0=list(p.x0), lbg=lbg, ubg=ubg, lbx=lbx, ubx=ubx))
    st = solver.stats()
    return {"build": tb, "solve": ts, "it": st["iter_count"], "f": float(r["f"]), "ok": st["success"]}


def trust_constr_hs(p):
    f, it, dt, ok = scipy_hs(p, "trust-constr")
    return {"build": 0.0, "solve": dt, "it": it, "f": f, "ok": ok}


def casadi_chain(N, b=0.0):
    """The chain in CasADi directly, vectorized SX; `b` the right end's height (a parameter p)."""
    h = 2.0 / N
    t = np.linspace(0, 1, N + 1)

    def build():
        x, y, p = ca.SX.sym("x", N + 1), ca.SX.sym("y", N + 1), ca.SX.sym("b")
        f = h * ca.sum1((y[:-1] + y[1:]) / 2)
        g = ca.vertcat((x[1:] - x[:-1]) ** 2 + (y[1:] - y[:-1]) ** 2 - h ** 2, x[0], x[N] - 1, y[0], y[N] - p)
        opts = dict(IPOPT_OPTS, **({"ipopt.mumps_pivot_order": 5} if 2 * N + 2 >= 4500 else {}))
        return ca.nlpsol("chain", "ipopt", {"x": ca.vertcat(x, y), "p": p, "f": f, "g": g}, opts)
    solver, tb = timed(build)
    r, ts = timed(lambda: solver(x0=np.concatenate([t, -t * (1 - t)]), p=b, lbg=0, ubg=0))
    st = solver.stats()
    return {"build": tb, "solve": ts, "it": st["iter_count"], "f": float(r["f"]), "ok": st["success"]}


def trust_constr_chain(N):
    h = 2.0 / N
    t = np.linspace(0, 1, N + 1)
    n = N + 1
    D = sp.diags([-np.ones(N), np.ones(N)], [0, 1], shape=(N, n), format="csr")   # differences
    E = sp.csr_matrix(([1.0, 1.0], ([0, 1], [0, N])), shape=(2, n))

    def fun(z):
        y = z[n:]
        return h * (y.sum() - (y[0] + y[-1]) / 2)
    grad_y = np.full(n, h)
    grad_y[[0, -1]] = h / 2
    grad = np.concatenate([np.zeros(n), grad_y])

    def links(z):
        return (D @ z[:n]) ** 2 + (D @ z[n:]) ** 2 - h ** 2

    def links_jac(z):
        return sp.hstack([sp.diags(2 * (D @ z[:n])) @ D, sp.diags(2 * (D @ z[n:])) @ D], format="csr")

    def links_hess(z, v):
        H = 2 * D.T @ sp.diags(v) @ D
        return sp.block_diag([H, H], format="csr")
    ends = sp.block_diag([E, E], format="csr")
    cons = [so.NonlinearConstraint(links, 0, 0, jac=links_jac, hess=links_hess),
            so.LinearConstraint(ends, [0, 1, 0, 0], [0, 1, 0, 0])]
    r, ts = timed(lambda: so.minimize(fun, np.concatenate([t, -t * (1 - t)]), jac=lambda z: grad,
                                      hess=lambda z: sp.csr_matrix((2 * n, 2 * n)), method="trust-constr",
                                      constraints=cons, options={"gtol": 1e-8, "xtol": 1e-12, "maxiter": 1000}))
    return {"build": 0.0, "solve": ts, "it": int(r.nit), "f": float(r.fun), "ok": r.status in (1, 2)}


# --- reporting --------------------------------------------------------------------------------------------

def _row(label, r, ref):
    if r is None:
        return f"{label:>22s} {'-':>9s} {'-':>9s} {'-':>9s} {'-':>6s} {'-':>9s}"
    agree = abs(r["f"] - ref["f"]) / (1 + abs(ref["f"]))
    return (f"{label:>22s} {1e3 * r['build']:9.1f} {1e3 * r['solve']:9.1f} {1e3 * (r['build'] + r['solve']):9.1f} "
            f"{r['it']:6d} {agree:9.1e}" + ("" if r["ok"] else "  (not solved)"))


HEADER = f"{'':>22s} {'build ms':>9s} {'solve ms':>9s} {'total ms':>9s} {'iter':>6s} {'|df|':>9s}"


def bench_hs(names, repeat, with_alsketch):
    gallery = {p.stem: _load(p) for p in sorted((ROOT / "problems" / "hs").glob("hs*.py"))}
    ratios, ratios_ipopt, ratios_other, ratios_al, cpu_ratios, cpu_ratios_ipopt = [], [], [], [], [], []
    best_ratios = []   # fastest run of each over fastest run of the peer (the runs least hit by other load)
    cpu_dcp = []   # the DCP-convex models (small and twice differentiable: ipopt; cvxpy before)
    print("\n== Hock–Schittkowski: m.solve() (defaults) vs CasADi+IPOPT direct vs trust-constr ==")
    for name in names:
        p = hs.get(int(name[2:]))
        mod = gallery[name]
        optdsl_solve(mod.build), casadi_hs(p)          # first-call costs (imports, plugin loading) left out
        ours, direct = interleaved(repeat, lambda: optdsl_solve(mod.build), lambda: casadi_hs(p))
        tc = trust_constr_hs(p)
        print(f"{name} (n={p.n}; m.solve() chose {ours['solver']})\n{HEADER}")
        print(_row("m.solve()", ours, direct))
        print(_row("CasADi+IPOPT direct", direct, direct))
        print(_row("trust-constr", tc, direct))
        ratio = (ours["build"] + ours["solve"]) / (direct["build"] + direct["solve"])
        ratios.append(ratio)
        best_ratios.append(ours["best"] / direct["best"])
        cpu_ratios.append(ours["cpu"] / direct["cpu"])
        if ours["solver"] == "ipopt":
            cpu_ratios_ipopt.append(ours["cpu"] / direct["cpu"])
        print(f"  total-time ratio {ratio:.2f}; CPU-time ratio {ours['cpu'] / direct['cpu']:.2f} "
              f"({1e3 * ours['cpu']:.1f} / {1e3 * direct['cpu']:.1f} ms)")
        (ratios_ipopt if ours["solver"] == "ipopt" else ratios_other).append(ratio)
        if "convex" in analyze(mod.build().to_problem()).properties:
            cpu_dcp.append(ours["cpu"] / direct["cpu"])
        if with_alsketch:
            (al,) = interleaved(repeat, lambda: optdsl_solve(mod.build, solver="alsketch"))
            print(_row("m.solve(alsketch)", al, direct))
            ratios_al.append((al["build"] + al["solve"]) / (direct["build"] + direct["solve"]))
    print(f"\nHS median total-time ratio m.solve() / CasADi-direct (median of {repeat} interleaved runs each): "
          f"{statistics.median(ratios):.2f} over {len(ratios)} problems (target <= 1.5)"
          + (f"; over the {len(ratios_ipopt)} dispatched to ipopt: {statistics.median(ratios_ipopt):.2f}"
             if ratios_ipopt else "")
          + (f"; over the {len(ratios_other)} others (DCP: cvxpy): {statistics.median(ratios_other):.2f}"
             if ratios_other else ""))
    print(f"HS median CPU-time ratio (process time, unaffected by other processes' load): "
          f"{statistics.median(cpu_ratios):.2f} over {len(cpu_ratios)}"
          + (f"; over the ipopt ones: {statistics.median(cpu_ratios_ipopt):.2f}" if cpu_ratios_ipopt else "")
          + (f"; over the {len(cpu_dcp)} DCP ones: {statistics.median(cpu_dcp):.2f}" if cpu_dcp else ""))
    print(f"HS median fastest-run ratio (each side's fastest of {repeat} runs: the estimate least moved by other "
          f"processes' load): {statistics.median(best_ratios):.2f}")
    if ratios_al:
        print(f"HS median total-time ratio m.solve(solver='alsketch') / CasADi-direct: {statistics.median(ratios_al):.2f}")


def bench_chain(sizes, with_alsketch, repeat=3):
    chain = _load(ROOT / "problems" / "hanging_chain.py")
    print(f"\n== Hanging chain: m.solve() vs CasADi+IPOPT direct (vectorized SX) vs trust-constr "
          f"(median of {repeat} interleaved runs) ==")
    for N in sizes:
        k = repeat if N <= 2000 else 1
        ours, direct = interleaved(k, lambda: optdsl_solve(lambda: chain.build(N)), lambda: casadi_chain(N))
        tc = trust_constr_chain(N) if N <= 500 else None
        print(f"N = {N} ({2 * N + 2} variables, {N + 4} equalities; m.solve() chose {ours['solver']})\n{HEADER}")
        print(_row("m.solve()", ours, direct))
        print(_row("CasADi+IPOPT direct", direct, direct))
        print(_row("trust-constr", tc, direct))
        if with_alsketch and N <= 50:
            print(_row("m.solve(alsketch)", optdsl_solve(lambda: chain.build(N), solver="alsketch"), direct))
        print(f"  total-time ratio m.solve() / CasADi-direct: "
              f"{(ours['build'] + ours['solve']) / (direct['build'] + direct['solve']):.2f} (target <= 1.5); "
              f"CPU-time ratio {ours['cpu'] / direct['cpu']:.2f}")


def _param_chain(N):
    return _load(ROOT / "problems" / "hanging_chain.py").build_parametric(N)


# the right end's height in steps of 0.05: a sweep (each value continues the last two: the re-solve starts from
# their extrapolation), back and forth (each value returns to the one before the last: the secant start is that
# solution), and the sweep again with extrapolate=False (IPOPT's warm start from the last solution alone)
SEQUENCES = {"sweep": ([0.05 * (k + 1) for k in range(7)], {}),
             "b&f": ([0.05, 0.10, 0.05, 0.10, 0.05, 0.10, 0.05], {}),
             "warm only": ([0.05 * (k + 1) for k in range(7)], {"extrapolate": False})}
STEPS = 7


def bench_resolve(sizes, models=3):
    print("\n== Parameter re-solve (chain, right end's height a parameter; ipopt): first solve / re-solve ==")
    print(f"{'N':>6s} {'first ms':>9s} " + " ".join(f"{k + ' ms':>12s} {'ratio':>6s} {'it':>3s}" for k in SEQUENCES))
    for N in sizes:
        wall = {k: [] for k in ("first", *SEQUENCES)}
        cpu = {k: [] for k in wall}
        its = {k: [] for k in wall}

        def run(label, m, opts):
            c = time.process_time()
            r, dt = timed(lambda: m.solve(**opts))
            assert r.status.is_success, r.message
            wall[label].append(dt)
            cpu[label].append(time.process_time() - c)
            its[label].append(r.iterations)

        for _ in range(models):   # fresh models: the first solve lowers the model and builds the IPOPT solver
            models_now = {label: (_param_chain(N), values, opts) for label, (values, opts) in SEQUENCES.items()}
            for (m, b), values, opts in models_now.values():
                run("first", m, opts)
            for k in range(STEPS):   # the sequences interleaved: a load spike hits all of them
                for label, ((m, b), values, opts) in models_now.items():
                    b.value = values[k]
                    if k < 2:   # (the first re-solve builds the warm-start solver; nothing to extrapolate yet)
                        m.solve(**opts)
                    else:
                        run(label, m, opts)
        med = {k: statistics.median(v) for k, v in wall.items()}
        mc = {k: statistics.median(v) for k, v in cpu.items()}
        print(f"{N:6d} {1e3 * med['first']:9.1f} "
              + " ".join(f"{1e3 * med[k]:12.2f} {med['first'] / med[k]:6.1f} {statistics.median(its[k]):3.0f}"
                         for k in SEQUENCES)
              + f"   (first solve: {statistics.median(its['first']):.0f} iterations; CPU-time ratios "
              + " / ".join(f"{mc['first'] / mc[k]:.1f}" for k in SEQUENCES) + ")")


def bench_poisson(sizes, cvxpy_max=128):
    """Poisson control (problems/poisson_control.py; n = 2N^2, N^2 affine equalities, a strongly convex QP):
    m.solve() (dispatch) vs solver='cvxpy' / 'ipopt' / 'alsketch', one run each, objective error against the
    closed-form KKT solve of the module (`reference`)."""
    pc = _load(ROOT / "problems" / "poisson_control.py")
    print("\n== Poisson control: dispatch vs cvxpy / ipopt / alsketch (one run each; |df| against the KKT solve) ==")
    print(f"{'N':>5s} {'n':>7s} {'solver':>10s} {'total s':>8s} {'|df|':>9s} {'max viol':>9s}  status")
    for solver in ("cvxpy", "ipopt", "alsketch"):   # untimed warm-up (first-call costs) of every route
        pc.build(8).solve(solver=solver)
    for N in sizes:
        f_ref = pc.reference(N)[0]
        for solver in (None, "cvxpy", "ipopt", "alsketch"):
            if solver == "cvxpy" and N > cvxpy_max:
                print(f"{N:5d} {2 * N * N:7d} {'cvxpy':>10s} {'-':>8s}  (not run above N = {cvxpy_max}: "
                      f"11.5 s at N = 128, growing with N^3)")
                continue
            r, dt = timed(lambda: pc.build(N).solve(solver=solver))
            label = f"auto:{r.solver}" if solver is None else solver
            print(f"{N:5d} {2 * N * N:7d} {label:>10s} {dt:8.2f} {abs(r.objective - f_ref) / abs(f_ref):9.1e} "
                  f"{r.certificates.get('max_violation', float('nan')):9.1e}  {r.status.name}")


def dense_qp(n, seed=0):
    """A random strongly convex dense QP: min ½xᵀPx + qᵀx s.t. Ax <= b (n/2 rows, feasible at 0), 1ᵀx = 1."""
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n, n))
    P = G @ G.T / n + 0.1 * np.eye(n)
    q, A = rng.standard_normal(n), rng.standard_normal((max(n // 2, 1), n))
    b = rng.uniform(0.1, 1.0, A.shape[0])

    def build():
        m = od.Model(f"dense_qp_{n}")
        x = m.variable(n, name="x")
        m.minimize(0.5 * od.quad_form(x, P) + q @ x)
        m.subject_to(A @ x <= b, name="rows")
        m.subject_to(x.sum() == 1, name="budget")
        return m
    return build


def convex_models(sizes):
    """The convex smooth models compared by `bench_convex`: (label, build)."""
    out = [(p.stem, _load(p).build) for p in sorted((ROOT / "problems" / "hs").glob("hs*.py"))
           if p.stem in ("hs021", "hs028", "hs048", "hs049", "hs050", "hs051", "hs052")]
    for name in ("qp_portfolio", "constrained_logistic", "markowitz_maximize", "maxent_entropy"):
        out.append((name, _load(ROOT / "problems" / f"{name}.py").build))
    poisson = _load(ROOT / "problems" / "poisson_control.py")
    out.append(("poisson_control N=12", lambda: poisson.build(12)))
    out += [(f"dense QP n={n}", dense_qp(n)) for n in sizes]
    return out


def bench_convex(sizes, repeat):
    """cvxpy vs ipopt by name on convex (DCP) smooth models, interleaved: CPU time (median of `repeat`), wall
    time of the median run, iterations, objective gap to cvxpy, and each one's KKT stationarity certificate."""
    print(f"\n== Convex smooth models: cvxpy vs ipopt by name (median of {repeat} interleaved runs) ==")
    print(f"{'model':>22s} {'default':>8s} {'cvxpy cpu ms':>13s} {'ipopt cpu ms':>13s} {'cpu ratio':>10s} "
          f"{'wall ratio':>11s} {'|df|':>8s} {'KKT cvxpy':>10s} {'KKT ipopt':>10s}")

    def run(build, solver):
        m, tb = timed(build)
        r, ts = timed(lambda: m.solve(solver=solver))
        return {"build": tb, "solve": ts, "f": r.objective, "status": r.status.name,
                "kkt": r.certificates.get("kkt_stationarity", float("nan"))}

    ratios = []
    for label, build in convex_models(sizes):
        default = build().plan().backend.name
        run(build, "cvxpy"), run(build, "ipopt")        # first-call costs left out
        cv, ip = interleaved(repeat, lambda: run(build, "cvxpy"), lambda: run(build, "ipopt"))
        ratio = ip["cpu"] / cv["cpu"]
        ratios.append(ratio)
        gap = abs(ip["f"] - cv["f"]) / (1 + abs(cv["f"])) if None not in (ip["f"], cv["f"]) else float("nan")
        print(f"{label:>22s} {default:>8s} {1e3 * cv['cpu']:13.1f} {1e3 * ip['cpu']:13.1f} {ratio:10.2f} "
              f"{(ip['build'] + ip['solve']) / (cv['build'] + cv['solve']):11.2f} {gap:8.1e} {cv['kkt']:10.1e} "
              f"{ip['kkt']:10.1e}" + ("" if cv["status"] == ip["status"] == "OPTIMAL"
                                       else f"  (cvxpy {cv['status']}, ipopt {ip['status']})"))
    print(f"median CPU-time ratio ipopt / cvxpy: {statistics.median(ratios):.2f} over {len(ratios)} models")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="6 HS problems, chain N = 50 and 500, one repeat")
    ap.add_argument("--alsketch", action="store_true", help="add m.solve(solver='alsketch') rows")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="hanging-chain sizes (default 50 500 2000)")
    ap.add_argument("--skip-hs", action="store_true", help="skip the Hock-Schittkowski part")
    ap.add_argument("--repeat", type=int, default=None, help="interleaved runs per HS problem / chain size "
                    "(median reported; default 5, --quick 3)")
    ap.add_argument("--poisson", type=int, nargs="*", default=None,
                    help="Poisson control grid sizes N (default 64 128 224; --quick 64; none: skip)")
    ap.add_argument("--convex", type=int, nargs="*", default=None,
                    help="cvxpy vs ipopt on convex smooth models and dense QPs of these sizes (default 5 20 100 500; "
                    "none: skip)")
    ap.add_argument("--only-convex", action="store_true", help="run the convex comparison alone")
    args = ap.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 5)
    names = sorted(p.stem for p in (ROOT / "problems" / "hs").glob("hs*.py"))
    if args.quick:
        names = ["hs006", "hs035", "hs040", "hs071", "hs077", "hs078"]
    convex = args.convex if args.convex is not None else ([5, 20] if args.quick else [5, 20, 100, 500])
    if args.only_convex:
        return bench_convex(convex, repeat)
    if not args.skip_hs:
        bench_hs(names, repeat, args.alsketch)
    bench_chain(args.sizes or ([50, 500] if args.quick else [50, 500, 2000]), args.alsketch, repeat)
    bench_resolve([500] if args.quick else [500, 2000])
    poisson = args.poisson if args.poisson is not None else ([64] if args.quick else [64, 128, 224])
    if poisson:
        bench_poisson(poisson)
    if convex:
        bench_convex(convex, repeat)


if __name__ == "__main__":
    main()
