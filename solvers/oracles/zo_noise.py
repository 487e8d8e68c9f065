"""Seeded, regenerable perturbation noise for zeroth-order (ZO) estimators.

MeZO (Malladi et al., NeurIPS 2023) never stores a noise vector z of parameter size: it stores one integer
seed per step and regenerates z(s) tensor by tensor whenever it is needed (perturb, perturb back, update).
This module is the single place that turns a seed into noise, so every sweep sees bitwise-identical z:

* ``derive_seed(*keys)`` mixes integers (run seed, step, query, tensor index) with SplitMix64 into a 63-bit
  seed. The seed stream is *stateless*: step k's noise depends only on (run seed, k), so a run resumed from a
  checkpoint at step k replays exactly the noise an uninterrupted run would draw.
* ``noise_like(t, seed, kind)`` returns z with the shape/device/dtype of ``t``: ``"gaussian"`` (N(0, 1)) or
  ``"rademacher"`` (±1, SPSA; cheaper to generate on CPU, E[z zᵀ] = I as for Gaussian).
* ``add_noise_(t, seed, kind, alpha, mask=None)`` does t += alpha·z in place, generating z per tensor
  (transient memory: one tensor's worth).

Rademacher noise is generated from 32 random bits per int64 draw (``random_``), unpacked into sign bits and
OR-ed into the bit pattern of |alpha|, so alpha·z is built directly as ±|alpha| in float32 with one pass:
about 2.5x cheaper than N(0, 1) draws on CPU, where noise generation dominates a MeZO step.

Each tensor gets its own ``torch.Generator`` seeded with ``derive_seed(seed, tensor_index)``, so any tensor's
noise can be regenerated alone (block-wise offload, sparse masks) and in any order.
"""
from __future__ import annotations

from typing import Optional

import torch

NOISE_KINDS = ("gaussian", "rademacher")
_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def derive_seed(*keys: int) -> int:
    """Mix integer keys (run seed, step, query, tensor index, ...) into one 63-bit seed, order-sensitive."""
    h = 0x243F6A8885A308D3
    for k in keys:
        h = _splitmix64(h ^ (int(k) & _MASK64))
    return h >> 1  # torch.Generator.manual_seed wants a value < 2**63


def check_kind(kind: str) -> str:
    """Validate a noise kind name; returns it."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"noise kind must be one of {NOISE_KINDS}, got {kind!r}")
    return kind


_GEN_CACHE: dict = {}


def _generator(device: torch.device, seed: int) -> torch.Generator:
    # One cached generator per device: creating a generator costs more than reseeding it.
    key = (device.type, device.index)
    g = _GEN_CACHE.get(key)
    if g is None:
        g = _GEN_CACHE[key] = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


_SH32: dict = {}


def _signed_scale(shape, seed: int, device, scale: float) -> torch.Tensor:
    """float32 tensor of ±|scale| with independent fair signs (the Rademacher draw of ``seed``)."""
    n = 1
    for d in shape:
        n *= d
    m = (n + 31) // 32
    g = _generator(device, seed)
    words = torch.empty(m, dtype=torch.int64, device=device).random_(generator=g).to(torch.int32)
    key = (device.type, device.index)
    if key not in _SH32:
        _SH32[key] = (31 - torch.arange(32, dtype=torch.int32, device=device)).unsqueeze(1)
    # bit b of word i -> sign bit of entry b*m + i (a fixed layout; only determinism matters)
    sign = (words.unsqueeze(0) << _SH32[key]).bitwise_and_(-2 ** 31)
    mag = torch.tensor(abs(scale), dtype=torch.float32).view(torch.int32).item()
    return sign.view(-1)[:n].bitwise_or_(mag).view(torch.float32).view(shape)


def noise_like(t: torch.Tensor, seed: int, kind: str = "gaussian") -> torch.Tensor:
    """A fresh tensor z ~ N(0, I) or uniform ±1, shaped like ``t``, fully determined by ``seed``."""
    if kind == "gaussian":
        g = _generator(t.device, seed)
        return torch.empty_like(t, memory_format=torch.contiguous_format).normal_(generator=g)
    if kind == "rademacher":
        z = _signed_scale(t.shape, seed, t.device, 1.0)
        return z if t.dtype == torch.float32 else z.to(t.dtype)
    raise ValueError(f"noise kind must be one of {NOISE_KINDS}, got {kind!r}")


def add_noise_(t: torch.Tensor, seed: int, kind: str, alpha: float,
               mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """In place: t += alpha * z(seed) [* mask]. Returns ``t``. Rademacher builds alpha·z directly."""
    if kind == "rademacher" and mask is None and t.dtype == torch.float32 and alpha != 0.0:
        z = _signed_scale(t.shape, seed, t.device, alpha)   # ±|alpha|, exactly alpha·z up to the sign
        return t.add_(z) if alpha > 0 else t.sub_(z)
    z = noise_like(t, seed, kind)
    if mask is not None:
        z.mul_(mask)
    return t.add_(z, alpha=alpha)


# --- 1-bit masks (Sparse-MeZO): W/8 bytes instead of a parameter-sized bool/float mask -----------------
_SHIFTS: dict = {}


def pack_mask(mask: torch.Tensor) -> torch.Tensor:
    """Pack a bool tensor into uint8 bits (8 entries per byte)."""
    flat = mask.reshape(-1).to(torch.uint8)
    pad = (-flat.numel()) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    sh = _shifts(mask.device)
    return (flat.view(-1, 8) << sh).sum(dim=1, dtype=torch.uint8)


def unpack_mask(packed: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Inverse of :func:`pack_mask`: a bool tensor of ``shape``."""
    n = 1
    for s in shape:
        n *= s
    bits = (packed.unsqueeze(1) >> _shifts(packed.device)) & 1
    return bits.view(-1)[:n].view(shape).bool()


def _shifts(device):
    key = (device.type, device.index)
    if key not in _SHIFTS:
        _SHIFTS[key] = torch.arange(8, dtype=torch.uint8, device=device)
    return _SHIFTS[key]
