"""Data-parallel ZO with torch.distributed (gloo, 2 CPU processes): identical parameters, scalar traffic."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from optdsl.solvers import zo
from optdsl.solvers.zo import distributed as zdist

STEPS, N, LR = 30, 16, 5e-2


def _problem():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).double()
    g = torch.Generator().manual_seed(1)
    X = torch.randn(64, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (64,), generator=g)
    batches = [torch.arange(k * N, (k + 1) * N) % 64 for k in range(STEPS)]
    return net, X, y, batches


def _worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=__import__("datetime").timedelta(seconds=60))
    try:
        net, X, y, batches = _problem()
        local = [zdist.shard(b) for b in batches]          # each worker sees half of every batch
        out = zo.fine_tune(net, lambda m, idx: F.cross_entropy(m(X[idx]), y[idx]), local, steps=STEPS, lr=LR,
                           seed=3, reduce=zdist.allreduce_mean())
        torch.save({"params": [p.detach() for p in net.parameters()], "bytes": out.extras["bytes_per_step"],
                    "status": out.status.value}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not built")
def test_two_gloo_workers_stay_identical_and_match_single_process(tmp_path):
    ctx = mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=False,
                             start_method="spawn")
    for p in ctx.processes:
        p.join(timeout=90)
    alive = [p for p in ctx.processes if p.is_alive()]
    for p in alive:
        p.terminate()
    assert not alive, "distributed workers did not finish within 90 s"
    assert all(p.exitcode == 0 for p in ctx.processes)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for a, b in zip(r0["params"], r1["params"]):
        assert torch.equal(a, b)                           # no tensor was ever sent, yet identical
    net, X, y, batches = _problem()                        # single process, full batches
    zo.fine_tune(net, lambda m, idx: F.cross_entropy(m(X[idx]), y[idx]), batches, steps=STEPS, lr=LR, seed=3)
    for a, p in zip(r0["params"], net.parameters()):
        assert torch.allclose(a, p.detach(), atol=1e-10)
    assert r0["status"] == "ITERATION_LIMIT" and r0["bytes"] == 16 == zdist.bytes_per_step(1)
    n_params = sum(p.numel() for p in net.parameters())
    assert r0["bytes"] < 4 * n_params / 10               # vs a gradient all-reduce of 4·d bytes
    assert zdist.fedkseed_payload_bytes(4096) == 16384 < 18 * 1024
