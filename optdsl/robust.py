"""Shared pieces for robust models: lowering with the uncertain quantities fixed, the affine-in-u
decomposition, and matrix extraction for two-stage models.

For an expression c(x, u) affine in u ∈ Rᵏ:  c(x, u) = c(x, 0) + Σⱼ uⱼ (c(x, eⱼ) − c(x, 0)),
so lowering c with u fixed at 0 and at each unit vector gives the nominal part g(x) and the coefficient
Q(x) of u as cvxpy expressions, exactly (no sampling).
"""
from __future__ import annotations

import numpy as np
import torch

from .errors import ModelError
from .expr.analysis import is_affine
from .expr.node import Expr, Leaf, Uncertain
from .lower.cvxpy import CvxpyLowering


class FixedULowering(CvxpyLowering):
    """CVXPY lowering in which each uncertain leaf is replaced by the numpy value in `fixed`."""

    def __init__(self):
        super().__init__()
        self.fixed: dict[Uncertain, np.ndarray] = {}

    def leaf(self, leaf: Leaf):
        if isinstance(leaf, Uncertain):
            return self.fixed[leaf]
        return super().leaf(leaf)


def uncertain_of(e: Expr) -> list[Uncertain]:
    return [leaf for leaf in e.leaves() if isinstance(leaf, Uncertain)]


def affine_parts(low: FixedULowering, e: Expr, u: Uncertain):
    """(g, [Q_j]) with e(x, u) = g(x) + Σ_j u_j Q_j(x), as flattened cvxpy expressions."""
    import cvxpy as cp
    if not is_affine(e, [u]):
        raise ModelError(f"expression {e.label()!r} is not affine in the uncertain {u.name!r}")
    k = u.size
    low.fixed[u] = np.zeros(u.shape)
    g = cp.reshape(low.lower(e), (max(1, e.size),), order="C")
    Q = []
    for j in range(k):
        ej = np.zeros(k)
        ej[j] = 1.0
        low.fixed[u] = ej.reshape(u.shape)
        Q.append(cp.reshape(low.lower(e), (max(1, e.size),), order="C") - g)
    low.fixed[u] = np.zeros(u.shape)
    return g, Q


def affine_coefficients(exprs: list[Expr], blocks: list[list], env_values: dict):
    """Exact Jacobians of affine expressions w.r.t. blocks of leaves (variables/uncertain), by autograd at
    the point `env_values` (any point works for affine maps), and the constant term.

    Returns (J_blocks, c0): J_blocks[b] has shape (rows, size of block b); c0 is the value at zero.
    """
    from .lower.torch import TorchLowering
    low = TorchLowering()
    leaves = [leaf for block in blocks for leaf in block]
    zeros = {leaf: torch.zeros(leaf.shape, dtype=torch.float64, requires_grad=True) for leaf in leaves}
    rows = torch.cat([low.evaluate(e, zeros).reshape(-1) for e in exprs]) if exprs else torch.zeros(0)
    mats = [np.zeros((rows.numel(), sum(leaf.size for leaf in block))) for block in blocks]
    for i in range(rows.numel()):
        grads = torch.autograd.grad(rows[i], [zeros[leaf] for leaf in leaves], retain_graph=True, allow_unused=True)
        k = 0
        for b, block in enumerate(blocks):
            off = 0
            for leaf in block:
                g = grads[k]
                if g is not None:
                    mats[b][i, off:off + leaf.size] = g.reshape(-1).numpy()
                off += leaf.size
                k += 1
    return mats, rows.detach().numpy()
