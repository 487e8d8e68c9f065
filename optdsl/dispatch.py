"""Dispatch: search the chains of passes that end in a backend accepting the rewritten problem, pick
the cheapest (sum of pass costs + backend cost), and explain every rejection.

The search is a depth-first walk over `passes.PASSES` (each pass at most once per chain); problems
reached by the same sequence of passes are shared, so each rewrite runs once per plan. A pass that declares
``keeps_dcp`` hands its input's DCP verdict to its output (graph.carry_dcp), so a model is judged DCP once per
plan; convex_to_cvxpy defers building the cvxpy problem until the cvxpy backend solves it.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Optional

from .backends import BACKENDS, Backend
from .errors import NotSolvableError, SolverError
from .graph import LazyValues, Tags, analyze, carry_dcp
from .passes import PASSES, Pass
from .problem import Problem

_HINTS = {
    "blackbox": "a black-box function has no gradient: a zeroth-order backend (solver='zo') is needed",
    "psd": "semidefinite constraints and PSD matrix variables are solved as SDPs through cvxpy (solver='cvxpy')",
    "matrix_structure": "symmetric/diagonal matrix variables are declared natively only in cvxpy (solver='cvxpy')",
}

# structures that no backend or rewrite takes together: both named, with the nearest supported form
_COMBINED = {
    frozenset({"bilevel", "blackbox"}): (
        "levels (m.level) and a black-box term (od.blackbox) compose only as a black-box leader objective of a "
        "two-level model (a zeroth-order loop over f(x, y*(x)), method='zo'): the follower is solved by "
        "gradients. Nearest supported form: write follower terms with od.fn (a differentiable torch function)"),
    frozenset({"bilevel", "robust"}): (
        "levels (m.level) and uncertain quantities (m.uncertain) compose for inequality constraints and objectives "
        "affine in one uncertain quantity from a polytope (od.Box, od.Budget, od.Polyhedron, at most 64 vertices "
        "per row) or an ellipsoid. Nearest supported form otherwise: write the robust counterpart by hand (box: "
        "aᵀx + r·norm1(x) <= b), or a smaller set"),
    frozenset({"bilevel", "module"}): (
        "levels (m.level) and m.module (a model-wide module, trained by zo fine-tuning) do not compose. Nearest "
        "supported form: declare the network on the follower's level, f.module(net), and write its loss with "
        "od.fn closing over it (the hyper-objective and penalty methods train it as the follower)"),
    frozenset({"bilevel", "minmax"}): (
        "levels (m.level) and a min-max objective do not compose. Nearest supported form: make the inner "
        "maximization a follower level (follower.maximize(...))"),
    frozenset({"bilevel", "integer"}): (
        "levels with integer variables are taken only by the KKT route: integer leader variables, an LP/convex-QP "
        "follower with continuous variables, a piecewise-linear leader (see the bilevel_to_kkt reason above)"),
    frozenset({"acyclic", "integer"}): (
        "od.acyclic(W) and integer variables do not compose. Nearest supported form: a continuous W (the learned "
        "graph is thresholded by w_threshold)"),
    frozenset({"minmax", "integer"}): (
        "a min-max objective and integer variables do not compose. Nearest supported form: continuous players"),
    frozenset({"robust", "blackbox"}): (
        "uncertain quantities (m.uncertain) and a black-box term do not compose: robust counterparts need "
        "an explicit (affine) dependence on the uncertainty. Nearest supported form: od.fn or explicit expressions"),
    frozenset({"acyclic", "bilevel"}): (
        "od.acyclic(W) inside a bilevel model is not supported. Nearest supported form: a DAG model without levels"),
}


# properties saying a pass has lowered the problem for one family of backends (convex_to_cvxpy,
# robust_to_counterpart): such a problem is offered only to the backends that require the form, since any other
# backend that takes it takes the problem before the rewrite for less
_FORMS = frozenset({"cvxpy_form"})


def _verdict_tags(tags: Tags) -> Tags:
    """`tags` with notes that are computed on read (graph's lazy DCP reason) replaced by a placeholder:
    a backend's refusal is decided by features and properties, the notes only word it."""
    notes = tags.notes
    if not any(callable(v) for v in dict.values(notes)):
        return tags
    return Tags(tags.features, tags.properties, tags.sizes,
                {k: "(reason computed on request)" if callable(v) else v for k, v in dict.items(notes)})


def _combination_hints(tags) -> list[str]:
    present = set(tags.features) | set(tags.properties)
    return [h for combo, h in _COMBINED.items() if combo <= present]


def _automatic_refusal(backend: Backend, tags: Tags) -> Optional[str]:
    """Backends that declare ``automatic_for`` (features) are chosen automatically only for models with one
    of them: zeroth order is for black boxes and modules fine-tuned in place, never for a model whose
    gradients autograd can take (asking for it by name still works)."""
    only = getattr(backend, "automatic_for", None)
    if only and not (only & tags.features):
        return (f"chosen automatically only for models with {' or '.join(sorted(only))} "
                f"(the model is differentiable; pass solver={backend.name!r} to use it anyway)")
    return None


@dataclass
class Step:
    pass_: Pass
    problem: Problem          # the problem after this pass
    inverse: Any


@dataclass
class Plan:
    source: Problem
    steps: list[Step]
    backend: Backend
    cost: float
    rejections: dict[str, str] = field(default_factory=dict)
    alternatives: dict[str, tuple[float, list[str]]] = field(default_factory=dict)  # backend -> (cost, chain)
    surcharges: dict[str, tuple[float, str]] = field(default_factory=dict)  # backend -> (size cost, why)

    @property
    def problem(self) -> Problem:
        return self.steps[-1].problem if self.steps else self.source

    @property
    def chain(self) -> list[str]:
        return [s.pass_.name for s in self.steps] + [self.backend.name]

    @property
    def assumptions(self) -> tuple:
        """(parameter, sign) pairs a rewrite relied on (e.g. a nonnegative weight on a norm)."""
        return tuple(a for s in self.steps for a in s.problem.payload.get("_assumes", ()))

    def holds(self) -> bool:
        """Whether the parameter values still satisfy the assumptions the plan was made under."""
        from .passes.nonsmooth_to_epigraph import assumptions_hold
        return assumptions_hold(self.assumptions)


def make_plan(problem: Problem, solver: Optional[str] = None) -> Plan:
    if solver is not None and solver not in BACKENDS:
        raise SolverError(f"unknown solver {solver!r}; known solvers: {', '.join(sorted(BACKENDS))}")
    candidates = [BACKENDS[solver]] if solver else list(BACKENDS.values())
    root_tags = analyze(problem)
    rejections: dict[str, str] = LazyValues()
    def refusal(b: Backend, prob: Problem, tags: Tags) -> Optional[str]:
        # fit before availability: probing cvxpy's solvers imports cvxpy (~0.7 s), which a model no convex
        # backend fits never needs
        return b.reject_reason(prob, tags) or b.available() or (None if solver else _automatic_refusal(b, tags))

    quiet: dict[int, Tags] = {}
    verdicts: dict[tuple[str, int], tuple[Problem, bool]] = {}   # (the problem kept alive: its id stays unique)

    def refuses(b: Backend, prob: Problem, tags: Tags) -> bool:
        """The verdict alone (once per backend and problem): the reasons' wording (a DCP culprit search) is
        left for when it is read."""
        key = (b.name, id(prob))
        if key not in verdicts:
            if id(tags) not in quiet:
                quiet[id(tags)] = _verdict_tags(tags)
            verdicts[key] = (prob, refusal(b, prob, quiet[id(tags)]) is not None)
        return verdicts[key][1]

    for b in candidates:
        if refuses(b, problem, root_tags):
            rejections[b.name] = functools.partial(refusal, b, problem, root_tags)
    best: list[Optional[tuple[float, list[Step], Backend]]] = [None]
    alternatives: dict[str, tuple[float, list[str]]] = {}

    surcharges: dict[str, tuple[float, str]] = {}   # backend -> (extra cost, why): size-aware costs
    deepest: dict[str, tuple[int, Any]] = {}   # backend -> (passes applied, its reason there, unworded)
    walked: list[tuple[Problem, Tags]] = []   # every problem walked, in order (the passes' refusals are worded
                                              # from them only when no backend fits)

    def walk(prob: Problem, steps: list[Step], cost: float) -> None:
        tags: Tags = analyze(prob)
        walked.append((prob, tags))
        forms = tags.properties & _FORMS
        for b in (candidates if not forms else [b for b in candidates if forms <= b.requires]):
            if refuses(b, prob, tags):
                # after normalizing rewrites only, the reason is the informative one ("cannot handle maximize"
                # at the root hides what is left once the objective is flipped); after structural rewrites
                # (bounds -> constraints, ...) it would blame the rewrite's own output instead
                # (the root's reasons are the rejections already)
                if steps and all(s.pass_.normalizing for s in steps) and len(steps) >= deepest.get(b.name, (0,))[0]:
                    deepest[b.name] = (len(steps), functools.partial(refusal, b, prob, tags))
                continue
            extra = b.size_cost(prob, tags)
            total = cost + b.cost + (extra[0] if extra else 0.0)
            if b.name not in alternatives or total < alternatives[b.name][0]:
                alternatives[b.name] = (total, [s.pass_.name for s in steps] + [b.name])
                surcharges.pop(b.name, None)
                if extra:
                    surcharges[b.name] = extra
            if best[0] is None or total < best[0][0]:
                best[0] = (total, list(steps), b)
        for p in PASSES:
            if p.name in prob.applied or not p.accepts(prob, tags):
                continue
            new, inv = p.apply(prob)
            if p.keeps_dcp:
                carry_dcp(prob, new)
            walk(new, steps + [Step(p, new, inv)], cost + p.cost)

    walk(problem, [], 0.0)
    walk = None   # (the recursive closure refers to itself through its cell: unbound, the walk's state is freed
    #              when this returns instead of waiting for the cyclic garbage collector)
    for name, (depth, why) in deepest.items():
        if name in rejections and depth > 0:
            rejections[name] = why
    if best[0] is None:
        lines = [f"  {name}: {why}" for name, why in rejections.items()]
        for p in PASSES:   # the first reason in walk order
            why = next((w for w in (p.why_not(prob, tags) for prob, tags in walked) if w), None)
            if why:
                lines.append(f"  (rewrite {p.name}: {why})")
        combined = _combination_hints(root_tags)
        hints = combined or [h for t, h in _HINTS.items() if t in root_tags]
        head = (f"solver {solver!r} cannot take this model" if solver else "no backend can take this model")
        raise NotSolvableError(head + ":\n" + "\n".join(lines) + ("\n" + "\n".join(hints) if hints else ""))
    cost, steps, backend = best[0]
    rejections = LazyValues({k: v for k, v in dict.items(rejections) if k not in alternatives})
    return Plan(problem, steps, backend, cost, rejections, alternatives, surcharges)


def explain_plan(plan: Plan) -> str:
    tags = analyze(plan.source)
    def surcharge(name: str) -> str:
        extra = plan.surcharges.get(name)
        return f" (+{extra[0]:.2f}: {extra[1]})" if extra else ""

    lines = [f"tags: {', '.join(tags.all())}",
             f"chosen: {' -> '.join(plan.chain)} (cost {plan.cost:.2f}{surcharge(plan.backend.name)})"]
    chosen = plan.backend.name
    for name, b in sorted(BACKENDS.items()):
        if name == chosen:
            continue
        if name in plan.alternatives:
            cost, chain = plan.alternatives[name]
            why = f"accepts via {' -> '.join(chain)} but costs {cost:.2f}" + surcharge(name)
        else:
            why = (plan.rejections.get(name) or b.reject_reason(plan.source, tags) or b.available()
                   or _automatic_refusal(b, tags) or "not considered")
        lines.append(f"  not {name}: {why}")
    return "\n".join(lines)
