"""Bilevel benchmark: the default ("auto" -> exact hyper-objective method, no tuned steps) vs tuned penalty,
implicit and unrolled differentiation, same run.

Two problems (optdsl.solvers.bilevel.testing):
* synthetic: n lower-level variables (default 1e5, --full 1e6), m = 10 group log-regularizations; validation
  loss F(x) = f(x, y*(x)) in closed form; target F <= F* + 1e-2 (F(x0) - F*) (float64).
* hyper-cleaning: per-example weights on sklearn digits (50% corrupted labels); validation loss evaluated at the
  method's lower-level iterate that tracks argmin g (y for implicit/unrolled, z for penalty); target = 90% of
  the improvement a reference implicit run reaches.
Each (problem, method) runs in a fresh subprocess so peak memory (ru_maxrss growth over the post-setup
baseline, VmHWM after a reset, or torch.cuda.max_memory_allocated on GPU) is its own. Prints a table with ratios to implicit.

    OMP_NUM_THREADS=1 python benchmarks/bench_bilevel.py   # n = 1e5, ~1 min
    (on a shared 2-core box, 2 intra-op threads made every run 10-50x slower and the timings noisy)
    OMP_NUM_THREADS=1 python benchmarks/bench_bilevel.py --full   # n = 1e6, ~3 min
    OMP_NUM_THREADS=1 python benchmarks/bench_bilevel.py --quick  # n = 1e4 / 300 training examples
    python benchmarks/bench_bilevel.py --device cuda
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0   # kB
    return float("nan")


def _reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM (peak RSS), so the solve's own peak can be read."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


METHODS = {
    # name: (method, options); "defaults" runs with no step settings at all (the scale-free default chain)
    "defaults": ("auto", {}),
    "penalty-T10": ("penalty", {"sigma": 1e-3, "inner_steps": 10}),
    "penalty-T5": ("penalty", {"sigma": 1e-3, "inner_steps": 5}),  # the default inner_steps
    "implicit-cg": ("implicit", {"inner_steps": 10, "linear_solver": "cg", "max_linear_iter": 10}),
    "unrolled-K10": ("unrolled", {"inner_steps": 10}),
    "unrolled-K50": ("unrolled", {"inner_steps": 50}),
}


def worker(problem: str, name: str, n: int, device: str, target: float, max_time: float) -> dict:
    from optdsl.solvers import bilevel as B
    from optdsl.solvers.bilevel import testing as T
    torch.manual_seed(0)
    method, opts = METHODS[name]
    if problem == "synthetic":
        P = T.synthetic_large(n=n, m=10, device=device)
        F = P.extras["F"]
        # x clamped to [-4, 2] keeps L_g <= 1.5 + e^2 < 1/lr_y (the inner steps stay stable)
        opts = {"bounds_x": ([-4.0], [2.0])} if method == "auto" else \
            {**opts, "lr_x": 60.0, "lr_y": 0.2, "proj_x": lambda x: x.clamp(-4.0, 2.0)}
        evaluate = lambda info: F(info["x"])
    else:
        P = T.hyper_cleaning(n_train=n, n_val=300, corrupt=0.5, device=device)
        opts = {} if method == "auto" else {**opts, "lr_x": 100.0, "lr_y": 1.0, "sigma": 0.1} \
            if method == "penalty" else {**opts, "lr_x": 100.0, "lr_y": 1.0}
        f = P.f
        evaluate = lambda info: float(f(info["x"], info["z"] if "z" in info else info["y"]))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2**20
    import gc
    gc.collect()
    base_rss = _status_mb("VmRSS")
    _reset_peak()
    state = {"hit": None, "val": None, "t0": None, "c0": None}

    def cb(info):
        val = evaluate(info)
        state["val"] = val
        if val <= target and state["hit"] is None:
            state["hit"] = (time.perf_counter() - state["t0"], info["iteration"] + 1,
                            time.process_time() - state["c0"])
            return False
        return None
    state["t0"], state["c0"] = time.perf_counter(), time.process_time()
    r = B.solve(P.f, P.g, P.x0, P.y0, method=method, max_iter=100000, time_limit=max_time, callback=cb,
                certify_gap=False, **opts)
    wall = time.perf_counter() - state["t0"]
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20 - base
    else:
        peak = _status_mb("VmHWM") - base_rss
    out = {"time": state["hit"][0] if state["hit"] else float("nan"),
           "cpu": state["hit"][2] if state["hit"] else float("nan"), "iters": state["hit"][1] if state["hit"]
           else r.iterations, "reached": state["hit"] is not None, "val": state["val"], "peak_mb": peak,
           "wall": wall, "status": r.status.value}
    if problem == "cleaning":
        x, y = r.x
        out["test_acc"] = P.extras["accuracy"](r.extras["z"] if "z" in r.extras else y, "test")
    return out


def run_sub(problem, name, n, device, target, max_time):
    cmd = [sys.executable, __file__, "--worker", problem, name, str(n), device, repr(target), str(max_time)]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr else "failed"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def targets(problem, n, device):
    from optdsl.solvers import bilevel as B
    from optdsl.solvers.bilevel import testing as T
    if problem == "synthetic":
        P = T.synthetic_large(n=n, m=10, device=device)
        F0, Fs = P.extras["F"](P.x0), P.F_star
        return Fs + 1e-2 * (F0 - Fs), {"F(x0)": F0, "F*": Fs}
    P = T.hyper_cleaning(n_train=n, n_val=300, corrupt=0.5, device=device)
    base = float(P.f(P.x0, B.lower_level_gap(P.g, P.x0, P.y0, max_steps=200).z))
    r = B.solve(P.f, P.g, P.x0, P.y0, method="implicit", lr_x=100.0, lr_y=1.0, inner_steps=10,
                max_linear_iter=10, max_iter=60, certify_gap=False)
    ref = float(P.f(r.x[0], r.x[1]))
    return base - 0.9 * (base - ref), {"val(uniform weights)": base, "val(ref implicit, 60 it)": ref}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="n = 1e6 lower-level variables")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="n = 1e4 and 300 training examples, 20 s per run")
    ap.add_argument("--max-time", type=float, default=60.0, help="per-run time limit (s)")
    a = ap.parse_args()
    n_syn = 1_000_000 if a.full else 10_000 if a.quick else 100_000
    n_clean = 300 if a.quick else 1000
    if a.quick:
        a.max_time = min(a.max_time, 20.0)
    print(f"# bilevel benchmark  device={a.device}  torch threads={torch.get_num_threads()}  "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    for problem, n in (("synthetic", n_syn), ("cleaning", n_clean)):
        target, info = targets(problem, n, a.device)
        print(f"\n## {problem}: n_lower = {n if problem == 'synthetic' else 650} "
              f"(leader dim {10 if problem == 'synthetic' else n}); target val loss {target:.6g}; "
              + ", ".join(f"{k} {v:.6g}" for k, v in info.items()))
        rows = {name: run_sub(problem, name, n, a.device, target, a.max_time) for name in METHODS}
        ref = rows["implicit-cg"]
        hdr = f"{'method':<14}{'reached':>8}{'iters':>7}{'wall s':>9}{'cpu s':>9}{'x impl':>8}{'peak MB':>9}{'x impl':>8}" + \
              ("  test acc" if problem == "cleaning" else "")
        print(hdr)
        for name, r in rows.items():
            if "error" in r:
                print(f"{name:<14} ERROR {r['error']}")
                continue
            # ratio on process CPU time: wall time on a shared 2-core box swings several-fold between runs
            rt = r["cpu"] / ref["cpu"] if ref.get("reached") and r["reached"] else float("nan")
            rm = r["peak_mb"] / ref["peak_mb"] if ref.get("peak_mb", 0) > 0 else float("nan")
            line = (f"{name:<14}{str(r['reached']):>8}{r['iters']:>7}{r['time']:>9.3f}{r['cpu']:>9.3f}{rt:>8.2f}"
                    f"{r['peak_mb']:>9.1f}{rm:>8.2f}")
            if problem == "cleaning":
                line += f"  {r['test_acc']:.3f}"
            print(line)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _, _, problem, name, n, device, target, max_time = sys.argv
        print(json.dumps(worker(problem, name, int(n), device, float(target), float(max_time))))
    else:
        main()
