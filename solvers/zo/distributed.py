"""Data-parallel ZO over ``torch.distributed`` and FedKSeed-style seed pools.

Data-parallel MeZO: every worker holds the full parameters and the same run seed. Per step each worker
evaluates f₊ and f₋ on its shard of the batch, one all-reduce averages the two scalars, and every worker
applies the *same* seeded update θ ← θ − η·p·z(s). Parameters therefore stay bitwise identical across
workers without sending any tensor: 2 scalars (16 bytes in float64) per query per step, against 4·d bytes
for a gradient all-reduce. With equal shard sizes the averaged losses equal the full-batch losses, so the
run matches a single process on the full batch (up to float summation order).

FedKSeed (Qin et al., ICML 2024): seeds come from a fixed pool of K, so a whole training history is the
list of (pool index, scalar) pairs; ``replay`` rebuilds the parameters from it (what a server or a late
client does), and ``fedkseed_payload_bytes`` gives the per-round traffic (K float32 accumulators).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.distributed as dist

from ..oracles.zo_noise import add_noise_, derive_seed
from .step import pool_seed


def allreduce_mean(group=None):
    """A ``reduce`` callback for ``fine_tune``/``ZOStepper``: average loss scalars across the group."""
    def reduce(vals):
        t = torch.tensor(vals, dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)
        return (t / dist.get_world_size(group)).tolist()
    return reduce


def bytes_per_step(q: int = 1) -> int:
    """Bytes each worker sends per data-parallel ZO step: 2 float64 scalars per query."""
    return 16 * q


def fedkseed_payload_bytes(K: int = 4096) -> int:
    """FedKSeed per-round payload: K float32 accumulated scalars (16,384 bytes for K = 4096)."""
    return 4 * K


def replay(params: Sequence[torch.Tensor], indices: Sequence[int], projs: Sequence[float], *, lr: float,
           seed: int, kind: str = "gaussian") -> None:
    """Apply θ ← θ − lr·Σ_k p_k z(pool[i_k]) in place (SGD, no weight decay, constant lr), seed by seed.

    Accumulates scalars per pool entry first, so the cost is one noise sweep per *distinct* seed (≤ K).
    """
    acc: dict[int, float] = {}
    for i, p in zip(indices, projs):
        acc[int(i)] = acc.get(int(i), 0.0) + float(p)
    with torch.no_grad():
        for i, c in sorted(acc.items()):
            s = derive_seed(pool_seed(seed, i), 0)  # query 0 of that pool entry
            for j, t in enumerate(params):
                add_noise_(t, derive_seed(s, j), kind, -lr * c)


def shard(batch, rank: Optional[int] = None, world: Optional[int] = None):
    """This worker's contiguous slice of a tensor batch (or tuple of tensors) along dim 0."""
    rank = dist.get_rank() if rank is None else rank
    world = dist.get_world_size() if world is None else world
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard(b, rank, world) for b in batch)
    n = batch.shape[0]
    if n % world:
        raise ValueError(f"batch of {n} rows does not split evenly over {world} workers")
    m = n // world
    return batch[rank * m:(rank + 1) * m]
