"""Block-wise ZO with a dual forward and layer-wise CPU offload (ZO2; Wang et al., COLM 2025).

The model is a sequence of blocks h ← b_i(h) followed by a parameter-free ``loss_fn(h, batch)``. One step
walks the blocks once; for block i it

1. applies the *previous* step's pending update (lazy, as ZO2): θ ← (1 − ηλ)(θ + εz_{t−1}) − η p_{t−1} z_{t−1}
   (the previous step left the block at θ − εz_{t−1}; restore and update fused),
2. perturbs θ += εz_t, runs the "+" stream through the block, perturbs θ −= 2εz_t (z_t kept for this block
   only: transient memory = one block), runs the "−" stream through the block,
3. with offloading, sends the block back to CPU while the next block (already prefetched on a side CUDA
   stream) computes.

So each block crosses PCIe once per step and the noise is generated twice per step (z_{t−1} for the update,
z_t once), against four sweeps in reference MeZO. The parameter trajectory is identical to MeZO / the fused
``ZOStepper`` with the same seeds (same per-tensor seeds, same order of floating-point operations); after
the last step call ``flush()`` to write the pending update. On a CPU-only machine (``device="cpu"``) the
transfers are a no-op and the same code path runs.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import torch

from ..oracles.zo_noise import add_noise_, check_kind, derive_seed, noise_like
from ..oracles.zo_twopoint import ZOEvalError, check_eps, safe_eval
from .optim import make_schedule
from .step import no_decay


class ZO2Runner:
    """Dual-forward, lazily-updated MeZO over ``blocks`` with optional CPU offload (ZO-SGD only).

    Args:
        blocks: modules applied in sequence (no parameter shared between blocks). Their parameters are
            updated in place; with offloading they live on CPU between uses.
        loss_fn: ``loss_fn(h, batch) -> scalar`` on the last block's output (no trainable parameters).
        device: where blocks compute ("cpu" or a CUDA device); default: the first parameter's device.
        offload: keep parameters on CPU and stream blocks to ``device`` (only meaningful for CUDA).
        overlap: prefetch block i+1 on a side CUDA stream while block i computes.
        lr, eps, kind, weight_decay, schedule, seed: as ``ZOStepper`` (same per-tensor seeds).
        cache_noise: keep z of the current block between the two perturbations (one block of memory) instead
            of regenerating it (one more noise sweep).
    """

    def __init__(self, blocks: Sequence[torch.nn.Module], loss_fn: Callable[[Any, Any], Any], *, lr=1e-6,
                 eps: float = 1e-3, kind: str = "gaussian", weight_decay: float = 0.0, schedule: str = "constant",
                 max_iter: Optional[int] = None, seed: int = 0, device=None, offload: bool = True,
                 overlap: bool = True, cache_noise: bool = True):
        self.blocks = list(blocks)
        if not self.blocks:
            raise ValueError("blocks is empty; expected a sequence of nn.Module")
        self.loss_fn = loss_fn
        self.eps, self.kind, self.seed = check_eps(eps), check_kind(kind), int(seed)
        self.eta = make_schedule(lr, schedule, max_iter)
        self.cache_noise = cache_noise
        first = next((p for b in self.blocks for p in b.parameters()), None)
        self.device = torch.device(device) if device is not None else (first.device if first is not None
                                                                       else torch.device("cpu"))
        self.offload = offload and self.device.type != "cpu"
        self.overlap = overlap and self.offload and self.device.type == "cuda"
        # global tensor index j (matches module.parameters() order when blocks cover the module in order)
        self.tensors: list[list[tuple[int, torch.nn.Parameter, float]]] = []
        seen, j = set(), 0
        for b in self.blocks:
            lst = []
            for n, p in b.named_parameters():
                if not p.requires_grad:
                    continue
                if id(p) in seen:
                    raise ValueError(f"parameter {n!r} is shared between blocks; untie it for block-wise ZO")
                seen.add(id(p))
                lst.append((j, p, 0.0 if no_decay(n) else float(weight_decay)))
                j += 1
            self.tensors.append(lst)
        self.pending: Optional[tuple[int, float, float]] = None  # (query seed, proj, lr) of the last step
        if self.offload:
            for lst in self.tensors:
                for _, p, _ in lst:
                    p.data = p.data.to("cpu").pin_memory() if torch.cuda.is_available() else p.data.to("cpu")
        self._up = torch.cuda.Stream(self.device) if self.overlap else None
        self.transfers = 0  # blocks uploaded (one per block per step when offloading)

    # -- transfers ---------------------------------------------------------------------------------
    def _upload(self, i):
        if not self.offload:
            return None
        stream = self._up
        ctx = torch.cuda.stream(stream) if stream is not None else _null()
        with ctx:
            moved = [(p, p.data.to(self.device, non_blocking=True)) for _, p, _ in self.tensors[i]]
        self.transfers += 1
        return moved

    def _activate(self, moved):
        if moved is None:
            return
        if self._up is not None:
            torch.cuda.current_stream(self.device).wait_stream(self._up)
        for p, t in moved:
            if self._up is not None:
                t.record_stream(torch.cuda.current_stream(self.device))
            p.data = t

    def _offload(self, i):
        if self.offload:
            for _, p, _ in self.tensors[i]:
                p.data = p.data.to("cpu")

    # -- one step ----------------------------------------------------------------------------------
    def step(self, inputs, batch, k: int):
        """One ZO step at iteration k on ``inputs`` (first block's input) and ``batch`` (for loss_fn).
        Returns (loss₊, loss₋, projected gradient). Raises ZOEvalError on a bad loss."""
        s = derive_seed(derive_seed(self.seed, k), 0)   # query 0 of step k, as ZOStepper
        eps = self.eps
        h_plus = h_minus = inputs
        last = len(self.blocks) - 1
        nxt = self._upload(0)
        with torch.no_grad():
            for i, blk in enumerate(self.blocks):
                moved = nxt
                self._activate(moved)
                if i + 1 < len(self.blocks):
                    nxt = self._upload(i + 1)   # prefetch while this block computes
                zs = []
                for j, p, wd in self.tensors[i]:
                    self._apply_pending(p, j, wd)    # step k−1's update, fused into this visit
                    if self.cache_noise:
                        z = noise_like(p.data, derive_seed(s, j), self.kind)
                        p.data.add_(z, alpha=eps)
                        zs.append(z)
                    else:
                        add_noise_(p.data, derive_seed(s, j), self.kind, eps)
                h_plus = blk(h_plus)
                if i == last:   # reduce the + stream to its loss now, so both logits never coexist
                    h_plus = _try_loss(self.loss_fn, f"iteration {k} (+eps)", h_plus, batch)
                for n, (j, p, _) in enumerate(self.tensors[i]):
                    if self.cache_noise:
                        p.data.add_(zs[n], alpha=-2 * eps)
                    else:
                        add_noise_(p.data, derive_seed(s, j), self.kind, -2 * eps)
                del zs
                h_minus = blk(h_minus)
                if i == last:
                    h_minus = _try_loss(self.loss_fn, f"iteration {k} (-eps)", h_minus, batch)
                self._offload(i)
            self.pending = None
            for res in (h_plus, h_minus):
                if isinstance(res, Exception):   # every block sits at θ − εz: restore, then report
                    self.pending = (s, 0.0, 0.0)   # a zero update = plain restore θ − εz + εz
                    self.flush()
                    raise res
            fp, fm = h_plus, h_minus
        proj = (fp - fm) / (2 * eps)
        self.pending = (s, proj, self.eta(k))
        return fp, fm, proj

    def _apply_pending(self, p, j, wd):
        if self.pending is None:
            return
        s, proj, lr = self.pending
        shrink = 1.0 - lr * wd
        if shrink != 1.0:
            p.data.mul_(shrink)
        z = noise_like(p.data, derive_seed(s, j), self.kind)
        p.data.add_(z, alpha=-lr * proj + shrink * self.eps)

    def flush(self) -> None:
        """Write the pending update of the last step (parameters end at θ_{t+1}, unperturbed)."""
        if self.pending is None:
            return
        with torch.no_grad():
            for i in range(len(self.blocks)):
                self._activate(self._upload(i))
                for j, p, wd in self.tensors[i]:
                    self._apply_pending(p, j, wd)
                self._offload(i)
        self.pending = None


def _try_loss(loss_fn, where, h, batch):
    """The loss as a float, or the ZOEvalError (raised only once the parameters are consistent again)."""
    try:
        return safe_eval(loss_fn, where, h, batch)
    except ZOEvalError as exc:
        return exc


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
