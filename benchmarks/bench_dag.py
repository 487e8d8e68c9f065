"""DAG learning benchmark: optdsl.solvers.dag vs dagma and gcastle's NOTEARS, same data and seeds.

Linear-Gaussian SEM, n = 1000, weights ±U[0.5, 2], graphs ER2 and SF4; metrics SHD / TPR / FDR / time.
Default: d = 20. --full: d = 20, 50, 100 (issue 9). Peers are skipped cleanly when not installed; every
run (ours and the peers') gets a wall-clock cap (--peer-timeout, in a subprocess) so a slow contender
cannot stall the table; a capped run prints "-" with the note "timeout > T s". Time is measured inside the
subprocess around the call only. Run with OMP_NUM_THREADS=1 on a shared machine (the same setting applies
to every contender).

    python benchmarks/bench_dag.py [--full | --d 20,50,100] [--seeds 1] [--methods topo,logdet+topo]
                                   [--peer-timeout 300] [--no-peers]
"""
from __future__ import annotations

import argparse
import os
import multiprocessing as mp
import queue
import time
import warnings

import numpy as np

from optdsl.solvers import dag
from optdsl.solvers.dag import data


def _ours(method, refine):
    def run(X):
        return dag.learn(X, method=method, refine=refine).x.numpy()
    return run


def _dagma(X):
    from dagma.linear import DagmaLinear
    return DagmaLinear(loss_type="l2", verbose=False).fit(X, lambda1=0.03)


def _gcastle(X):
    import logging
    logging.disable(logging.INFO)
    from castle.algorithms import Notears
    nt = Notears(lambda1=0.1, w_threshold=0.3)
    nt.learn(X)
    return np.asarray(nt.causal_matrix)


PEERS = {"dagma (lambda=0.03)": ("dagma", _dagma), "gcastle NOTEARS": ("castle", _gcastle)}


def _child(fn, X, q):
    warnings.filterwarnings("ignore")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)        # peers' progress bars; errors come back via q
    t = time.perf_counter()
    try:
        B = fn(X)
        q.put((B, time.perf_counter() - t, None))
    except Exception as e:  # report, do not crash the table
        q.put((None, time.perf_counter() - t, f"{type(e).__name__}: {e}"))


def timed(fn, X, timeout):
    """Run fn(X) in a subprocess with a wall-clock cap; returns (B, seconds, error).

    The result is read from the queue BEFORE joining: a child blocks on exit until its queued data is
    flushed into the pipe, so joining first deadlocks once the result exceeds the pipe buffer (64 KiB,
    i.e. a d = 100 float64 matrix) — which is what made every contender "time out" at d = 100.
    """
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn, X, q))
    p.start()
    try:
        res = q.get(timeout=timeout)
        p.join(5)
    except queue.Empty:
        res = (None, timeout, f"timeout > {timeout:.0f} s" if p.is_alive() else "crashed")
    if p.is_alive():
        p.terminate()
        p.join()
    return res


def available(mod):
    try:
        __import__(mod)
        return True
    except Exception:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="d = 20, 50, 100 (default: d = 20)")
    ap.add_argument("--d", type=str, default=None, help="comma-separated sizes, overrides --full")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--methods", type=str, default="topo,logdet+topo",
                    help="ours: any of topo, logdet, logdet+topo, notears, colide")
    ap.add_argument("--peer-timeout", type=float, default=600.0)
    ap.add_argument("--no-peers", action="store_true")
    a = ap.parse_args()
    sizes = [int(v) for v in a.d.split(",")] if a.d else ([20, 50, 100] if a.full else [20])
    contenders = {}
    for m in a.methods.split(","):
        base, refine = m.split("+")[0], m.endswith("+topo")
        contenders[f"optdsl {m}"] = _ours(base, refine)
    if not a.no_peers:
        for name, (mod, fn) in PEERS.items():
            if available(mod):
                contenders[name] = fn
            else:
                print(f"# peer {name} skipped: python package '{mod}' is not installed")
    print(f"{'graph':<6}{'d':>4}  {'method':<22}{'SHD':>7}{'TPR':>7}{'FDR':>7}{'time s':>9}  note")
    for d in sizes:
        for gt, k in (("ER", 2), ("SF", 4)):
            rows = {name: [] for name in contenders}
            for seed in range(a.seeds):
                rng = np.random.default_rng(1000 * d + 10 * k + seed)
                B = data.simulate_dag(d, k * d, gt, rng)
                W = data.simulate_parameter(B, seed=rng)
                X = data.simulate_linear_sem(W, 1000, "gauss", seed=rng)
                for name, fn in contenders.items():
                    Best, sec, err = timed(fn, X, a.peer_timeout)
                    if Best is None:
                        rows[name].append((None, sec, err))
                        continue
                    if not dag.is_dag(Best):
                        err = "returned a cyclic graph"
                        rows[name].append((None, sec, err))
                        continue
                    rows[name].append((dag.count_accuracy(B, Best), sec, ""))
            for name, rs in rows.items():
                ok = [r for r in rs if r[0] is not None]
                note = "; ".join(sorted({r[2] for r in rs if r[2]}))
                if not ok:
                    print(f"{gt}{k:<5}{d:>4}  {name:<22}{'-':>7}{'-':>7}{'-':>7}{'-':>9}  {note}")
                    continue
                shd = np.mean([r[0]["shd"] for r in ok])
                tpr = np.mean([r[0]["tpr"] for r in ok])
                fdr = np.mean([r[0]["fdr"] for r in ok])
                sec = np.mean([r[1] for r in ok])
                print(f"{gt}{k:<5}{d:>4}  {name:<22}{shd:>7.1f}{tpr:>7.2f}{fdr:>7.2f}{sec:>9.2f}  {note}",
                      flush=True)


if __name__ == "__main__":
    main()
