"""Benchmark: SOR with a bandit-tuned ω over sequences of linear systems vs fixed ω and scipy CG.

Measures, in one run and on the same systems:
  1. the peer setting of REFERENCES.md (32x32 grid, 20 shifts in [0, 0.5], tol 1e-8): Gauss–Seidel total,
     best fixed ω total, per-instance best total (brute force over the ω grid);
  2. a 100-system shifted-Laplacian sequence (random shifts in [0, 0.5], context = shift, x0 = 0): totals of
     each tuner (mean ± std over seeds, real solves) vs best fixed ω in hindsight, ω = 1, the per-instance
     optimum, and scipy CG iterations (same tolerance);
  3. a 100-step implicit heat-equation run (warm starts from the previous step): same comparison.
(``--T`` changes the length of 2 and 3.) The Young model tuner is deterministic: its ± is 0.
The Young tuner's hyperparameters were chosen on other sequences (see docs/backends/sor.md); SmoothCB's eta was
chosen partly on sequence 2 itself.

Usage:  OMP_NUM_THREADS=1 python benchmarks/bench_sor.py [--m 32] [--T 100] [--seeds 5] [--quick]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse.linalg as spla
import torch

from optdsl.solvers.linalg import bandit, sor
from optdsl.solvers.linalg.sequences import heat_equation_sequence, shifted_laplacian_sequence

BRUTE_GRID = [round(w, 2) for w in np.arange(1.0, 1.951, 0.05)]  # 20 arms, the paper's range


def cost_table(seq, grid, tol, warm):
    """cost[t, j] = iterations of SOR(grid[j]) on system t (warm: x0 = previous solution of the same ω)."""
    C = np.zeros((len(seq), len(grid)), dtype=int)
    for j, w in enumerate(grid):
        x = None
        for t, s in enumerate(seq):
            out = sor.solve(s.A, s.b, omega=w, tol=tol, x0=x if warm else None)
            C[t, j] = out.iterations
            x = out.x
    return C


def cg_total(seq, tol, warm):
    total, x, t0 = 0, None, time.perf_counter()
    for s in seq:
        it = [0]
        x, info = spla.cg(s.A, s.b, x0=x if warm else None, rtol=tol, maxiter=100 * s.A.shape[0],
                          callback=lambda _: it.__setitem__(0, it[0] + 1))
        total += it[0]
    return total, time.perf_counter() - t0


def run_tuner(seq, spec, tol, warm, seed):
    grid, tuner, opts = spec
    solver = bandit.SequenceSolver(grid, tuner, tol=tol, warm_start=warm, seed=seed, **opts)
    t0 = time.perf_counter()
    total = sum(solver.solve(s.A, s.b, context=s.context).iterations for s in seq)
    return total, time.perf_counter() - t0


def compare(title, seq, tol, warm, seeds, ctx_range, grids):
    print(f"\n== {title} ==")
    t0 = time.perf_counter()
    C = cost_table(seq, BRUTE_GRID, tol, warm)
    t_brute = time.perf_counter() - t0
    best_j = int(np.argmin(C.sum(0)))
    best_fixed, gs, inst = int(C.sum(0)[best_j]), int(C[:, 0].sum()), int(C.min(1).sum())
    cg, t_cg = cg_total(seq, tol, warm)
    print(f"brute force over {len(BRUTE_GRID)} omegas x {len(seq)} systems: {t_brute:.1f}s")
    print(f"{'policy':44s} {'total iters':>14s} {'/best fixed':>11s} {'GS/it':>7s} {'secs':>7s}")
    row = lambda name, tot, sec="": print(f"{name:44s} {tot:>14s} {float(tot.split()[0]) / best_fixed:11.3f} "
                                          f"{gs / float(tot.split()[0]):7.2f} {sec:>7s}")
    row("Gauss-Seidel (omega = 1)", f"{gs}")
    row(f"best fixed omega in hindsight ({BRUTE_GRID[best_j]})", f"{best_fixed}")
    row("per-instance best omega (oracle)", f"{inst}")
    row("scipy CG (iterations; 1 matvec each)", f"{cg}", f"{t_cg:.2f}")
    results = {}
    for name, spec in grids.items():
        if spec[1] in ("contextual", "chebcb", "smooth-ctx", "young-ctx"):
            spec = (spec[0], spec[1].replace("-ctx", ""), {**spec[2], "context_range": ctx_range})
        tots, secs = zip(*[run_tuner(seq, spec, tol, warm, s) for s in range(seeds)])
        results[name] = np.mean(tots)
        row(name, f"{np.mean(tots):.0f} ± {np.std(tots):.0f}", f"{np.mean(secs):.2f}")
    return C, best_fixed, gs, inst, results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--m", type=int, default=32, help="interior grid size (n = m^2)")
    ap.add_argument("--T", type=int, default=100, help="systems per sequence")
    ap.add_argument("--seeds", type=int, default=5, help="tuner seeds (mean ± std reported)")
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--quick", action="store_true", help="m=16, T=40, 2 seeds (smoke run)")
    a = ap.parse_args()
    if a.quick:
        a.m, a.T, a.seeds = 16, 40, 2
    torch.set_num_threads(1)
    print(f"SOR bandit benchmark: m={a.m} (n={a.m * a.m}), T={a.T}, tol={a.tol:g}, seeds={a.seeds}, "
          f"torch {torch.__version__}, 1 thread")

    # 1. peer setting
    peer = shifted_laplacian_sequence(20, 32, shifts="linspace", low=0.0, high=0.5, seed=0)
    C = cost_table(peer, BRUTE_GRID, a.tol, warm=False)
    j = int(np.argmin(C.sum(0)))
    print("\n== peer setting: 32x32, 20 shifts linspace [0, 0.5], tol 1e-8 (REFERENCES: 4,800 / 1,659 @1.65 / 1,028) ==")
    print(f"Gauss-Seidel {C[:, 0].sum()}, best fixed omega = {BRUTE_GRID[j]} {C.sum(0)[j]}, "
          f"per-instance best {C.min(1).sum()}")

    g20 = bandit.default_omegas(20, 1.0, 1.95)
    g12 = bandit.default_omegas(12, 1.3, 1.95)
    g39 = bandit.default_omegas(39, 1.0, 1.95)   # the model-based tuner pays nothing per arm
    variants = {
        "Tsallis-INF, 20 omegas in [1, 1.95]": (g20, "tsallis", {}),
        "Tsallis-INF, 12 omegas in [1.3, 1.95]": (g12, "tsallis", {}),
        "Tsallis-INF, 12 in [1.3,1.95], cap 2x median": (g12, "tsallis", {"cap_factor": 2.0}),
        "Exp3, 12 omegas in [1.3, 1.95]": (g12, "exp3", {}),
        "contextual (binned Tsallis-INF, 3 bins), 12": (g12, "contextual", {"n_bins": 3}),
        "contextual ChebCB (degree 1), 12": (g12, "chebcb", {"degree": 1, "horizon": a.T}),
        "SmoothCB (extra), no context, 12": (g12, "smooth", {}),
        "SmoothCB (extra), contextual, 12": (g12, "smooth-ctx", {}),
        "Young model (extra), no context, 39": (g39, "young", {}),
        "Young model (extra), contextual, 39": (g39, "young-ctx", {}),
    }
    # 2. shifted Laplacians with context = shift (best omega varies with the context)
    seq = shifted_laplacian_sequence(a.T, a.m, shifts="uniform", low=0.0, high=0.5, seed=1)
    compare(f"{a.T} shifted Laplacians, c ~ U[0, 0.5], x0 = 0, context = c", seq, a.tol, False, a.seeds,
            (0.0, 0.5), variants)
    # 3. heat equation with time-varying diffusivity, warm starts
    heat = heat_equation_sequence(a.T, a.m, seed=0)
    r = np.array([s.context for s in heat])
    lo, hi = float(np.log10(r.min())), float(np.log10(r.max()))
    for s in heat:  # contextual tuners see log10 of the mesh ratio
        s.context = float(np.log10(s.context))
    hv = {k: (v[0] if "39" in k else bandit.default_omegas(12, 1.0, 1.95),) + v[1:]
          for k, v in variants.items() if "20" not in k}
    hv = {k.replace("[1.3, 1.95]", "[1, 1.95]").replace("[1.3,1.95]", "[1,1.95]"): v for k, v in hv.items()}
    compare(f"{a.T} implicit heat steps, r = dt*kappa/h^2 in [{r.min():.3g}, {r.max():.3g}], warm start, "
            f"context = log10 r", heat, a.tol, True, a.seeds, (lo, hi), hv)


if __name__ == "__main__":
    main()
