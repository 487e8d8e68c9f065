"""ZO backend benchmark: MeZO-style fine-tuning of a small decoder-only transformer (CPU or CUDA).

Measured in one run, on locally generated token data (no downloads):
  * time of one ZO step / one forward pass (target <= 2.2), for
      - ref    : faithful reference MeZO step (4 noise sweeps: perturb +1, -2, +1, then update)
      - fused  : ZOStepper, restore fused with update (3 sweeps)
      - zo2    : ZO2Runner block-wise dual forward, lazy update (2 sweeps; CPU = offload no-op path)
      - fusedR : fused with Rademacher noise (cheaper to generate; a different, equally valid estimator)
      - zo2R   : zo2 with Rademacher noise
  * speed-up of fused / zo2 over ref (target >= 1.2x) and the max |loss difference| along the same seeds
  * peak memory (resident set, ru_maxrss delta over the post-import baseline, one fresh subprocess per
    mode) of ZO training / inference (target <= 1.15) and / backprop+Adam (target <= 0.35).

    python benchmarks/bench_zo.py [--full] [--device cuda]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

SIZES = {"default": dict(vocab=8192, d_model=512, n_layers=8, n_heads=8, seq_len=64, batch=4),
         "full": dict(vocab=8192, d_model=512, n_layers=8, n_heads=8, seq_len=128, batch=16)}


def build(cfg, device):
    from optdsl.solvers.zo.models import synthetic_tokens, tiny_decoder
    torch.manual_seed(0)
    m = tiny_decoder(cfg["vocab"], cfg["d_model"], cfg["n_layers"], cfg["n_heads"], cfg["seq_len"]).to(device)
    data = synthetic_tokens(cfg["batch"] * 4, cfg["seq_len"], cfg["vocab"], seed=1).to(device)
    batches = [data[i * cfg["batch"]:(i + 1) * cfg["batch"]] for i in range(4)]
    return m, batches


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def make_mode(mode, cfg, device):
    """A fresh model (same init) and a function k -> loss running one iteration of `mode`."""
    from optdsl.solvers.oracles.zo_noise import derive_seed
    from optdsl.solvers.zo import ZOStepper, mezo_reference_step
    from optdsl.solvers.zo.models import lm_loss, logits_loss
    from optdsl.solvers.zo.offload import ZO2Runner
    m, batches = build(cfg, device)
    m.eval()
    lr, eps = 1e-4, 1e-3
    params = list(m.parameters())
    if mode == "forward":
        def it(k):
            with torch.no_grad():
                return float(lm_loss(m, batches[k % 4]))
    elif mode == "ref":
        def it(k):
            b = batches[k % 4]
            return mezo_reference_step(params, lambda: lm_loss(m, b), seed=derive_seed(derive_seed(0, k), 0),
                                       eps=eps, lr=lr)[0]
    elif mode.startswith("fused"):
        st = ZOStepper(list(m.named_parameters()), lr=lr, eps=eps, seed=0,
                       kind="rademacher" if mode == "fusedR" else "gaussian")

        def it(k):
            b = batches[k % 4]
            return st.step(lambda: lm_loss(m, b), k).f_plus[0]
    elif mode.startswith("zo2"):
        runner = ZO2Runner(m.blocks, logits_loss, lr=lr, eps=eps, seed=0, device=device,
                           kind="rademacher" if mode == "zo2R" else "gaussian")

        def it(k):
            b = batches[k % 4]
            return runner.step(b[:, :-1], b, k)[0]
    elif mode == "backprop":
        opt = torch.optim.Adam(m.parameters(), lr=1e-4)
        m.train()

        def it(k):
            opt.zero_grad(set_to_none=True)
            loss = lm_loss(m, batches[k % 4])
            loss.backward()
            opt.step()
            return float(loss)
    else:
        raise ValueError(mode)
    return it


def run_modes(modes, cfg, device, steps):
    """Interleave the modes step by step (round robin), so load from other processes hits all alike.
    Returns {mode: (seconds per step after a warm-up, losses)}."""
    its = {mode: make_mode(mode, cfg, device) for mode in modes}
    out = {mode: ([], []) for mode in modes}
    for k in range(steps + 1):
        for mode, it in its.items():
            sync(device)
            t = time.perf_counter()
            loss = it(k)
            sync(device)
            if k > 0:
                out[mode][0].append(time.perf_counter() - t)
            out[mode][1].append(loss)
    return out


def _status_kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def child(mode, size, device):
    """Subprocess entry: peak resident memory (MiB) of `mode` above the post-import resident set."""
    cfg = SIZES[size]
    import optdsl.solvers.zo  # noqa: F401  (imports before the baseline)
    import optdsl.solvers.zo.models  # noqa: F401
    try:  # reset the kernel's peak-RSS mark (VmHWM) so import-time transients do not count
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        base, read_peak = _status_kib("VmRSS"), (lambda: _status_kib("VmHWM"))
    except OSError:  # not Linux: ru_maxrss (KiB on Linux, bytes on macOS) is the best we have
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        read_peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # noqa: E731
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    run_modes([mode], cfg, device, steps=2)
    res = {"rss_mib": (read_peak() - base) / 1024}
    if device.startswith("cuda"):
        res["cuda_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
    print(json.dumps(res))


def memory(mode, size, device):
    # Large blocks always via mmap, so freed tensors go back to the OS and the peak RSS reflects live
    # tensors rather than glibc heap fragmentation (same setting for every mode).
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"), MALLOC_MMAP_THRESHOLD_="65536")
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--size", size, "--device", device],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="batch 16 x 128 tokens (the issue's size)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--child")
    ap.add_argument("--size", default="default")
    a = ap.parse_args()
    if a.child:
        return child(a.child, a.size, a.device)
    size = "full" if a.full else "default"
    cfg = SIZES[size]
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    m, _ = build(cfg, a.device)
    n = sum(p.numel() for p in m.parameters())
    del m
    print(f"# ZO benchmark: decoder-only transformer, {n / 1e6:.1f}M params, batch {cfg['batch']} x "
          f"{cfg['seq_len']} tokens, device {a.device}, {torch.get_num_threads()} threads")
    modes = ["forward", "ref", "fused", "zo2", "fusedR", "zo2R"]
    res = run_modes(modes, cfg, a.device, a.steps)
    med = {k: min(v[0]) for k, v in res.items()}   # least-disturbed step: the machine is shared
    F = med["forward"]
    print("# timings: modes interleaved round robin, min over steps after one warm-up")
    print(f"\n{'mode':<8} {'s/step':>8} {'x forward':>10} {'ref/mode':>9}  max|loss - ref loss| (same seeds)")
    for mode in modes:
        dl = max(abs(x - y) for x, y in zip(res[mode][1], res["ref"][1])) if mode != "forward" else float("nan")
        print(f"{mode:<8} {med[mode]:8.3f} {med[mode] / F:10.2f} {med['ref'] / med[mode]:9.2f}  {dl:.2e}")
    print("targets: ZO step / forward <= 2.2; fused vs ref >= 1.2x; *R = Rademacher noise (another estimator,")
    print("so its loss curve differs from ref's Gaussian one; fusedR and zo2R agree with each other)")
    print("\n# peak memory: kernel peak RSS (VmHWM, reset after imports) minus the post-import RSS, one fresh")
    print("# subprocess per mode, 2 steps + warm-up; includes weights, activations, noise, optimizer state (MiB)")
    mem = {mode: memory(mode, size, a.device) for mode in ["forward", "ref", "fused", "zo2", "zo2R", "backprop"]}
    key = "cuda_mib" if a.device.startswith("cuda") else "rss_mib"
    print(f"{'mode':<9} {'MiB':>8} {'/ inference':>12} {'/ backprop+Adam':>16}")
    for mode, r in mem.items():
        print(f"{mode:<9} {r[key]:8.1f} {r[key] / mem['forward'][key]:12.2f} {r[key] / mem['backprop'][key]:16.2f}")
    print(f"weights alone: {4 * n / 2 ** 20:.1f} MiB; targets: ZO / inference <= 1.15, ZO / backprop+Adam <= 0.35")


if __name__ == "__main__":
    main()
