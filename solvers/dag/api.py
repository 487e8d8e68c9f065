"""Functional entry points of the DAG backend: ``learn`` (data → DAG) and ``fit`` (any loss → DAG).

``learn`` validates the data, runs one method (NOTEARS, log-det central path, TOPO or CoLiDE), applies the
final threshold with the acyclicity guarantee (``threshold``), and reports the edge list and — given the
true graph — SHD/TPR/FDR. ``fit`` is the hook for ``subject_to(acyclic(W))`` with an arbitrary smooth torch
objective (e.g. an MLP structural model): it minimises loss(W[, params]) + λ‖W‖₁ subject to acyclicity.
"""
from __future__ import annotations

import warnings
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from optdsl.solvers.common import SolverOutput, Status, resolve_device
from optdsl.solvers.dag.acyclicity import h_expm
from optdsl.solvers.dag.colide import colide
from optdsl.solvers.dag.logdet import logdet
from optdsl.solvers.dag.losses import ParamLoss, make_loss
from optdsl.solvers.dag.metrics import count_accuracy, edge_list
from optdsl.solvers.dag.notears import notears
from optdsl.solvers.dag.side import SideConstraints
from optdsl.solvers.dag.threshold import threshold_dag
from optdsl.solvers.dag.topo import topo
from optdsl.solvers.lazy import lazy_module

nx = lazy_module("networkx")   # imported on first use (~0.15 s)

METHODS = ("notears", "logdet", "topo", "colide")
DEFAULT_LAMBDA = {"notears": 0.05, "logdet": 0.03, "colide": 0.05, "topo": 0.0}


def _check_data(X, device, dtype) -> torch.Tensor:
    if isinstance(X, np.ndarray) or isinstance(X, (list, tuple)):
        X = torch.as_tensor(np.asarray(X, dtype=np.float64))
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"X must be a (n, d) torch.Tensor or numpy array, got {type(X).__name__}")
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D (n samples, d variables) array, got shape {tuple(X.shape)}")
    n, d = X.shape
    if d < 2 or n < 2:
        raise ValueError(f"X must have at least 2 samples and 2 variables, got shape {(n, d)}")
    device, dtype = resolve_device(device, dtype, like=X)
    X = X.to(device=device, dtype=dtype)     # a copy whenever device/dtype differ; never written to
    bad = ~torch.isfinite(X)
    if bool(bad.any()):
        rows = torch.nonzero(bad.any(1)).reshape(-1)[:5].tolist()
        raise ValueError(f"X (shape {(n, d)}) contains NaN or inf values (e.g. in rows {rows}); "
                         "impute or drop them first")
    const = torch.nonzero(X.std(dim=0) == 0).reshape(-1).tolist()
    if const:
        raise ValueError(f"X has constant columns {const[:10]}: a variable with no variance has no "
                         "identifiable parents or children; drop it")
    if n < d:
        warnings.warn(f"X has fewer samples ({n}) than variables ({d}); the covariance is singular and "
                      "the learned graph is unreliable", UserWarning, stacklevel=3)
    return X


def _finish(out: SolverOutput, w_threshold: Optional[float], names, B_true, extra_raw=None) -> SolverOutput:
    """Threshold to a guaranteed DAG, attach edges / metrics / certificates."""
    W_raw = out.x
    if w_threshold is None:
        W, dropped = threshold_dag(W_raw, 0.0)
    else:
        W, dropped = threshold_dag(W_raw, w_threshold)
    out.certificates = {**out.certificates, "h(W_raw)": float(h_expm(W_raw.detach())[0]),
                        "h(W)": float(h_expm(W)[0]), "is_dag": 1.0}
    out.extras.update({"W_raw": W_raw, "edges": edge_list(W, names), "dropped_cycle_edges": dropped,
                       "w_threshold": w_threshold})
    if dropped:
        out.message += f"; {len(dropped)} cycle edge(s) dropped after thresholding to guarantee a DAG"
    if B_true is not None:
        out.extras["metrics"] = count_accuracy(B_true, W)
    out.x = W
    return out


def _check_side(method: str, sign, eq, ineq, d: int, lower=None, upper=None) -> None:
    for name, arr in (("sign", sign), ("lower", lower), ("upper", upper)):
        if arr is not None and tuple(np.shape(arr)) != (d, d):
            raise ValueError(f"{name} must have shape ({d}, {d}), got {tuple(np.shape(arr))}")
    rows = eq is not None or ineq is not None
    general = rows or lower is not None or upper is not None
    if (sign is not None or general) and method == "colide":
        raise ValueError("method='colide' takes forbidden/required edges and tiers only; signs and bounds need "
                         "method='topo', 'notears' or 'logdet', general constraints on W method='notears'")
    if rows and method == "topo":
        raise ValueError("method='topo' takes forbidden/required edges, tiers, signs and bounds only; general "
                         "constraints on W need method='notears' (its augmented Lagrangian carries them)")
    if general and method == "logdet":
        raise ValueError("method='logdet' takes forbidden edges and sign constraints only; general constraints on W "
                         "(and bounds other than 0) need method='notears' (its augmented Lagrangian carries them)")


def _enforce_side(out: SolverOutput, loss, d: int, lam: float, sign, eq, ineq, ctol: float, mask, common: dict,
                  n_extra: int = 0, names=None, lower=None, upper=None) -> SolverOutput:
    """After thresholding (which moves the constraint values: zeroed entries), refit W on the kept (acyclic)
    support under the constraints by the same augmented Lagrangian (h ≡ 0 there), warm-started at the
    thresholded W: the answer is a KKT point of the constrained score on the learned DAG. The final violation
    is certified; above ctol the status says the run did not meet the constraints."""
    side = SideConstraints(sign, eq, ineq, ctol=ctol, lower=lower, upper=upper)
    if not side.smooth or not out.status.has_point:
        return out
    support = (out.x != 0).cpu().numpy()
    if mask is not None:
        support &= np.asarray(mask, bool)
    p = out.extras.get("p")
    kw = {k: v for k, v in common.items() if k not in ("callback",)}
    # (a convex problem for the l2 score: solved tightly, so the multipliers and the fit are those of the KKT point)
    ref = notears(loss, d, lambda1=lam, mask=support, W0=out.x, side=side, n_extra=n_extra,
                  p0=None if p is None else p.detach().cpu().numpy(), inner_tol=(1e-10, 1e-15), **kw)
    out.x = torch.where(torch.as_tensor(support, device=ref.x.device), ref.x, torch.zeros_like(ref.x))
    if n_extra:
        out.extras["p"] = ref.extras["p"]
    out.objective, out.counts["refit_f"] = ref.objective, ref.counts["f"]
    out.extras["edges"] = edge_list(out.x, names)
    out.certificates["h(W)"] = float(h_expm(out.x)[0])
    out.message += f"; refit on the thresholded support under the side constraints ({ref.message})"
    viol = side.violation(out.x)
    if not ref.status.is_success and out.status.is_success:
        out.status = ref.status
    out.certificates["side_violation"] = viol
    if viol > ctol and out.status.is_success:
        out.status = Status.ITERATION_LIMIT
        out.message += f"; side constraints violated by {viol:.3g} > ctol = {ctol:g}"
    return out


def learn(X, *, method: Optional[str] = None, loss="l2", lambda1: Optional[float] = None,
          w_threshold: Optional[float] = 0.3, refine: bool = False, B_true=None,
          names: Optional[Sequence[str]] = None, max_iter: Optional[int] = None, tol: Optional[float] = None,
          time_limit: Optional[float] = None, callback: Optional[Callable] = None, device=None, dtype=None,
          allowed=None, required=(), sign=None, eq=None, ineq=None, lower=None, upper=None,
          ctol: float = 1e-8, **options) -> SolverOutput:
    """Learn a DAG W (W_ij ≠ 0 ⇔ edge i → j) from data X (n, d).

    method: 'topo' (default for loss='l2'), 'logdet' (default otherwise), 'notears', 'colide'.
    loss: 'l2', 'logistic' (binary X) or a callable f(W) -> scalar (notears/logdet only).
    lambda1: ℓ1 weight (defaults: notears 0.05, logdet 0.03, colide 0.05, topo 0: for TOPO it only weights an
    optional ℓ1 fit for the found order; TOPO always thresholds and refits OLS on the kept support).
    refine: after notears/logdet/colide with loss='l2', run TOPO from the topological order of the
    thresholded result (TOPO as post-processing) and from the greedy order, keeping the lower score
    (extras["refine_start"] says which). B_true: true graph → extras["metrics"] (shd, tpr, fdr, ...).
    Options are passed to the method (e.g. T, mu_factor, s for logdet; variance for colide; init for topo).
    Prior knowledge: ``allowed`` (d, d) boolean, False = forbidden edge; ``required`` edges (i, j) (TOPO keeps
    them; notears/logdet forbid the reverse edge only); TOPO then runs its masked swap search (`topo_prior`).
    Side constraints: ``sign`` (d, d) in {−1, 0, +1} (W_ij ≤ 0 / free / ≥ 0; topo, notears, logdet), smooth rows
    ``eq(W) = 0`` and ``ineq(W) <= 0`` (torch callables, or affine rows (A, b) on vec(W); NOTEARS' augmented
    Lagrangian), met within ``ctol`` at the returned W (thresholded, then refit on its support under the rows):
    certificates["side_violation"]; ``lower`` / ``upper`` (d, d) bounds with lower <= 0 <= upper (notears: exact
    bounds on the split; topo: bounded least squares per node, as for signs).
    Returns SolverOutput: x = thresholded W (always a DAG), extras W_raw / edges / order / metrics,
    certificates h(W) (of x, 0 for a DAG) and h(W_raw).
    """
    X = _check_data(X, device, dtype)
    device, dtype = X.device, X.dtype
    d = X.shape[1]
    if names is not None and len(names) != d:
        raise ValueError(f"names has {len(names)} entries but X has d = {d} columns")
    if B_true is not None and tuple(np.shape(B_true)) != (d, d):
        raise ValueError(f"B_true must have shape ({d}, {d}), got {tuple(np.shape(B_true))}")
    is_l2 = isinstance(loss, str) and loss == "l2"
    method = method or ("topo" if is_l2 else "logdet")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method in ("topo", "colide") and not is_l2:
        raise ValueError(f"method={method!r} is defined for the least-squares score only (loss='l2'); "
                         "use method='logdet' or 'notears' for other losses")
    lam = DEFAULT_LAMBDA[method] if lambda1 is None else float(lambda1)
    if lam < 0:
        raise ValueError(f"lambda1 must be >= 0, got {lambda1}")
    common = dict(time_limit=time_limit, callback=callback, device=device, dtype=dtype)
    if max_iter is not None:
        common["max_iter"] = max_iter
    if tol is not None:
        common["tol"] = tol
    _check_side(method, sign, eq, ineq, d, lower, upper)
    prior = allowed is not None or bool(required)
    if prior and method == "colide":
        raise ValueError("method='colide' does not take prior knowledge (forbidden/required edges); use topo, "
                         "notears or logdet")
    if prior and method != "topo":
        mask = np.ones((d, d), bool) if allowed is None else np.asarray(allowed, bool).copy()
        for i, j in required:
            mask[j, i] = False
        options["mask"] = mask
    boxes = sign is not None or lower is not None or upper is not None
    if (prior or boxes) and method == "topo":
        from optdsl.solvers.dag.topo_prior import topo_prior
        lo = np.full((d, d), -np.inf) if lower is None else np.asarray(lower, float).copy()
        hi = np.full((d, d), np.inf) if upper is None else np.asarray(upper, float).copy()
        if sign is not None:
            lo[np.asarray(sign) > 0] = np.maximum(lo[np.asarray(sign) > 0], 0.0)
            hi[np.asarray(sign) < 0] = np.minimum(hi[np.asarray(sign) < 0], 0.0)
        box = {"lower": lo, "upper": hi} if boxes else {}
        out = topo_prior(X, allowed=allowed, required=required, w_threshold=w_threshold, **box, **common, **options)
    elif method == "topo":
        out = topo(X, lambda1=lam, w_threshold=w_threshold, **common, **options)
    elif method == "colide":
        out = colide(X, lambda1=lam, **common, **options)
    elif method == "notears":
        out = notears(make_loss(loss, X), d, lambda1=lam,
                      side=SideConstraints(sign, eq, ineq, ctol=ctol, lower=lower, upper=upper), **common, **options)
    else:
        out = logdet(make_loss(loss, X), d, lambda1=lam, sign=sign, **common, **options)
    out.extras["method"] = method
    if refine and method != "topo" and is_l2 and out.status.has_point:
        W0, _ = threshold_dag(out.x, w_threshold or 0.0)
        order = list(nx.topological_sort(nx.DiGraph(W0.cpu().numpy() != 0)))
        order += [k for k in range(d) if k not in order]
        kw = dict(lambda1=DEFAULT_LAMBDA["topo"], w_threshold=w_threshold, device=device, dtype=dtype)
        ref = topo(X, init=order, **kw)
        # a poor order (e.g. log-det on SF4, d = 100) can trap the swap search (measured SHD 42): also start
        # from the greedy order and keep the lower least-squares score of the two
        alt = topo(X, init="greedy", **kw)
        start, topo_time, topo_f = "method", ref.solve_time + alt.solve_time, ref.counts["f"] + alt.counts["f"]
        if alt.extras["loss"] < ref.extras["loss"]:
            ref, start = alt, "greedy"
        out.extras.update({"W_before_refine": out.x, "order": ref.extras["order"], "refine_start": start})
        out.x = ref.x
        out.counts["topo_f"] = topo_f
        out.objective = ref.objective            # the refined W is unpenalised least squares
        out.certificates.pop("h_logdet(W)", None)
        out.solve_time += topo_time
        out.message += f"; refined by TOPO swaps from the {start} order (score {ref.objective:.6g})"
    # topo_prior thresholds itself, keeping required edges whatever their weight
    out = _finish(out, None if (prior or boxes) and method == "topo" else w_threshold, names, B_true)
    if eq is not None or ineq is not None:
        out = _enforce_side(out, make_loss(loss, X), d, lam, sign, eq, ineq, ctol, options.get("mask"), common,
                            names=names, lower=lower, upper=upper)
        if B_true is not None:
            out.extras["metrics"] = count_accuracy(B_true, out.x)
    return out


def fit(loss_fn: Callable, d: int, *, acyclicity: str = "logdet", lambda1: float = 0.0, params=None,
        W0: Optional[torch.Tensor] = None, mask=None, w_threshold: Optional[float] = 0.3,
        max_iter: Optional[int] = None, tol: Optional[float] = None, time_limit: Optional[float] = None,
        callback: Optional[Callable] = None, device=None, dtype=None, sign=None, eq=None, ineq=None,
        lower=None, upper=None, ctol: float = 1e-8, **options) -> SolverOutput:
    """Minimise loss_fn(W[, *params]) + λ‖W‖₁ s.t. the graph of W is acyclic, for any smooth torch loss.

    acyclicity: 'expm' (NOTEARS augmented Lagrangian on tr(exp(W∘W)) − d = 0) or 'logdet' (central path).
    params: optional list of extra tensors (e.g. MLP weights) optimised jointly; loss_fn is then called as
    loss_fn(W, *params); the inputs are copied, never mutated; fitted values come back in extras["params"].
    mask: optional (d, d) boolean, False entries are forbidden edges. Returns the thresholded DAG as x.
    sign / eq / ineq / lower / upper / ctol: side constraints on W as in `learn` (all but signs need acyclicity='expm').
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a callable W -> scalar tensor, got {type(loss_fn).__name__}")
    if not isinstance(d, (int, np.integer)) or d < 2:
        raise ValueError(f"d must be an integer >= 2, got {d!r}")
    if acyclicity not in ("expm", "logdet"):
        raise ValueError(f"acyclicity must be 'expm' or 'logdet', got {acyclicity!r}")
    if W0 is not None and tuple(W0.shape) != (d, d):
        raise ValueError(f"W0 must have shape ({d}, {d}), got {tuple(W0.shape)}")
    if mask is not None and tuple(np.shape(mask)) != (d, d):
        raise ValueError(f"mask must have shape ({d}, {d}), got {tuple(np.shape(mask))}")
    device, dtype = resolve_device(device, dtype, like=W0)
    params = list(params or [])
    loss = ParamLoss(loss_fn, params) if params else make_loss(loss_fn)
    n_extra = int(sum(q.numel() for q in params))
    p0 = loss.p0.numpy() if params else None
    common = dict(lambda1=lambda1, W0=W0, n_extra=n_extra, p0=p0, mask=mask, time_limit=time_limit,
                  callback=callback, device=device, dtype=dtype)
    if max_iter is not None:
        common["max_iter"] = max_iter
    if tol is not None:
        common["tol"] = tol
    method = "notears" if acyclicity == "expm" else "logdet"
    _check_side(method, sign, eq, ineq, d, lower, upper)
    if method == "notears":
        out = notears(loss, d, side=SideConstraints(sign, eq, ineq, ctol=ctol, lower=lower, upper=upper), **common,
                      **options)
    else:
        out = logdet(loss, d, sign=sign, **common, **options)
    out.extras["method"] = method
    out = _finish(out, w_threshold, None, None)
    out = _enforce_side(out, loss, d, lambda1, sign, eq, ineq, ctol, mask,
                        {k: v for k, v in common.items() if k not in ("lambda1", "W0", "n_extra", "p0", "mask")},
                        n_extra=n_extra, lower=lower, upper=upper)
    if params:
        out.extras["params"] = [q.to(device) for q in loss.unflatten(out.extras["p"])]
    return out
