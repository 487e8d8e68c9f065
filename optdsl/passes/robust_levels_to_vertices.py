"""Robust constraints in a model with levels  ->  one deterministic row per vertex of the uncertainty set
(for an ellipsoid: one row, its closed-form worst case).

Source: a bilevel (or multilevel) model in which constraints of the leader or of a follower read an uncertain
quantity u ∈ U and must hold for every u ∈ U:

    c(x, y, u) ≤ 0   for all u ∈ U,        c affine in u,  U a polytope with vertices v₁ … v_V.

Target: the same levels with each such constraint replaced by its deterministic counterpart

    c(x, y, vⱼ) ≤ 0,   j = 1 … V,

in the level it belongs to (a follower's robust constraint restricts the follower, the leader's the leader).
An affine function of u attains its maximum over a polytope at a vertex, so max_{u∈U} c = maxⱼ c(·, vⱼ) and the
rewrite is exact. It keeps what the downstream rewrites need: rows linear in (x, y) for fixed u stay linear (an
LP follower stays an LP, so the KKT route still applies), smooth rows stay smooth (the hyper-objective and
first-order bilevel methods still apply), and a constraint adds no variable (a strongly convex follower stays
one).
This is the counterpart pass run inside the levels, before the bilevel rewrite; the support-function form of
`robust_to_counterpart` (‖·‖₁ epigraphs, LP duals) would add auxiliary follower variables instead.

An objective that reads u (affine in it) is replaced by its worst case over U in epigraph form: a new variable t
of the same level, minimized, with the rows φ(·, vⱼ) <= t (maximized, with t <= φ(·, vⱼ)); the follower then
minimizes its worst-case cost, the leader its own.

Rows that read disjoint components of a box (``a ∘ y <= b``; ``(A + U) y <= b`` with its own uncertain
coefficients per row) need only the corners of the components each row reads: 2^s copies for rows reading s
components each, whatever the size of u (`_separable_vertices`).

An ellipsoid U = {c + P w : ‖w‖₂ <= ρ} has no vertices: its rows take the closed-form worst case
e(·, c) + ρ‖(e(·, c + Pⱼ) − e(·, c))ⱼ‖₂ <= 0 (a second-order cone; smooth away from zero, so the hyper-objective
and first-order methods take it, the KKT route, which needs an LP/QP follower, does not).

Scope: polyhedral sets (Box, Budget, Polyhedron) with at most ``MAX_VERTICES`` vertices (a Box over k
components has 2ᵏ), a separable box as above, or an ellipsoid; a larger set or a soft/equality robust row is
refused with the reason (`why_not`). `invert` reports the multiplier of each user constraint as the sum of its
vertex rows' multipliers (the multiplier of maxⱼ c(·, vⱼ) ≤ 0), and the certificate ``robust_violation``:
the worst case over U at the solution, maxⱼ c(x, y, vⱼ)₊, per constraint.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..expr.analysis import is_affine
from ..expr.node import Constant, Expr, Leaf, Op
from ..problem import ConstraintItem, RawSolution
from ..robust import uncertain_of
from .base import Pass

MAX_VERTICES = 64


def substitute(expr: Expr, mapping: dict) -> Expr:
    """`expr` with each leaf in `mapping` replaced (same shapes); shared sub-expressions stay shared."""
    done: dict[int, Expr] = {}
    stack = [(expr, False)]
    while stack:   # iterative post-order: expressions built in loops can be deep
        e, expanded = stack.pop()
        if id(e) in done:
            continue
        if isinstance(e, Leaf):
            done[id(e)] = mapping.get(e, e)
        elif not expanded:
            stack.append((e, True))
            stack.extend((a, False) for a in e.args if id(a) not in done)
        else:
            args = tuple(done[id(a)] for a in e.args)
            done[id(e)] = e if all(a is b for a, b in zip(args, e.args)) else Op(e.name, args, e.attrs, e.shape)
    return done[id(expr)]


def _box_intervals(within):
    """(lo, hi) per component when the set is a box with a diagonal P (a product of intervals), else None."""
    P = getattr(within, "P", None)
    if type(within).__name__ != "Box" or P is None or P.shape[0] != P.shape[1]:
        return None
    if np.count_nonzero(P - np.diag(np.diag(P))):
        return None
    r = np.abs(np.diag(P))
    return within.center - r, within.center + r


def _row_dependence(expr: Expr, u) -> list[set]:
    """For each row of `expr`, the components of u it reads (its Jacobian in u at a random point: exact for the
    pattern of an expression affine in u, up to coefficients that vanish at that point by accident)."""
    import torch

    from ..lower.torch import TorchLowering
    rng = np.random.default_rng(0)
    env = {v: torch.as_tensor(rng.uniform(0.5, 1.5, v.shape) * rng.choice([-1, 1], v.shape), dtype=torch.float64)
           for v in expr.variables()}
    ut = torch.as_tensor(rng.normal(size=u.shape), dtype=torch.float64).requires_grad_(True)
    env[u] = ut
    rows = TorchLowering().evaluate(expr, env).reshape(-1)
    out = []
    for i in range(rows.numel()):
        g = torch.autograd.grad(rows[i], ut, retain_graph=True, allow_unused=True)[0] if rows.requires_grad else None
        out.append(set() if g is None else set(np.flatnonzero(g.detach().reshape(-1).numpy()).tolist()))
    return out


def _separable_vertices(expr: Expr, u):
    """Values of u that put every row at every corner of the components it reads, when u lies in a box and no
    two rows read the same component: the 2^s patterns over a row's s components serve all rows at once (the
    common case a ∘ y <= b, or (A + U) y <= b with its own uncertain coefficients per row). None otherwise."""
    box = _box_intervals(u.within)
    if box is None or expr.size <= 1:
        return None
    try:
        deps = _row_dependence(expr, u)
    except Exception:   # a user function (od.fn) that fails at the random point: enumerate all vertices instead
        return None
    used = [j for d in deps for j in d]
    if len(used) != len(set(used)):
        return None   # a component read by two rows: the patterns would tie them together
    width = max((len(d) for d in deps), default=0)
    if 2 ** width > MAX_VERTICES:
        return None
    lo, hi = box
    out = []
    for pattern in range(2 ** width):
        v = np.array(u.within.center, dtype=float)
        for d in deps:
            for pos, j in enumerate(sorted(d)):
                v[j] = hi[j] if (pattern >> pos) & 1 else lo[j]
        out.append(v.reshape(u.shape))
    return out


def _vertices(u, expr=None):
    """The vertices of u's set as values shaped like u (for the rows of `expr`: `_separable_vertices` when it
    applies), or (None, why)."""
    if expr is not None:
        sep = _separable_vertices(expr, u)
        if sep is not None:
            return sep, None
    within = u.within
    if not getattr(within, "is_polyhedral", False):
        return None, (f"uncertain {u.name!r} lies in a {type(within).__name__}, not a polytope: the counterpart "
                      "inside a level is taken by vertex enumeration (Box, Budget, Polyhedron)")
    try:
        V = within.vertices(max_count=MAX_VERTICES)
    except ValueError as e:
        return None, (f"uncertain {u.name!r}: {e} (the counterpart inside a level enumerates vertices, at most "
                      f"{MAX_VERTICES})")
    return [np.asarray(v, dtype=float).reshape(u.shape) for v in V], None


def _ellipsoid_worst_case(expr: Expr, u) -> Expr:
    """max over u = c + P w, ‖w‖₂ <= ρ, of expr (affine in u), row by row: e(c) + ρ‖(e(c + Pⱼ) − e(c))ⱼ‖₂."""
    from ..expr import atoms
    E = u.within
    base = substitute(expr, {u: Constant(np.asarray(E.center, dtype=float).reshape(u.shape))})
    qs = [substitute(expr, {u: Constant((E.center + E.P[:, j]).reshape(u.shape))}) - base for j in range(E.k)]
    if expr.shape == ():
        return base + E.rho * atoms.norm(atoms.stack(qs))
    flat = [q.reshape((expr.size,)) for q in qs]
    spread = atoms.norm(atoms.stack(flat, axis=1), axis=1)
    return base + E.rho * spread.reshape(expr.shape)


def _counterpart_rows(expr: Expr, u):
    """[(suffix, deterministic row)] whose rows together say expr(·, u) <= 0 for all u in its set, or (None, why):
    one row per vertex of a polytope, or the closed-form worst case over an ellipsoid."""
    if type(u.within).__name__ == "Ellipsoid":
        return [("@worst_case", _ellipsoid_worst_case(expr, u))], None
    V, why = _vertices(u, expr)
    if why:
        return None, why
    return [(f"@vertex{j}", substitute(expr, {u: Constant(v)})) for j, v in enumerate(V)], None


def _robust_item(c, where: str):
    """(uncertain, None) when the constraint item can be rewritten, (None, why) when not, (None, None) if not robust."""
    us = uncertain_of(c.expr)
    if not us:
        return None, None
    if len(us) > 1:
        return None, f"{where} constraint {c.name!r} reads several uncertain quantities"
    if c.kind == "eq":
        return None, f"{where} equality constraint {c.name!r} depends on uncertain {us[0].name!r}"
    if c.soft:
        return None, f"{where} soft constraint {c.name!r} depends on uncertain {us[0].name!r}"
    if not is_affine(c.expr, us):
        return None, f"{where} constraint {c.name!r} is not affine in uncertain {us[0].name!r}"
    return us[0], None


def _objective_plan(problem):
    """[(owner, objective, sense, uncertain, vertices)] for the objectives that read an uncertain quantity."""
    levels = problem.extensions.get("bilevel") or ()
    out = []
    for owner, where, obj, sense in ([(None, "the leader's objective", problem.objective, problem.sense)] +
                                     [(lv.name, f"the objective of level {lv.name!r}", lv.objective, lv.sense)
                                      for lv in levels]):
        us = uncertain_of(obj)
        if not us:
            continue
        if len(us) > 1:
            return None, f"{where} reads several uncertain quantities"
        if not is_affine(obj, us):
            return None, f"{where} is not affine in uncertain {us[0].name!r}"
        rows, why = _counterpart_rows(obj, us[0])
        if why:
            return None, why
        out.append((owner, obj, sense, us[0], rows))
    return out, None


def _plan(problem):
    """[(owner, item, vertices)] for every robust row (owner None = leader, else the level's name), or why not."""
    levels = problem.extensions.get("bilevel") or ()
    objectives, why = _objective_plan(problem)
    if why:
        return None, why
    out = []
    groups = [(None, "leader", problem.constraints)] + [(lv.name, f"level {lv.name!r}", lv.constraints)
                                                        for lv in levels]
    for owner, where, items in groups:
        for c in items:
            u, why = _robust_item(c, where)
            if why:
                return None, why
            if u is None:
                continue
            rows, why = _counterpart_rows(c.expr, u)
            if why:
                return None, why
            out.append((owner, c, u, rows))
    return out, None


class RobustLevelsToVertices(Pass):
    name = "robust_levels_to_vertices"
    cost = 0.3

    def accepts(self, problem, tags):
        if not {"bilevel", "robust"} <= tags.features or "recourse" in tags.features:
            return False
        rows, _ = _plan(problem)
        return rows is not None

    def why_not(self, problem, tags):
        if not {"bilevel", "robust"} <= tags.features:
            return None
        if "recourse" in tags.features:
            return "two-stage (recourse) models with levels are not supported"
        return _plan(problem)[1]

    def apply(self, problem):
        rows, _ = _plan(problem)
        problem, epigraphs = _epigraphs(problem)
        by_owner: dict = {}
        for owner, c, u, crows in rows:
            by_owner.setdefault(owner, {})[c.name] = [ConstraintItem(f"{c.name}{suffix}", "ineq", e)
                                                      for suffix, e in crows]

        def rewrite(items, owner):
            table = by_owner.get(owner, {})
            out = []
            for c in items:
                out += table.get(c.name, [c])
            return tuple(out)
        levels = tuple(replace(lv, constraints=rewrite(lv.constraints, lv.name))
                       for lv in problem.extensions["bilevel"])
        ext = {k: v for k, v in problem.extensions.items() if k != "robust"}
        ext["bilevel"] = levels
        new = problem.with_(constraints=rewrite(problem.constraints, None), extensions=ext, payload={},
                            applied=problem.applied + (self.name,))
        return new, ([(c, [r for r in by_owner[owner][c.name]]) for owner, c, _, _ in rows], epigraphs)

    def invert(self, solution: RawSolution, inverse):
        from ..lower.torch import evaluate_numpy
        inverse, epigraphs = inverse
        for t, names in epigraphs:   # the worst-case level t is the objective's value, not a user variable
            solution.values.pop(t, None)
            for name in names:
                solution.duals.pop(name, None)
        worst = {}
        for c, vrows in inverse:
            duals = [solution.duals.pop(r.name) for r in vrows if r.name in solution.duals]
            if duals:
                solution.duals[c.name] = np.sum([np.asarray(d, dtype=float) for d in duals], axis=0)
            if solution.values and all(v in solution.values for r in vrows for v in r.expr.variables()):
                vals = [np.asarray(evaluate_numpy(r.expr, solution.values), dtype=float) for r in vrows]
                worst[c.name] = float(np.max(np.maximum(np.max(vals, axis=0), 0.0), initial=0.0))
        if worst:
            solution.certificates["robust_violation"] = max(worst.values())
            solution.extras["robust_violation"] = worst
        return solution


def _epigraphs(problem):
    """Objectives that read u, in epigraph form: min_z max_j φ(z, v_j) is min t s.t. φ(z, v_j) <= t for each
    vertex v_j (max: max t s.t. t <= φ(z, v_j)), t a new variable of the same level (the leader's for the leader's
    objective). The rows then go through the constraint rewrite like any other. Returns (problem, [(t, names)])."""
    from ..expr.node import Variable
    objectives, _ = _objective_plan(problem)
    if not objectives:
        return problem, []
    levels = list(problem.extensions["bilevel"])
    new_vars, out = [], []
    objective = problem.objective
    constraints = list(problem.constraints)
    for owner, obj, sense, u, orows in objectives:
        tag = "leader" if owner is None else owner
        t = Variable((), name=f"{tag}.worst_case")
        sign = 1.0 if sense == "min" else -1.0
        if sense == "max":   # the worst case of a maximized objective is its minimum over u: max of −obj
            orows, _ = _counterpart_rows(-obj, u)
        rows = [ConstraintItem(f"{tag}.worst_case{suffix}", "ineq", e - sign * t) for suffix, e in orows]
        out.append((t, [r.name for r in rows]))
        new_vars.append(t)
        if owner is None:
            objective, constraints = t, constraints + rows
            continue
        t.level = owner
        k = next(i for i, lv in enumerate(levels) if lv.name == owner)
        lv = levels[k]
        levels[k] = replace(lv, objective=t, variables=lv.variables + (t,), constraints=lv.constraints + tuple(rows))
    ext = {**problem.extensions, "bilevel": tuple(levels)}
    return problem.with_(objective=objective, constraints=tuple(constraints), extensions=ext,
                         variables=problem.variables + tuple(new_vars), payload={}), out


PASS = RobustLevelsToVertices()
