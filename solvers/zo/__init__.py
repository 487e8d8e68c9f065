"""Zeroth-order (ZO) optimization backend: black-box minimization and memory-lean fine-tuning.

Entry points (tensor level, no modeling layer)::

    from optdsl.solvers import zo
    out = zo.minimize(f, x0, estimator="gaussian", q=1, eps=1e-3, lr=1e-3, optimizer="sgd", lb=0, ub=1)
    out = zo.minimize_constrained(f, x0, eq=c, ineq=h)            # augmented Lagrangian around minimize
    out = zo.fine_tune(module, loss_fn, batches, steps=1000, lr=1e-6)   # in place (MeZO family)

Pieces: ``step.ZOStepper`` (fused in-place step, optimizers, Sparse-MeZO, FedKSeed seed pool),
``offload.ZO2Runner`` (block-wise dual forward with CPU offload), ``distributed`` (data-parallel ZO over
torch.distributed, FedKSeed replay), ``models`` (tiny decoder transformer, digits data).
Estimators live in ``optdsl.solvers.oracles.zo_*``.
"""
from .finetune import fine_tune
from .minimize import ESTIMATORS, box_projection, minimize, minimize_constrained
from .step import ZOStepper, mezo_reference_step

__all__ = ["minimize", "minimize_constrained", "fine_tune", "ZOStepper", "mezo_reference_step",
           "box_projection", "ESTIMATORS"]
