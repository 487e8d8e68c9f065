"""``dag``: models with ``od.acyclic(W)``: NOTEARS (trace-exponential augmented Lagrangian), the log-det
central path (DAGMA-type), topological swaps (TOPO) and concomitant noise estimation (CoLiDE).

The objective is split into a smooth loss plus an optional ``λ·norm1(W)`` term (handled by the method's
own ℓ1 machinery). A loss written with ``od.sem_loss(W, X)`` exposes the data, so TOPO and CoLiDE apply
(``method="auto"`` picks TOPO there, log-det otherwise). Other variables in a smooth loss (e.g. MLP
weights in an ``od.fn``) are fitted jointly. The returned W is thresholded and always a DAG.
"""
from __future__ import annotations

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


def prior_knowledge(problem, W):
    """Constraints on W read as prior knowledge: ((allowed, required), None), or (None, why not).

    Each constraint must be affine in W alone with one entry per row: ``W[i, j] == 0`` forbids i → j
    (od.forbid, od.tiers), rows marked by od.require add required edges. Anything else is refused by name."""
    from ..lower.sparse_affine import NotAffine, SparseAffineLowering
    d = W.shape[0]
    allowed, required = np.ones((d, d), bool), []
    low = SparseAffineLowering([W], [0], W.size)
    nearest = ("the DAG backend takes prior knowledge as W[i, j] == 0 rows (od.forbid, od.tiers, od.require)")
    for c in problem.constraints:
        if set(c.expr.variables()) - {W}:
            return None, f"constraint {c.name!r} reads variables other than {W.name!r}; {nearest}"
        try:
            aff = low.lower(c.expr)
        except NotAffine:
            return None, f"constraint {c.name!r} is not affine in {W.name!r}; {nearest}"
        A = aff.A.tocsr()
        if c.kind != "eq" or np.any(np.diff(A.indptr) != 1) or np.any(aff.b.reshape(-1) != 0):
            return None, (f"constraint {c.name!r} is not of the form W[i, j] == 0 (sign bounds and general "
                          f"constraints on W are not supported); {nearest}")
        for k in A.indices:
            allowed[k // d, k % d] = False
        req = c.expr.attrs.get("required_edges") if hasattr(c.expr, "attrs") else None
        required += list(req or ())
    return (allowed, required), None


class DagBackend(Backend):
    name = "dag"
    description = "acyclic weighted adjacency matrices: NOTEARS, log-det, TOPO swaps, CoLiDE"
    supports = frozenset({"acyclic", "nonsmooth", "opaque", "equality"})
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
        (allowed, required), _ = prior_knowledge(problem, W)
        prior = {}
        if (not allowed.all() or required) and sem is not None:  # prior knowledge (od.forbid / require / tiers)
            prior = {"allowed": allowed, "required": tuple(required)}
        elif not allowed.all():  # any other loss: the mask of fit (required edges: their reverse is forbidden)
            prior = {"mask": allowed}
        if sem is not None and method in ("auto", "topo", "colide", "notears", "logdet"):
            n_samples, d_vars = sem["X"].shape
            # TOPO needs a positive-definite sample covariance, which n < d cannot give
            auto = "topo" if sem["kind"] == "l2" and n_samples > d_vars else "logdet"
            m = auto if method == "auto" else method
            out = dagsolvers.learn(sem["X"], method=m, loss=sem["kind"], lambda1=lam if m != "topo" else None,
                                   B_true=truth, dtype=torch.float64, **prior, **common)
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
            out = dagsolvers.fit(loss_fn, d, acyclicity="expm" if method == "notears" else "logdet", lambda1=lam,
                                 params=p0 or None, dtype=torch.float64, mask=prior.get("mask"), **common)
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
