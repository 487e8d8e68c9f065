"""Benchmark: per-solve overhead of the torch backends (alsketch, nlp, lbfgs) on the Hock–Schittkowski set.

1. Every problems/hs/*.py, built and solved through ``m.solve(solver=...)`` for alsketch, nlp and lbfgs (lbfgs
   only where the model has no constraints besides bounds), against ``m.solve(solver="ipopt")`` and against the
   same problem written directly in CasADi and solved by IPOPT (bench_nlp's ``casadi_hs``), all in the same
   run, interleaved, the median total time (build + solve) of --repeats repetitions per problem. Ratios are
   backend / ipopt-through-optdsl, medians over the set. Times are CPU times of the process (--wall for
   wall-clock): on a busy shared machine the wall clock mostly measures the wait for a core.
2. ``--profile NAME``: cProfile of NAME through alsketch (default hs035, 3 variables) split into model build,
   dispatch (plan), compile (convexity analysis, flattening), function/gradient/Jacobian evaluations (lowering
   + autograd), Hessian evaluations, linear algebra (Hessian modification, KKT solve), the solver's
   certificates, the backend wrapper (scaling, best-point tracking, saddle check) and the model's result
   (certificates by name). Shares are of the profiled time (cProfile inflates Python-heavy parts).

Measured (2026-12-03, shared 2-core machine, 5 interleaved repetitions, medians over the 24 HS problems):
CPU time, total (build + solve) ratio to m.solve(solver="ipopt"): alsketch 2.47 (5.16 before this work, at
commit 12170ec, in the same kind of run), nlp 1.50 (2.22), ipopt / CasADi direct 1.64; median alsketch total
72.6 ms -> 20.1 ms, nlp 25.3 ms -> 12.6 ms. Wall clock (noisier): alsketch 3.00, nlp 1.67. lbfgs applies to no HS
problem (all have constraints). The largest ratios were on HS35 and HS71 (7.9x, 8.8x), where alsketch took
32-34 iterations to IPOPT's 7-8 (primal barrier); with the primal-dual barrier block and IPOPT's fast mu decrease
they take 11-12 (5.1x, 6.0x), and the median ratio is 2.78-2.85 against an ipopt path that itself got ~20%
faster (later run, same machine: nlp 1.67-1.87, ipopt / CasADi direct 1.26-1.39); HS35 profile
(cProfile, ms per build + solve): f/∇f/c/J 87 -> 10, Hessians 59 -> 4.5, best-point tracking 24 -> 0.7,
loop rest 62 -> 25, dispatch 14 -> 1.3 (the ipopt work on dispatch), solver total 222 -> 48.

Usage:  OMP_NUM_THREADS=1 python benchmarks/bench_torch_overhead.py [--quick] [--repeats R] [--wall] [--profile hs035]
"""
from __future__ import annotations

import argparse
import cProfile
import importlib.util
import pstats
import statistics
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_nlp import casadi_hs  # noqa: E402  (CasADi + IPOPT written directly, from the torch reference)
from optdsl.solvers.testing import hock_schittkowski as hs  # noqa: E402

BACKENDS = ("alsketch", "nlp", "lbfgs", "ipopt")


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CLOCK = time.process_time  # CPU time of this process: on a shared machine, waiting for a core is not ours


def run_once(build, solver):
    t = CLOCK()
    m = build()
    r = m.solve(solver=solver)
    return {"t": CLOCK() - t, "f": r.objective, "it": r.iterations, "status": r.status.name}


def applicable(build, solver):
    if solver != "lbfgs":
        return True
    return not build().to_problem().constraints


def bench(names, repeats):
    gallery = {p.stem: _load(p) for p in sorted((ROOT / "problems" / "hs").glob("hs*.py"))}
    ratios = {b: [] for b in BACKENDS if b != "ipopt"}
    direct_ratio = []
    print(f"{'':8s}" + "".join(f"{b + ' ms':>13s}" for b in BACKENDS) + f"{'casadi ms':>11s}"
          + "".join(f"{b[:5] + '/ip':>9s}" for b in ratios) + "   iterations (al, nlp, ip)")
    for name in names:
        mod, p = gallery[name], hs.get(int(name[2:]))
        use = [b for b in BACKENDS if applicable(mod.build, b)]
        times = {b: [] for b in use}
        last = {}
        direct = []
        for b in use:  # warm-up (imports, first-call caches)
            run_once(mod.build, b)
        for _ in range(repeats):  # interleaved: machine load drifts alike for all
            for b in use:
                last[b] = run_once(mod.build, b)
                times[b].append(last[b]["t"])
            t = CLOCK()
            casadi_hs(p)
            direct.append(CLOCK() - t)
        med = {b: statistics.median(v) for b, v in times.items()}
        ip = med["ipopt"]
        row = f"{name:8s}" + "".join(f"{1e3 * med[b]:13.1f}" if b in med else f"{'-':>13s}" for b in BACKENDS)
        row += f"{1e3 * statistics.median(direct):11.1f}"
        for b in ratios:
            if b in med:
                ratios[b].append(med[b] / ip)
                row += f"{med[b] / ip:9.2f}"
            else:
                row += f"{'-':>9s}"
        direct_ratio.append(ip / statistics.median(direct))
        row += "   " + ", ".join(str(last[b]["it"]) if b in last else "-" for b in ("alsketch", "nlp", "ipopt"))
        bad = [f"{b}:{last[b]['status']}" for b in last if last[b]["status"] not in ("OPTIMAL", "LOCALLY_OPTIMAL")]
        print(row + (f"   ({', '.join(bad)})" if bad else ""), flush=True)
    print(f"\nmedian total-time ratio to m.solve(solver='ipopt') over {len(names)} HS problems "
          f"(median of {repeats} interleaved repetitions each):")
    for b, v in ratios.items():
        if v:
            print(f"  {b:9s} {statistics.median(v):6.2f}  (over {len(v)} problems)" + ("  target <= 3" if b == "alsketch" else ""))
    print(f"  ipopt / CasADi-direct: {statistics.median(direct_ratio):6.2f}")


# --- profile split ------------------------------------------------------------------------------------------

# (label, (file suffix, function name)) -- cumulative times, nested parts subtracted below
PARTS = [
    ("model build", ("", "build")),
    ("dispatch (plan)", ("optdsl/model.py", "plan")),
    ("model.solve total", ("optdsl/model.py", "solve")),
    ("backend.solve total", ("optdsl/backends/nlp_backend.py", "solve")),
    ("solver total", ("solvers/alsketch.py", "minimize")),
    ("f/grad/c/J evaluations", ("solvers/alsketch.py", "eval")),
    ("Hessian evaluations", ("solvers/alsketch.py", "hess")),
    ("Hessian modification", ("solvers/alsketch.py", "_modify_hessian")),
    ("rank check", ("solvers/alsketch.py", "_rank_deficient")),
    ("KKT solve", ("solvers/alsketch.py", "_linear_solve")),
    ("solver certificates", ("solvers/alsketch.py", "_certificates")),
    ("best-point tracking", ("optdsl/backends/flatten.py", "offer")),
    ("objective scale", ("optdsl/backends/flatten.py", "objective_scale")),
    ("constraint row scales", ("optdsl/backends/flatten.py", "row_scales")),
    ("CasADi derivative build", ("optdsl/backends/casadi_derivatives.py", "__init__")),
    ("saddle check", ("optdsl/backends/nlp_backend.py", "_escape_saddle")),
    ("result (certificates by name)", ("optdsl/model.py", "_result")),
    ("lowering walk (inside evaluations)", ("optdsl/lower/_walk.py", "lower")),
    ("autograd backward", ("~", "<method 'run_backward' of 'torch._C._EngineBase' objects>")),
]


def profile(name, solver, reps=20):
    mod = _load(ROOT / "problems" / "hs" / f"{name}.py")
    for _ in range(3):
        mod.build().solve(solver=solver)
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(reps):
        r = mod.build().solve(solver=solver)
    pr.disable()
    stats = pstats.Stats(pr).stats
    got = {}
    for label, (file, fn) in PARTS:
        ct = 0.0
        for (f, _, func), (_, _, _, cum, _) in stats.items():
            if func == fn and (f.endswith(file) if file not in ("", "~") else (file == "~" or "problems/hs" in f)):
                ct += cum
        got[label] = 1e3 * ct / reps
    print(f"\n== profile: {name} through {solver}, {r.iterations} iterations, counts {r.counts} ==")
    print(f"(ms per build+solve under cProfile, mean of {reps})")
    for label, _ in PARTS:
        print(f"  {label:38s} {got[label]:8.2f}")
    inside = ("f/grad/c/J evaluations", "Hessian evaluations", "Hessian modification", "rank check", "KKT solve",
              "solver certificates")
    print(f"  {'solver loop, the rest (barrier terms, merit, line search)':38s} "
          f"{got['solver total'] - sum(got[k] for k in inside):8.2f}")
    return got


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="6 HS problems, 3 repetitions")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--profile", default=None, help="profile this HS problem through alsketch (e.g. hs035)")
    ap.add_argument("--solver", default="alsketch", help="backend for --profile")
    ap.add_argument("--wall", action="store_true", help="wall-clock instead of CPU time")
    args = ap.parse_args(argv)
    if args.wall:
        global CLOCK
        CLOCK = time.perf_counter
    if args.profile:
        profile(args.profile, args.solver)
        return
    names = sorted(p.stem for p in (ROOT / "problems" / "hs").glob("hs*.py"))
    if args.quick:
        names = ["hs006", "hs035", "hs040", "hs071", "hs077", "hs078"]
    bench(names, args.repeats or (3 if args.quick else 5))


if __name__ == "__main__":
    main()
