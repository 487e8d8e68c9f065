"""Sparse ZO perturbations (Sparse-MeZO; Liu et al., 2024) and random gradient sparsity (ZO-Bench).

Sparse-MeZO perturbs and updates only *small-magnitude* weights: per tensor l a threshold h_l = the
s-quantile of |w_l| (s = sparsity target, the fraction kept is s... here ``keep`` = fraction perturbed) and
mask m_l = 1[|w_l| <= h_l]; then z ← m ⊙ z in every perturb/update sweep.

Memory: thresholds are one scalar per tensor. The mask must be *identical* in all sweeps of a step, but after
the +εz sweep the weights moved, so recomputing 1[|w| <= h] from perturbed weights can flip entries near h.
We therefore compute the mask once per step from the unperturbed weights and keep it bit-packed (1 bit per
weight, W/32 of fp32 weight memory) for the duration of the step, instead of a bool/float mask at parameter
size. For flat black-box problems the point is not perturbed in place and the mask is recomputed exactly.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .zo_noise import pack_mask

_SAMPLE = 1_000_000  # quantiles on a subsample for large tensors (ZO-Bench does the same with 1e7)


def magnitude_thresholds(params: Sequence[torch.Tensor], keep: float) -> list[float]:
    """Per-tensor thresholds h_l so that about ``keep`` of each tensor's entries satisfy |w| <= h_l."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep (fraction of weights perturbed) must be in (0, 1], got {keep}")
    out = []
    for p in params:
        a = p.detach().abs().reshape(-1)
        if a.numel() > _SAMPLE:
            g = torch.Generator(device=a.device).manual_seed(0)
            a = a[torch.randint(0, a.numel(), (_SAMPLE,), generator=g, device=a.device)]
        k = max(1, min(a.numel(), int(round(keep * a.numel()))))
        out.append(float(a.float().kthvalue(k).values) if keep < 1.0 else float("inf"))
    return out


def magnitude_masks(params: Sequence[torch.Tensor], thresholds: Sequence[float], packed: bool = True) -> list:
    """Masks 1[|w| <= h] per tensor, bit-packed as (uint8 tensor, shape) pairs unless ``packed=False``."""
    out = []
    for p, h in zip(params, thresholds):
        m = p.detach().abs() <= h
        out.append((pack_mask(m), p.shape) if packed else m)
    return out


def random_masks(params: Sequence[torch.Tensor], keep: float, seed: int) -> list[torch.Tensor]:
    """Seeded random masks keeping a ``keep`` fraction per tensor (ZO-Bench gradient sparsity, fixed keep-rate)."""
    out = []
    for i, p in enumerate(params):
        g = torch.Generator(device=p.device).manual_seed(seed + i)
        out.append(torch.rand(p.shape, generator=g, device=p.device) < keep)
    return out
