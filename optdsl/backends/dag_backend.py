"""``dag``: models with ``od.acyclic(W)``: NOTEARS (trace-exponential augmented Lagrangian), the log-det
central path (DAGMA-type), topological swaps (TOPO) and concomitant noise estimation (CoLiDE).

Constraints on W (`prior_knowledge`): forbidden entries and required edges (all methods; TOPO's masked swap
search); bounds that contain 0 — signs W_ij >= 0 / <= 0 and magnitude caps — (bounded least squares per node in
TOPO, exact bounds on the split W = W⁺ − W⁻ in NOTEARS, signs only in log-det); other smooth rows on W alone
(NOTEARS' augmented Lagrangian, refit on the thresholded support; ``side_violation`` certifies them).
``method="auto"``: TOPO on od.sem_loss data unless there are general rows (then NOTEARS).

The objective is split into a smooth loss plus an optional ``λ·norm1(W)`` term (handled by the method's
own ℓ1 machinery). A loss written with ``od.sem_loss(W, X)`` exposes the data, so TOPO and CoLiDE apply
(``method="auto"`` picks TOPO there, log-det otherwise). Other variables in a smooth loss (e.g. MLP
weights in an ``od.fn``) are fitted jointly. The returned W is thresholded and always a DAG.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from ..expr.node import Constant, Op
from ..lower.torch import TorchLowering
from ..problem import RawSolution
from ..solvers import dag as dagsolvers
from .base import Backend, Option


def _split_l1(objective, W):
    """objective = smooth + λ·‖W‖₁  ->  (smooth terms, λ). Walks the top-level sum only."""
    terms, stack = [], [(objective, 1.0)]
    while stack:
        e, sign = stack.pop()
        if isinstance(e, Op) and e.name in ("add", "sub"):
            stack.append((e.args[0], sign))
            stack.append((e.args[1], sign if e.name == "add" else -sign))
        else:
            terms.append((e, sign))
    lam, smooth = 0.0, []
    for e, sign in terms:
        coef, core = sign, e
        if isinstance(e, Op) and e.name == "mul" and isinstance(e.args[0], Constant) and e.args[0].shape == ():
            coef, core = sign * float(e.args[0].data), e.args[1]
        if isinstance(core, Op) and core.name == "norm" and core.attrs["p"] == 1 and core.args[0] is W and coef > 0:
            lam += coef
        else:
            smooth.append((e, sign))
    return smooth, lam


def _positive_scale(objective):
    """objective = c·E (c·E, E·c or E/c with a positive scalar constant c) -> (E, c); else (objective, 1).
    The argmin does not depend on c, but every method's penalties and tolerances are absolute: learning from
    E and reporting c·f(E) makes the answer independent of how the objective is scaled."""
    c, e = 1.0, objective
    while isinstance(e, Op) and e.name in ("mul", "div") and len(e.args) == 2 and not e.attrs.get("sem"):
        a, b = e.args   # (an od.sem_loss term is kept whole: it carries the data TOPO needs)
        k = a if isinstance(a, Constant) and e.name == "mul" else b if isinstance(b, Constant) else None
        if k is None or k.shape != () or not float(k.data) > 0:
            break
        c *= float(k.data) if e.name == "mul" else 1.0 / float(k.data)
        e = b if k is a else a
    return e, c


def _sem(smooth):
    """The data of an od.sem_loss term when the smooth part is exactly one (positively scaled) SEM score."""
    if len(smooth) == 1 and smooth[0][1] > 0 and isinstance(smooth[0][0], Op):
        return smooth[0][0].attrs.get("sem")
    return None


@dataclass
class Prior:
    """What the constraints on W say: forbidden entries (``allowed`` False), required edges, signs
    (+1: W_ij ≥ 0, −1: W_ij ≤ 0) and the remaining smooth rows (``general``: (constraint, row indices or None,
    (A, b) rows on vec(W) when affine), for the augmented Lagrangian)."""
    allowed: np.ndarray
    required: list
    sign: np.ndarray
    general: list = field(default_factory=list)
    lower: Optional[np.ndarray] = None      # bounds lower <= W <= upper that contain 0 (a magnitude cap)
    upper: Optional[np.ndarray] = None

    @property
    def has_sign(self) -> bool:
        return bool(np.any(self.sign))

    @property
    def has_box(self) -> bool:
        return bool(np.any(np.isfinite(self.lower) & (self.lower < 0))
                    or np.any(np.isfinite(self.upper) & (self.upper > 0)))


def prior_knowledge(problem, W):
    """Constraints on W read as prior knowledge and side constraints: (Prior, None), or (None, why not).

    Per row: ``W[i, j] == 0`` forbids i → j (od.forbid, od.tiers; rows marked by od.require add required edges),
    ``W[i, j] >= 0`` / ``<= 0`` is a sign (also from bounds lb = 0 / ub = 0 on W), ``W[i, j] <= u`` (u > 0) or
    ``>= l`` (l < 0) a magnitude bound (NOTEARS: exact bounds on the split); any other row that reads W alone
    and is smooth (``W[0, 1] + W[2, 1] <= 1``, ``sum_squares(W) <= 4``, ``W[0, 1] >= 0.5``) goes to NOTEARS'
    augmented Lagrangian. Constraints reading other variables, or non-smooth ones, are refused by name."""
    from ..expr.ops import SPECS
    from ..lower.sparse_affine import NotAffine, SparseAffineLowering
    d = W.shape[0]
    prior = Prior(np.ones((d, d), bool), [], np.zeros((d, d), int))
    lower, upper = np.full(d * d, -np.inf), np.full(d * d, np.inf)
    low = SparseAffineLowering([W], [0], W.size)
    nearest = ("the DAG backend takes constraints on W alone: W[i, j] == 0 rows (od.forbid, od.tiers, od.require), "
               "signs (W >= 0) and smooth equality/inequality rows")
    for c in problem.constraints:
        if set(c.expr.variables()) - {W}:
            return None, f"constraint {c.name!r} reads variables other than {W.name!r}; {nearest}"
        rough = sorted({o.name for o in c.expr.nodes() if isinstance(o, Op) and not SPECS[o.name].smooth})
        if rough:
            return None, (f"constraint {c.name!r} is not smooth ({', '.join(rough)}): the augmented Lagrangian on W "
                          f"needs smooth rows; {nearest}")
        try:
            aff = low.lower(c.expr)
        except NotAffine:
            prior.general.append((c, None, None))
            continue
        A, b = aff.A.tocsr(), aff.b.reshape(-1)
        single = np.diff(A.indptr) == 1
        rest = []
        for r in range(A.shape[0]):
            k, a = (A.indices[A.indptr[r]], A.data[A.indptr[r]]) if single[r] else (None, 0.0)
            bound = -b[r] / a if a else None       # a·W_k + b <= 0: W_k <= bound (a > 0) or >= bound (a < 0)
            if c.kind == "eq" and single[r] and b[r] == 0 and a != 0:
                prior.allowed[k // d, k % d] = False
            elif c.kind == "ineq" and a > 0 and bound >= 0:
                upper[k] = min(upper[k], bound)    # W_k <= u with u >= 0: a sign (u = 0) or a magnitude cap
            elif c.kind == "ineq" and a < 0 and bound <= 0:
                lower[k] = max(lower[k], bound)
            else:
                rest.append(r)
        if rest:
            prior.general.append((c, None if len(rest) == A.shape[0] else np.array(rest), (A[rest], b[rest])))
        req = c.expr.attrs.get("required_edges") if hasattr(c.expr, "attrs") else None
        prior.required += list(req or ())
    pos, neg = (lower >= 0).reshape(d, d), (upper <= 0).reshape(d, d)
    both = pos & neg
    prior.allowed &= ~both                   # W_ij >= 0 and <= 0: a forbidden edge
    prior.sign = np.where(both, 0, pos.astype(int) - neg.astype(int))
    prior.sign[np.eye(d, dtype=bool) | ~prior.allowed] = 0
    prior.lower, prior.upper = lower.reshape(d, d), upper.reshape(d, d)
    return prior, None


def _side_rows(prior: Prior, W):
    """The general rows as (eq, ineq) for the solvers: stacked (A, b) when every row of that kind is affine
    (no autograd in the inner loop), else one torch callable; None where there are none."""
    import scipy.sparse as sp
    low = TorchLowering()

    def rows(kind):
        picked = [g for g in prior.general if g[0].kind == kind]
        if not picked:
            return None
        if all(aff is not None for _, _, aff in picked):
            return sp.vstack([aff[0] for _, _, aff in picked]).tocsr(), np.concatenate([aff[1] for _, _, aff in picked])

        def f(Wt):
            out = []
            for c, r, _ in picked:
                v = low.evaluate(c.expr, {W: Wt}).reshape(-1)
                out.append(v if r is None else v[torch.as_tensor(r)])
            return torch.cat(out)
        return f
    return rows("eq"), rows("ineq")


class DagBackend(Backend):
    name = "dag"
    description = "acyclic weighted adjacency matrices: NOTEARS, log-det, TOPO swaps, CoLiDE"
    supports = frozenset({"acyclic", "nonsmooth", "opaque", "equality", "inequality"})
    structure = frozenset({"acyclic"})
    cost = 1.0
    certificates = ("h(W)", "is_dag")
    options = {
        "method": Option(str, "auto", "DAG learner", ("auto", "notears", "logdet", "topo", "colide")),
        "lambda1": Option(float, None, "l1 weight (default: from the objective's norm1(W) term)"),
        "w_threshold": Option(float, 0.3, "final |W| threshold"),
        "max_iter": Option(int, None, "outer iterations"),
        "tol": Option(float, None, "tolerance"),
        "time_limit": Option(float, None, "wall-clock limit in seconds"),
        "ctol": Option(float, None, "violation tolerance of general constraints on W (default 1e-8)"),
        "truth": Option(str, None, "true adjacency (.npy or .csv) to report SHD/TPR/FDR"),
        "edges_csv": Option(str, None, "write the learned edge list to this CSV"),
        "graph_png": Option(str, None, "draw the learned graph into this PNG"),
    }

    def reject_reason(self, problem, tags):
        acyc = problem.extensions.get("acyclic") or []
        if len(acyc) == 1 and problem.constraints:  # the constraint by name before "cannot handle inequality"
            why = prior_knowledge(problem, acyc[0][1])[1]
            if why:
                return why
        why = super().reject_reason(problem, tags)
        if why:
            return why
        if len(acyc) != 1:
            return "needs exactly one od.acyclic(W) constraint"
        (_, W), = acyc
        why = prior_knowledge(problem, W)[1]
        if why:
            return why
        return None

    def solve(self, compiled, problem, options, callback):
        (_, W), = problem.extensions["acyclic"]
        d = W.shape[0]
        core, scale = _positive_scale(problem.objective)
        smooth, lam = _split_l1(core, W)
        lam = options["lambda1"] if options["lambda1"] is not None else lam
        common = dict(max_iter=options["max_iter"], tol=options["tol"], time_limit=options["time_limit"],
                      callback=callback, w_threshold=options["w_threshold"])
        common = {k: v for k, v in common.items() if v is not None}
        others = [v for v in problem.variables if v is not W]
        sem = _sem(smooth) if not others else None
        method = options["method"]
        truth = _load_truth(options["truth"], d)
        pk, _ = prior_knowledge(problem, W)
        allowed, required = pk.allowed, pk.required
        eq, ineq = _side_rows(pk, W)
        general = eq is not None or ineq is not None
        side = {"sign": pk.sign if pk.has_sign else None, "eq": eq, "ineq": ineq}
        if pk.has_box:   # magnitude caps: bounded least squares in TOPO, exact bounds on the split in NOTEARS
            side.update(lower=pk.lower, upper=pk.upper)
        if options["ctol"] is not None:
            side["ctol"] = options["ctol"]
        prior = {}
        if (not allowed.all() or required) and sem is not None:  # prior knowledge (od.forbid / require / tiers)
            prior = {"allowed": allowed, "required": tuple(required)}
        elif not allowed.all():  # any other loss: the mask of fit (required edges: their reverse is forbidden)
            prior = {"mask": allowed}
        if sem is not None and method in ("auto", "topo", "colide", "notears", "logdet"):
            n_samples, d_vars = sem["X"].shape
            # TOPO needs a positive-definite sample covariance, which n < d cannot give; its per-node (bounded)
            # least squares take signs and bounds but no general rows: those go to NOTEARS
            auto = ("notears" if general else "topo" if sem["kind"] == "l2" and n_samples > d_vars
                    else "notears" if pk.has_box else "logdet")
            m = auto if method == "auto" else method
            out = dagsolvers.learn(sem["X"], method=m, loss=sem["kind"], lambda1=lam if m != "topo" else None,
                                   B_true=truth, dtype=torch.float64, **prior, **side, **common)
            params = []
        else:
            if method in ("topo", "colide"):
                raise ValueError(f"method={method!r} needs the objective written with od.sem_loss(W, X)")
            low = TorchLowering()
            smooth_expr = sum((s * e for e, s in smooth[1:]), smooth[0][1] * smooth[0][0]) if smooth else Constant(0.0)

            def loss_fn(Wt, *ps):
                env = {W: Wt, **dict(zip(others, ps))}
                return low.evaluate(smooth_expr, env).reshape(())

            p0 = [torch.as_tensor(v.value if v.value is not None else 0.01 * np.random.default_rng(0).standard_normal(v.shape),
                                  dtype=torch.float64) for v in others]
            expm = method == "notears" or (method == "auto" and (general or pk.has_box))
            out = dagsolvers.fit(loss_fn, d, acyclicity="expm" if expm else "logdet", lambda1=lam,
                                 params=p0 or None, dtype=torch.float64, mask=prior.get("mask"), **side, **common)
            params = out.extras.get("params", [])
            if truth is not None:
                out.extras["metrics"] = dagsolvers.count_accuracy(truth, out.x)
        objective = out.objective * scale if out.objective is not None else None
        sol = RawSolution(out.status, objective=objective, iterations=out.iterations, message=out.message,
                          certificates=dict(out.certificates), counts=dict(out.counts), history=out.history)
        if out.x is not None and out.status.has_point:
            Wn = out.x.detach().cpu().numpy()
            sol.values = {W: Wn, **{v: p.detach().cpu().numpy().reshape(v.shape) for v, p in zip(others, params)}}
            sol.extras["edges"] = [[int(i), int(j), float(w)] for i, j, w in out.extras.get("edges", [])]
            sol.extras["method"] = out.extras.get("method")
            if "metrics" in out.extras:
                sol.extras["metrics"] = {k: float(v) for k, v in out.extras["metrics"].items()}
                sol.certificates.update({k: float(out.extras["metrics"][k]) for k in ("shd", "tpr", "fdr")})
            from ..dag import draw_graph_png, write_edges_csv
            from ..solvers.io import FileWriteError
            # a file that cannot be written must not lose the solve: recorded in the message and in
            # extras["write_errors"] instead of raised; the CLI prints the result, then the error (exit code 2)
            for key, write in (("edges_csv", lambda p: write_edges_csv(p, out.extras.get("edges", []))),
                               ("graph_png", lambda p: draw_graph_png(p, Wn))):
                if options[key]:
                    try:
                        write(options[key])
                    except FileWriteError as exc:
                        sol.extras.setdefault("write_errors", []).append(str(exc))
                        sol.message = "; ".join(filter(None, [sol.message, f"{key}: {exc}"]))
        return sol


def _load_truth(path, d):
    if not path:
        return None
    B = np.load(path) if path.endswith(".npy") else np.loadtxt(path, delimiter=",")
    if B.shape != (d, d):
        raise ValueError(f"truth {path!r} has shape {B.shape}, expected ({d}, {d})")
    return (B != 0).astype(int)


BACKENDS = [DagBackend()]
