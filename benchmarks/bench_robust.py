"""Benchmark: CCG (KKT/big-M MILP adversary) vs the full vertex-enumeration extensive form (EF).

Columns: CCG it / CCG s — iterations and seconds of CCG with the MILP adversary; EF s — one solve of the
deterministic equivalent with a recourse copy per vertex; EF/CCG — time ratio (> 1: CCG faster); CCG-enum s —
CCG with the adversary by vertex enumeration (one LP per vertex per iteration), for reference.

Instances: `random_location(n_fac, n_cust, gamma)` — binary facility opening + capacities, shipments as
recourse, demand d̄ + ĝ∘z with z in the budget set ‖z‖∞ ≤ 1, ‖z‖₁ ≤ Γ (C(n_cust, Γ)·2^Γ vertices). The peer is
the deterministic equivalent with one recourse copy per vertex, solved once (cvxpy + HiGHS, same master code).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_robust.py [--quick | --full]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from optdsl.solvers.robust.ccg import ccg, solve_extensive_form  # noqa: E402
from optdsl.solvers.robust.testing import random_location  # noqa: E402

SIZES = [(3, 6, 2), (4, 8, 2), (5, 10, 3), (7, 14, 3)]        # ~4 min on 2 busy cores
FULL = [(3, 6, 2), (4, 8, 2), (5, 10, 3), (6, 12, 3), (7, 14, 3)]  # --full adds 6 x 12 (EF ~1.5-2.5 min alone)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the first three sizes")
    ap.add_argument("--full", action="store_true", help="also the 6 x 12 instance")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sizes = SIZES[:3] if args.quick else (FULL if args.full else SIZES)
    print(f"{'fac x cust':>10} {'Gamma':>5} {'vertices':>8} {'CCG it':>6} {'CCG s':>7} {'EF s':>7} "
          f"{'EF/CCG':>7} {'CCG-enum s':>10} {'CCG obj':>11} {'EF obj':>11} {'rel diff':>9}")
    for nf, nc, gamma in sizes:
        prob = random_location(nf, nc, gamma=gamma, seed=args.seed)
        t = time.perf_counter()
        out = ccg(prob, subproblem="milp", tol=1e-7)
        t_ccg = time.perf_counter() - t
        t = time.perf_counter()
        out_v = ccg(prob, subproblem="vertices", tol=1e-7)  # same loop, adversary by enumeration
        t_ccgv = time.perf_counter() - t
        assert abs(out_v.objective - out.objective) <= 1e-6 * abs(out.objective)
        t = time.perf_counter()
        ef = solve_extensive_form(prob)
        t_ef = time.perf_counter() - t
        nv = len(ef.extras["scenarios"])
        diff = abs(out.objective - ef.objective) / abs(ef.objective)
        print(f"{nf:>4} x {nc:<3} {gamma:>5} {nv:>8} {out.iterations:>6} {t_ccg:>7.2f} {t_ef:>7.2f} "
              f"{t_ef / t_ccg:>7.1f} {t_ccgv:>10.2f} {out.objective:>11.2f} {ef.objective:>11.2f} {diff:>9.1e}"
              + ("" if out.status.value == "OPTIMAL" else f"  CCG {out.status.value}"))


if __name__ == "__main__":
    main()
