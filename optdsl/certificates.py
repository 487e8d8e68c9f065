"""Backend-independent certificates computed on the user's own model at a returned point.

* ``max_violation`` and ``worst_constraint``: the largest violation over hard constraints and bounds,
  with the constraint's name, so "infeasible" always says *where*.
* ``kkt_stationarity``: ‖∇f + Σ λ_c ∇c‖∞ with the reported multipliers, by torch autograd (smooth models
  only), so any backend's duals can be checked the same way.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from .expr.batching import batch_constraints
from .expr.node import psd_violation
from .lower.torch import TorchLowering
from .problem import Problem


def violations(problem: Problem, values: dict) -> dict[str, float]:
    low = TorchLowering()
    env = {v: torch.as_tensor(values[v], dtype=torch.float64) for v in problem.variables if v in values}
    out: dict[str, float] = {}
    memo: dict = {}
    with torch.no_grad():
        for batch in batch_constraints(problem.constraints):  # loop-built scalar rows evaluated as one vector
            c = batch.items[0]
            if c.soft or any(v not in env for v in batch.expr.variables()) or _reads_uncertain(batch.expr):
                continue  # robust rows are certified by the backend (counterpart / worst case / CCG gap)
            e = low.evaluate(batch.expr, env, memo).numpy()
            if batch.batched:
                per_row = np.abs(e) if c.kind == "eq" else np.maximum(e, 0)
                out.update({item.name: float(r) for item, r in zip(batch.items, per_row)})
                continue
            out[c.name] = (psd_violation(e) if c.kind == "psd" else
                           float(np.max(np.abs(e) if c.kind == "eq" else np.maximum(e, 0), initial=0.0)))
    for v in problem.variables:
        if v not in values:
            continue
        x = np.asarray(values[v])
        if v.lb is not None:
            out[f"{v.name}.lb"] = float(np.max(np.maximum(v.lb - x, 0), initial=0.0))
        if v.ub is not None:
            out[f"{v.name}.ub"] = float(np.max(np.maximum(x - v.ub, 0), initial=0.0))
    return out


FEAS_TOL = 1e-6


def feasibility_tolerances(problem: Problem, values: dict) -> dict[str, float]:
    """The violation each hard constraint (and bound) may show at a FEASIBLE_POINT: FEAS_TOL·(1 + the largest
    magnitude among the variables *it reads*), so a large unrelated variable never loosens a constraint."""
    mag = {v: float(np.max(np.abs(np.asarray(values[v], dtype=float)), initial=0.0)) for v in problem.variables
           if v in values}
    out: dict[str, float] = {}
    for c in problem.hard_constraints:
        out[c.name] = FEAS_TOL * (1.0 + max((mag.get(v, 0.0) for v in c.expr.variables()), default=0.0))
    for v in problem.variables:
        out[f"{v.name}.lb"] = out[f"{v.name}.ub"] = FEAS_TOL * (1.0 + mag.get(v, 0.0))
    return out


def is_feasible(problem: Problem, values: dict, viol: dict[str, float]) -> bool:
    """Every violation within its own tolerance (`feasibility_tolerances`)."""
    tol = feasibility_tolerances(problem, values)
    return all(v <= tol.get(name, FEAS_TOL) for name, v in viol.items())


def lagrangian_gradient(problem: Problem, values: dict, duals: dict, skip: frozenset = frozenset()):
    """Flat ∇ₓL for L = ±f + Σ λ_c·c over every constraint with a multiplier in `duals` (soft ones act with
    their penalty's derivative) plus bound multipliers ``"x.lb"``/``"x.ub"``; constraints in `skip` left out."""
    low = TorchLowering()
    xs = {v: torch.as_tensor(values[v], dtype=torch.float64).clone().requires_grad_(True) for v in problem.variables}
    sign = -1.0 if problem.sense == "max" else 1.0
    L = sign * low.evaluate(problem.objective, xs).reshape(())
    memo: dict = {}
    for batch in batch_constraints(problem.constraints):
        active = [c for c in batch.items if c.name in duals and c.name not in skip]
        if batch.batched and len(active) == len(batch.items):  # loop-built rows: one vector term
            lam = torch.as_tensor(np.array([float(np.asarray(duals[c.name])) for c in active]), dtype=torch.float64)
            L = L + (lam * low.evaluate(batch.expr, xs, memo)).sum()
            continue
        for c in active:
            lam = torch.as_tensor(np.asarray(duals[c.name], dtype=float), dtype=torch.float64)
            L = L + (-1.0 if c.kind == "psd" else 1.0) * (lam * low.evaluate(c.expr, xs, memo)).sum()  # psd: L = f - <Λ, E>
    grads = torch.autograd.grad(L, list(xs.values()), allow_unused=True)
    parts = []
    for v, g in zip(xs, grads):
        g = torch.zeros(v.shape, dtype=torch.float64) if g is None else g.detach().clone()
        for which, s in (("lb", -1.0), ("ub", 1.0)):
            z = duals.get(f"{v.name}.{which}")
            if z is not None and z.shape == tuple(v.shape):
                g = g + s * torch.as_tensor(z)
        parts.append(g.reshape(-1))
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


def constraint_jacobian(problem: Problem, values: dict, expr, rows) -> np.ndarray:
    """Rows `rows` of the Jacobian of a constraint expression w.r.t. all variables (flattened)."""
    low = TorchLowering()
    xs = {v: torch.as_tensor(values[v], dtype=torch.float64).clone().requires_grad_(True) for v in problem.variables}
    e = low.evaluate(expr, xs).reshape(-1)
    out = []
    for i in rows:
        grads = torch.autograd.grad(e[i], list(xs.values()), retain_graph=True, allow_unused=True)
        out.append(torch.cat([(torch.zeros(v.size, dtype=torch.float64) if g is None else g.reshape(-1))
                              for v, g in zip(xs, grads)]).numpy())
    return np.array(out).reshape(len(out), -1)


def has_multipliers(problem: Problem, values: dict, duals: dict) -> bool:
    """Whether the KKT stationarity of the point is defined: every variable has a value and every hard
    constraint a multiplier (a symmetric/PSD/diagonal variable's structure is a constraint without one)."""
    if any(c.name not in duals for c in problem.hard_constraints) or any(v not in values for v in problem.variables):
        return False
    return not any(getattr(v, "structure", None) for v in problem.variables)


def stationarity(problem: Problem, values: dict, duals: dict) -> Optional[float]:
    """‖∇ₓL‖∞ for L = ±f + Σ λ_c·c (+ bound terms); None when a hard constraint's multiplier is missing."""
    if not has_multipliers(problem, values, duals):
        return None
    g = lagrangian_gradient(problem, values, duals)
    return float(g.abs().max()) if g.numel() else 0.0


def is_smooth(problem: Problem) -> bool:
    """Whether the objective and the hard constraints use smooth atoms only (the condition for a KKT
    stationarity certificate); cached on the problem. Soft constraints are left out: their penalties are
    not part of the Lagrangian the certificate checks."""
    key = "_smooth_hard"
    if key not in problem.payload and not any(c.soft for c in problem.constraints):
        from .graph import analyze   # the problem's own tags (cached on it) say it: every constraint is hard
        problem.payload[key] = "smooth" in analyze(problem).properties
    if key not in problem.payload:
        from .expr.node import Op
        from .expr.ops import SPECS
        seen: set = set()
        smooth = True
        for e in [problem.objective] + [c.expr for c in problem.hard_constraints]:
            for n in e.nodes():
                if isinstance(n, Op) and id(n) not in seen:
                    seen.add(id(n))
                    if not SPECS[n.name].smooth:
                        smooth = False
                        break
            if not smooth:
                break
        problem.payload[key] = smooth
    return problem.payload[key]


def _reads_uncertain(expr) -> bool:
    from .expr.node import Uncertain
    return any(isinstance(leaf, Uncertain) for leaf in expr.leaves())
