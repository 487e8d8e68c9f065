"""Robust optimization at the solver level: uncertainty sets, robust counterparts, cutting planes, CCG.

* `sets`            Box, Ellipsoid, Budget, Polyhedron; support functions σ_U as cvxpy expressions.
* `counterpart`     deterministic robust counterparts of constraints affine in the uncertainty.
* `cutting_plane`   adversarial cutting-plane loop for constraints not affine in the uncertainty.
* `ccg`             two-stage robust LP/MILP by column-and-constraint generation (Zeng & Zhao 2013).
* `matrix_recovery` SubGM for robust low-rank matrix recovery (Ma & Fattahi 2023).
* `testing`         instance generators with known answers (gallery).
"""
from .sets import Box, Budget, Ellipsoid, Polyhedron, UncertaintySet
from .counterpart import robust_counterpart, robust_counterpart_rows, robust_linear, worst_case_expression

__all__ = ["Box", "Budget", "Ellipsoid", "Polyhedron", "UncertaintySet",
           "robust_counterpart", "robust_counterpart_rows", "robust_linear", "worst_case_expression"]
