"""Halpern-type methods for monotone inclusions 0 ∈ F(z) + N_Z(z) and convex–concave min–max problems.

* `projections`    Box, Simplex, Ball, Affine, Product sets (projection + support function).
* `operators`      nonexpansive maps from F and Z: forward–backward, extragradient, resolvent (+ exact linear).
* `halpern`        Halpern iteration z_{k+1} = β_k z₀ + (1 − β_k) T z_k, β_k = 1/(k+2), with restarts.
* `eag`            extra-anchored gradient (EAG-C) / fast extragradient (FEG).
* `extragradient`  classic extragradient (baseline).
* `vr_halpern`     variance-reduced Halpern for finite sums (Cai, Alacaoglu & Diakonikolas 2024).
* `saddle`         F = (∇ₓL, −∇ᵧL) by autograd, packing, bilinear duality gaps.
* `api`            `solve_inclusion`, `solve_saddle`.
* `testing`        generators with known answers (bilinear games, matrix games, finite sums).
"""
from .api import METHODS, solve_inclusion, solve_saddle
from .eag import eag
from .extragradient import extragradient
from .halpern import halpern
from .operators import ExtragradientMap, ForwardBackward, LinearResolvent, Resolvent, natural_residual
from .projections import Affine, Ball, Box, Identity, Product, Simplex
from .saddle import bilinear_gap, bilinear_gap_fn, pack, saddle_operator, unpack
from .vr_halpern import vr_halpern

__all__ = ["METHODS", "solve_inclusion", "solve_saddle", "halpern", "eag", "extragradient", "vr_halpern",
           "ExtragradientMap", "ForwardBackward", "Resolvent", "LinearResolvent", "natural_residual",
           "Affine", "Ball", "Box", "Identity", "Product", "Simplex",
           "bilinear_gap", "bilinear_gap_fn", "pack", "saddle_operator", "unpack"]
