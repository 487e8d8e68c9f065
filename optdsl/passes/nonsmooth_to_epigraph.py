"""Nonsmooth convex atoms in monotone positions  ->  smooth epigraph constraints.

Source: min f(x) s.t. g(x) ≤ 0, h(x) = 0 where f and g contain ``abs``, ``relu``, ``max``, ``maximum``,
``norm(·, 1 | 2 | inf)`` (and ``min``/``minimum``) that are not DCP as a whole (a parameter of undeclared
sign, a smooth non-DCP term such as log(1 + exp(z))), so cvxpy cannot take them.
Target: the same problem with each such atom replaced by a new variable t and smooth constraints:

    |u| → t,  u − t ≤ 0, −u − t ≤ 0          relu(u) → t,  u − t ≤ 0, −t ≤ 0
    max(u) → t,  u − t ≤ 0                   maximum(a, b) → t,  a − t ≤ 0, b − t ≤ 0
    ‖u‖₁ → Σt, ±u − t ≤ 0                    ‖u‖∞ → t, ±u − t ≤ 0
    ‖u‖₂ → t,  Σu² − t² ≤ 0, −t ≤ 0          min(u) → t,  t − u ≤ 0   (hypograph, at a negative sign)

This is exact when every replaced atom sits where the objective (or the left side of a ``≤ 0`` row)
is nondecreasing in it: minimizing then pushes t down onto the atom's value. The walk tracks that sign
through sums, negations, products and divisions by constants or parameters (a parameter's sign is taken
from its value when the plan is made, and recorded in ``payload["_assumes"]`` so the model re-plans when
it changes), ``A @ u`` with A ≥ 0, and increasing functions (exp, log, sqrt, logsumexp, sigmoid).
A nonsmooth atom anywhere else (inside an equality, at a negative sign, under a non-monotone function)
makes the pass refuse, and `why_not` names the term.
`invert` drops the auxiliary variables and constraints, so values and multipliers are the user's own.
"""
from __future__ import annotations

import itertools
import sys

import numpy as np

from ..expr import atoms
from ..expr.node import Constant, Expr, Leaf, Op, Parameter, Variable
from ..expr.ops import SPECS
from ..problem import ConstraintItem
from .base import Pass

_PLAIN = frozenset({"nonsmooth", "bounds", "equality", "inequality", "opaque"})
_LINEAR_MONOTONE = frozenset({"sum", "mean", "index", "reshape", "transpose", "stack", "concat", "cumsum", "trace",
                              "diag"})
_INCREASING = frozenset({"exp", "log", "sqrt", "logsumexp", "sigmoid", "logistic"})
_PREFIX = "_epi"


class NotMonotone(Exception):
    """A nonsmooth atom where the epigraph substitution would be wrong; the message names the term."""


def _sign_of(e: Expr, assumes: dict):
    """+1 / -1 when a variable-free expression is elementwise ≥ 0 / ≤ 0 (recording parameter signs), else 0."""
    if e.variables():
        return 0
    if isinstance(e, Constant) and e.sparse:
        d = e.data.data
        return 1 if np.all(d >= 0) else -1 if np.all(d <= 0) else 0
    params = e.parameters()
    try:
        val = np.asarray(e.evaluate(), dtype=float)
    except Exception:  # noqa: BLE001 - a parameter without a value: no sign known
        return 0
    s = 1 if np.all(val >= 0) else -1 if np.all(val <= 0) else 0
    if s and params:
        for p in params:
            assumes[p] = _sign_kind(p)
    return s


class _Rewriter:
    def __init__(self):
        self.new_vars: list[Variable] = []
        self.new_rows: list[ConstraintItem] = []
        self.assumes: dict = {}
        self._count = itertools.count()
        self._memo: dict = {}
        self._flags: dict = {}

    def _var(self, shape, kind):
        v = Variable(shape, name=f"{_PREFIX}{next(self._count)}_{kind}")
        self.new_vars.append(v)
        return v

    def _row(self, expr, where):
        """A new ``expr ≤ 0`` row; its own nonsmooth atoms are rewritten in the same ≤-context."""
        expr = self.rewrite(expr, 1, where)
        self.new_rows.append(ConstraintItem(f"{_PREFIX}{len(self.new_rows)}[{where}]", "ineq", expr))

    def _has_nonsmooth(self, e: Expr) -> bool:
        """Whether a nonsmooth atom lies below `e` (flags for every node computed once, iteratively)."""
        flags = self._flags
        if id(e) not in flags:
            stack = [(e, False)]
            while stack:
                node, done = stack.pop()
                if id(node) in flags:
                    continue
                if done or not node.args:
                    flags[id(node)] = (isinstance(node, Op) and not SPECS[node.name].smooth) or \
                        any(flags[id(a)] for a in node.args)
                    continue
                stack.append((node, True))
                stack.extend((a, False) for a in node.args if id(a) not in flags)
        return flags[id(e)]

    def rewrite(self, e: Expr, sign: int, where: str) -> Expr:
        if isinstance(e, Leaf) or not self._has_nonsmooth(e):
            return e
        key = (id(e), sign)
        if key in self._memo:
            return self._memo[key]
        out = self._rewrite(e, sign, where)
        self._memo[key] = out
        return out

    def _rewrite(self, e: Op, sign: int, where: str) -> Expr:
        name, a = e.name, e.args
        if name in ("add", "sub"):
            return Op(name, (self.rewrite(a[0], sign, where), self.rewrite(a[1], sign if name == "add" else -sign, where)),
                      e.attrs, e.shape)
        if name == "neg":
            return Op(name, (self.rewrite(a[0], -sign, where),), e.attrs, e.shape)
        if name in _LINEAR_MONOTONE or name in _INCREASING:
            return Op(name, tuple(self.rewrite(x, sign, where) for x in a), e.attrs, e.shape)
        if name in ("mul", "div", "matmul"):
            return self._product(e, sign, where)
        if not SPECS[name].smooth:
            return self._atom(e, sign, where)
        raise NotMonotone(f"{_term(e)}: a nonsmooth atom inside '{name}', which is not monotone")

    def _product(self, e: Op, sign: int, where: str) -> Expr:
        x, y = e.args
        if e.name == "div":
            s = _sign_of(y, self.assumes)
            if s == 0:
                raise NotMonotone(f"{_term(e)}: a nonsmooth atom divided by a term of unknown sign")
            return Op("div", (self.rewrite(x, sign * s, where), y), e.attrs, e.shape)
        sx = _sign_of(x, self.assumes)
        if sx:
            return Op(e.name, (x, self.rewrite(y, sign * sx, where)), e.attrs, e.shape)
        sy = _sign_of(y, self.assumes)
        if sy:
            return Op(e.name, (self.rewrite(x, sign * sy, where), y), e.attrs, e.shape)
        raise NotMonotone(f"{_term(e)}: a nonsmooth atom multiplied by a term of unknown sign")

    def _atom(self, e: Op, sign: int, where: str) -> Expr:
        name, u = e.name, e.args[0]
        if name in ("min", "minimum"):
            if sign != -1:
                what = "a concave atom where the objective increases with it" if sign == 1 else \
                    "a nonsmooth atom whose sign of influence is unknown"
                raise NotMonotone(f"{_term(e)}: {what}")
            t = self._var(e.shape, name)
            if name == "min":
                self._row(_expand(t, u, e.attrs.get("axis")) - u, where)
            else:
                self._row(t - u, where)
                self._row(t - e.args[1], where)
            return t
        if sign != 1:
            what = "a convex atom where the objective decreases with it" if sign == -1 else \
                "a nonsmooth atom whose sign of influence is unknown"
            raise NotMonotone(f"{_term(e)}: {what}")
        if name == "abs":
            t = self._var(e.shape, name)
            self._row(u - t, where)
            self._row(-u - t, where)
            return t
        if name == "relu":
            t = self._var(e.shape, name)
            self._row(u - t, where)
            self._row(-t, where)
            return t
        if name == "maximum":
            t = self._var(e.shape, name)
            self._row(u - t, where)
            self._row(e.args[1] - t, where)
            return t
        if name == "max":
            t = self._var(e.shape, name)
            self._row(u - _expand(t, u, e.attrs.get("axis")), where)
            return t
        if name == "norm":
            p = e.attrs["p"]
            flat = u.reshape(u.size) if u.ndim != 1 else u
            if p == 1:
                t = self._var(flat.shape, "norm1")
                self._row(flat - t, where)
                self._row(-flat - t, where)
                return atoms.sum(t)
            if p == np.inf:
                t = self._var((), "norm_inf")
                self._row(flat - t, where)
                self._row(-flat - t, where)
                return t
            t = self._var((), "norm2")
            self._row(atoms.sum_squares(flat) - atoms.square(t), where)
            self._row(-t, where)
            return t
        raise NotMonotone(f"{_term(e)}: no smooth reformulation of '{name}'")


def _expand(t: Expr, u: Expr, axis):
    """t (the reduction's result) shaped to broadcast against u along the reduced axis."""
    if axis is None or u.ndim <= 1:
        return t
    shape = list(u.shape)
    shape[axis % u.ndim] = 1
    return t.reshape(tuple(shape))


def _term(e: Expr) -> str:
    return f"term {e.label(80)!r}"


def _rewrite_problem(problem):
    # the walk recurses once per nesting level; a sum of thousands of terms built with + in a loop is that deep
    # (pure-Python recursion does not grow the C stack on Python >= 3.11), so the limit is lifted for the walk
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 100_000))
    try:
        return _rewrite_problem_inner(problem)
    finally:
        sys.setrecursionlimit(old)


def _rewrite_problem_inner(problem):
    rw = _Rewriter()
    objective = rw.rewrite(problem.objective, 1, "objective")
    items = []
    for c in problem.constraints:
        if c.kind == "eq":
            if rw.rewrite(c.expr, 0, c.name) is not c.expr:  # pragma: no cover - rewrite(…, 0) raises first
                raise NotMonotone(f"constraint {c.name!r}: a nonsmooth atom in an equality")
            items.append(c)
        else:
            items.append(ConstraintItem(c.name, c.kind, rw.rewrite(c.expr, 1, c.name), c.penalty, c.penalty_kind))
    return rw, objective, items


class NonsmoothToEpigraph(Pass):
    name = "nonsmooth_to_epigraph"
    cost = 0.8  # a DCP model still prefers cvxpy (0.5 + 1); a smooth backend follows this pass

    def accepts(self, problem, tags):
        return (problem.sense == "min" and "nonsmooth" in tags.features and tags.features <= _PLAIN
                and self.why_not(problem, tags) is None)

    def why_not(self, problem, tags):
        if "nonsmooth" not in tags.features or problem.sense != "min" or not tags.features <= _PLAIN:
            return None
        # the answer depends on parameter signs, which may change between plans of one cached problem
        signs = tuple(_sign_kind(p) for p in _parameters(problem))
        cached = problem.payload.get("_epigraph_why")
        if cached is None or cached[0] != signs:
            try:
                _rewrite_problem(problem)
                cached = (signs, "")
            except NotMonotone as err:
                cached = (signs, f"no smooth reformulation: {err}")
            except RecursionError:
                cached = (signs, "no smooth reformulation: the expression is nested too deeply for the rewrite")
            problem.payload["_epigraph_why"] = cached
        return cached[1] or None

    def apply(self, problem):
        rw, objective, items = _rewrite_problem(problem)
        payload = {"_assumes": tuple(rw.assumes.items())} if rw.assumes else {}
        new = problem.with_(objective=objective, constraints=tuple(items) + tuple(rw.new_rows),
                            variables=tuple(problem.variables) + tuple(rw.new_vars), payload=payload,
                            applied=problem.applied + (self.name,))
        return new, (frozenset(rw.new_vars), frozenset(r.name for r in rw.new_rows))

    def invert(self, solution, inverse):
        aux_vars, aux_rows = inverse
        solution.values = {v: a for v, a in solution.values.items() if v not in aux_vars}
        solution.duals = {k: d for k, d in solution.duals.items() if k not in aux_rows}
        w = solution.extras.get("worst_constraint")
        if isinstance(w, str) and w.strip("'").startswith(_PREFIX):
            solution.extras["worst_constraint"] = "the epigraph of a nonsmooth term"
        return solution


def _sign_kind(p: Parameter) -> str:
    if p.value is None:
        return "unset"
    v = np.asarray(p.value, dtype=float)
    return "nonneg" if np.all(v >= 0) else "nonpos" if np.all(v <= 0) else "mixed"


def _parameters(problem) -> list:
    seen: dict = {}
    for e in [problem.objective] + [c.expr for c in problem.constraints]:
        for p in e.parameters():
            seen[id(p)] = p
    return list(seen.values())


def assumptions_hold(assumes) -> bool:
    """Whether the parameter signs a plan was built under still hold."""
    return all(_sign_kind(p) == kind for p, kind in assumes)


PASS = NonsmoothToEpigraph()
