"""The problem graph (networkx) and the structure tags dispatch matches against.

Tags come in two kinds:
* **features** — things a backend must be able to *handle*: ``maximize``, ``soft``, ``bounds``,
  ``equality``, ``inequality``, ``blackbox``, ``opaque`` (an `od.fn`), ``nonsmooth``;
* **properties** — facts a backend may *require*: ``convex`` (DCP via the cvxpy lowering), ``smooth``,
  ``cvxpy_form`` (a pass has lowered the model to cvxpy), ``unconstrained``.
A backend accepts a problem when the problem's features are a subset of what it supports and its
requirements are a subset of the problem's properties.
"""
from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass, field

import numpy as np

from .expr.node import Constant, Op, Parameter, Variable
from .expr.ops import SPECS
from .problem import Problem


@dataclass(frozen=True)
class Tags:
    features: frozenset
    properties: frozenset
    sizes: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)  # why a property is absent (e.g. the DCP failure)

    def __contains__(self, tag: str) -> bool:
        return tag in self.features or tag in self.properties

    def all(self) -> list[str]:
        return sorted(self.features | self.properties)


def analyze(problem: Problem) -> Tags:
    """Compute the tags of a problem (cached on the problem's payload, since problems are immutable)."""
    cached = problem.payload.get("_tags")
    if cached is not None:
        return cached
    exprs = [problem.objective] + [c.expr for c in problem.constraints]
    features, props, notes = set(), set(), {}
    if problem.sense == "max":
        features.add("maximize")
    if any(c.soft for c in problem.constraints) or any(c.soft for lv in problem.extensions.get("bilevel") or ()
                                                       for c in lv.constraints):
        features.add("soft")
    if problem.has_bounds():
        features.add("bounds")
    if any(getattr(v, "integer", False) for v in problem.variables):
        features.add("integer")  # integer/boolean variables: mixed-integer backends only
    if any(c.kind == "psd" for c in problem.constraints) or any(getattr(v, "structure", None) == "PSD" for v in problem.variables):
        features.add("psd")  # semidefinite constraints or PSD matrix variables: an SDP (cvxpy)
    if any(getattr(v, "structure", None) in ("symmetric", "diag") for v in problem.variables):
        features.add("matrix_structure")  # symmetric/diagonal matrix variables (cvxpy declares them natively)
    hard = problem.hard_constraints
    if any(c.kind == "eq" for c in hard):
        features.add("equality")
    if any(c.kind == "ineq" for c in hard):
        features.add("inequality")
    if not hard and not any(lv.constraints for lv in problem.extensions.get("bilevel") or ()):
        props.add("unconstrained")
    names = frozenset().union(*(e.op_names() for e in exprs))
    if "blackbox" in names:
        features.add("blackbox")
    if "fn" in names:
        features.add("opaque")
    nonsmooth = sorted(name for name in names if not SPECS[name].smooth)
    if nonsmooth:
        features.add("nonsmooth")
        notes["smooth"] = f"non-smooth atoms: {', '.join(nonsmooth)}"
    else:
        props.add("smooth")
    # structural declarations that leave the realm of one convex program
    nonconvex_structure = {"acyclic", "bilevel", "minmax"} & {k for k, v in problem.extensions.items() if v}
    known = problem.payload.get("_dcp")   # the verdict carried over a pass that keeps it (carry_dcp)
    if nonconvex_structure:
        dcp = f"declared structure: {', '.join(sorted(nonconvex_structure))}"
    elif known is not None:
        dcp = None if known else "not DCP"
    else:
        dcp = _dcp(problem, culprit=False)
    if dcp is None:
        props.add("convex")
    else:  # the reason naming the offending sub-expression is searched for only when someone reads it
        # (the problem held weakly: its payload holds these tags, and a cycle would outlive the model)
        notes["convex"] = dcp if nonconvex_structure else functools.partial(_dcp_of, weakref.ref(problem))
    if "cvxpy" in problem.payload:
        props.add("cvxpy_form")
    # declared structure (levels, min-max, robust, acyclic, finite sums, modules): each is a feature that
    # a backend must handle or a pass must rewrite away
    declared = {k for k, v in problem.extensions.items() if v}
    features |= declared - _PROPERTY_EXTENSIONS
    props |= declared & _PROPERTY_EXTENSIONS
    if _is_linear_system(problem):
        props.add("linear_system")
    n = sum(v.size for v in problem.variables)
    m_eq = sum(c.expr.size for c in hard if c.kind == "eq")
    m_in = sum(c.expr.size for c in hard if c.kind == "ineq")
    tags = Tags(frozenset(features), frozenset(props), {"variables": n, "equalities": m_eq, "inequalities": m_in},
                LazyValues(notes))
    problem.payload["_tags"] = tags
    return tags


def carry_dcp(source: Problem, target: Problem) -> None:
    """Give `target` (the output of a pass declaring ``keeps_dcp``) the DCP verdict of `source`, so analyzing
    it does not lower the model to cvxpy again. Only the verdict travels: a failure's wording is still
    searched for on `target` itself when read."""
    tags = source.payload.get("_tags")
    if tags is not None and "_tags" not in target.payload and "_dcp" not in target.payload:
        target.payload["_dcp"] = "convex" in tags.properties


class LazyValues(dict):
    """A dict whose values may be given as functions, called on first read and then kept. Tag notes and
    dispatch's rejection reasons use it: the DCP culprit search walks the expression again, which choosing a
    plan never needs; only explain() and rejection messages read the words."""

    def __getitem__(self, key):
        value = dict.__getitem__(self, key)
        if callable(value):
            value = value()
            dict.__setitem__(self, key, value)
        return value

    def get(self, key, default=None):
        return self[key] if key in self else default

    def items(self):
        return [(k, self[k]) for k in self]

    def values(self):
        return [self[k] for k in self]


# Declarations that only *allow* more (a finite sum is still an ordinary smooth objective for a
# deterministic method; stochastic backends may exploit it), so they are properties, not obligations.
_PROPERTY_EXTENSIONS = frozenset({"finite_sum"})


def _is_linear_system(problem: Problem) -> bool:
    """A square system of affine equations and nothing else: no objective, no bounds, no inequalities."""
    from .expr.analysis import is_affine
    if not isinstance(problem.objective, Constant) or problem.has_bounds() or any(problem.extensions.values()):
        return False
    cons = problem.constraints
    if not cons or any(c.kind != "eq" or c.soft for c in cons):
        return False
    n = sum(v.size for v in problem.variables)
    return sum(c.expr.size for c in cons) == n and all(is_affine(c.expr) for c in cons)


def _dcp_of(ref) -> str:
    problem = ref()
    return _dcp(problem) if problem is not None else "not DCP"


def _dcp(problem: Problem, culprit: bool = True) -> str | None:
    """None when the problem is DCP-convex through the cvxpy lowering, else the reason it is not, naming
    the smallest offending sub-expression (as cvxpy's "its following subexpressions are not" does).
    With ``culprit=False`` only the verdict matters (any reason may be returned): an equality whose
    expression is not affine settles it without lowering to cvxpy (a variable-dependent argument of a
    non-linear atom is never affine under DCP rules either)."""
    from .lower.cvxpy import CvxpyLowering, NotRepresentable
    if not culprit:
        if _surely_dcp(problem):   # (first: it stops at the first term outside its rules, a non-DCP one among them)
            return None
        quick = _surely_not_dcp(problem)
        if quick is not None:
            return quick
    low = CvxpyLowering()
    try:
        obj = low.lower(problem.objective)
        if problem.sense == "max" and not obj.is_concave():
            return "the objective is not concave (DCP) for maximize" + (culprit and _culprit(problem.objective, low, "concave") or "")
        if problem.sense == "min" and not obj.is_convex():
            return "the objective is not convex (DCP)" + (culprit and _culprit(problem.objective, low, "convex") or "")
        from .expr.batching import batch_constraints
        for batch in batch_constraints(problem.constraints):  # loop-built scalar rows checked as one vector
            if batch.batched and _batch_is_dcp(low.lower(batch.expr), batch.kind):
                continue
            for c in batch.items:
                reason = _constraint_dcp(c, low, culprit)
                if reason:
                    return reason
    except NotRepresentable as e:
        return f"not representable in cvxpy: {e}"
    return None


def _surely_not_dcp(problem: Problem) -> str | None:
    """A reason the problem cannot be DCP found without lowering it to cvxpy, or None (then cvxpy decides):
    an equality that is not affine, a product of two variable-dependent factors or a division by one (cvxpy:
    unknown curvature, or no atom), or an atom cvxpy has none of (sin, cos, ...). Every non-DCP
    sub-expression makes the whole problem non-DCP, so finding one settles the verdict."""
    from .expr.analysis import is_affine
    from .lower.cvxpy import CVXPY
    bad = next((c for c in problem.constraints if c.kind == "eq" and not is_affine(c.expr)), None)
    if bad is not None:
        return f"equality constraint {bad.name!r} is not affine"
    depends: dict[int, bool] = {}
    for e in [problem.objective] + [c.expr for c in problem.constraints]:
        stack = [(e, False)]
        while stack:
            n, ready = stack.pop()
            if id(n) in depends:
                continue
            if isinstance(n, Variable):
                depends[id(n)] = True
            elif not isinstance(n, Op):
                depends[id(n)] = False
            elif not ready:
                stack.append((n, True))
                stack.extend((a, False) for a in n.args if id(a) not in depends)
            else:
                dep = [depends[id(a)] for a in n.args]
                depends[id(n)] = any(dep)
                if n.name in ("mul", "matmul") and all(dep):
                    return f"a product of two variable-dependent factors: {n.label(60)!r}"
                if n.name == "div" and dep[1]:
                    return f"a division by a variable-dependent expression: {n.label(60)!r}"
                impl = CVXPY.get(n.name)
                if impl is None or getattr(impl, "__qualname__", "").startswith("_missing"):
                    return f"'{n.name}' has no cvxpy atom"
    return None


def _surely_dcp(problem: Problem) -> bool:
    """True when the problem is DCP-convex by a few rules that cvxpy applies alike, read off the expressions
    without lowering them to cvxpy (which costs milliseconds on a 5-variable model); False when the rules do
    not settle it (then cvxpy decides). The rules cover scalar-written models: entries x[i], sums and means of
    variables, finite scalar constants; sums and differences, products and quotients by a constant (nonnegative
    for a convex factor), square(affine), affine^p for even integers p; minimize convex, equalities affine,
    inequalities convex. Anything else (parameters, vectors, other atoms, maximize) is left to cvxpy."""
    if problem.sense != "min" or any(c.kind not in ("eq", "ineq") for c in problem.constraints):
        return False
    memo: dict[int, str | None] = {}
    if _curvature(problem.objective, memo) is None:
        return False
    for c in problem.constraints:
        curv = _curvature(c.expr, memo)
        if curv is None or (c.kind == "eq" and curv == "convex"):
            return False
    return True


def _constant_value(n) -> float | None:
    if isinstance(n, Constant) and n.shape == () and not n.sparse:   # (constants are finite: checked when built)
        return float(n.data)
    return None


_ENTRY_OPS = frozenset({"index", "sum", "mean"})   # affine in one variable, read without their operands' curvature


def _curvature(root, memo: dict) -> str | None:
    """"constant", "affine" or "convex" for a scalar expression within `_surely_dcp`'s rules, else None
    (iterative: a loop-built sum of 10⁴ terms is that deep)."""
    stack = [(root, False)]
    while stack:
        n, ready = stack.pop()
        if id(n) in memo:
            continue
        if ready or not (type(n) is Op and n.shape == () and n.name not in _ENTRY_OPS):
            curv = memo[id(n)] = _curvature_of(n, memo)
            if curv is None:
                return None   # every node above one outside the rules is outside them too
            continue
        stack.append((n, True))
        stack.extend((a, False) for a in n.args if id(a) not in memo)
    return memo[id(root)]


def _curvature_of(n, memo: dict) -> str | None:
    """The curvature of `n` from its operands' (in `memo` for scalar ops other than `_ENTRY_OPS`)."""
    if isinstance(n, Op):
        if n.shape != ():
            return None
        if n.name in _ENTRY_OPS:
            leaf = n.args[0]
            ok = isinstance(leaf, Variable) and getattr(leaf, "structure", None) is None and (
                n.attrs.get("axis") is None if n.name != "index"
                else type(n.attrs.get("key")) is int and len(leaf.shape) == 1)
            return "affine" if ok else None
        parts = [memo[id(a)] for a in n.args]
        return None if None in parts else _combine(n, parts)
    if isinstance(n, Variable):
        return "affine" if n.shape == () and getattr(n, "structure", None) is None else None
    return "constant" if _constant_value(n) is not None else None


_ORDER = {"constant": 0, "affine": 1, "convex": 2}


def _combine(n, parts: list) -> str | None:
    if not parts:
        return None   # an op with no expression operands (a finite sum over data): outside the rules
    worst = max(parts, key=_ORDER.__getitem__)
    if worst == "constant":
        return None  # constant arithmetic: left to cvxpy (its sign rules)
    if n.name == "add":
        return worst
    if n.name == "sub":
        return worst if parts[1] != "convex" else None
    if n.name == "neg":
        return "affine" if parts[0] == "affine" else None
    if n.name in ("mul", "div"):
        c = _constant_value(n.args[1] if n.name == "div" or parts[0] != "constant" else n.args[0])
        if c is None or parts.count("constant") != 1 or (n.name == "div" and parts[0] == "constant"):
            return None
        if worst == "affine":
            return "affine" if (n.name == "mul" or c != 0) else None
        return "convex" if (c >= 0 if n.name == "mul" else c > 0) else None
    if n.name == "square":
        return "convex" if parts[0] == "affine" else None
    if n.name == "power":
        p = n.attrs.get("p")
        if isinstance(p, (int, float)) and p == 1:
            return parts[0]
        if isinstance(p, (int, float)) and p >= 2 and p == int(p) and int(p) % 2 == 0 and parts[0] == "affine":
            return "convex"
    return None


def _batch_is_dcp(e, kind: str) -> bool:
    return e.is_affine() if kind == "eq" else e.is_convex()


def _constraint_dcp(c, low, culprit: bool = True) -> str | None:
    """None when constraint `c` is DCP (affine equality, convex inequality, affine PSD), else why not."""
    e = low.lower(c.expr)
    if not culprit:
        test = {"eq": e.is_affine, "psd": e.is_affine, "ineq": e.is_convex}.get(c.kind)
        return None if test is None or test() else f"constraint {c.name!r} is not DCP"
    if c.kind == "eq" and not e.is_affine():
        return f"equality constraint {c.name!r} is not affine" + _culprit(c.expr, low, "affine")
    if c.kind == "psd" and not e.is_affine():
        return f"semidefinite constraint {c.name!r} needs an affine matrix expression"
    if c.kind == "ineq" and not e.is_convex():
        return f"constraint {c.name!r} is not convex (DCP)" + _culprit(c.expr, low, "convex")
    return None


# how each linear op passes a curvature requirement to its arguments (+1 same, -1 flipped)
_LINEAR_SIGNS = {"add": (1, 1), "sub": (1, -1), "neg": (-1,), "sum": (1,), "mean": (1,), "index": (1,),
                 "reshape": (1,), "transpose": (1,)}
_FLIP = {"convex": "concave", "concave": "convex", "affine": "affine", "dcp": "dcp"}


def _meets(ce, need: str) -> bool:
    return {"convex": ce.is_convex, "concave": ce.is_concave, "affine": ce.is_affine, "dcp": ce.is_dcp}[need]()


def _describe(ce) -> str:
    curv, sign = ce.curvature.lower(), ce.sign.lower()
    if curv == "constant":
        return "a constant of unknown sign (declare the parameter's sign)" if sign == "unknown" else f"constant, {sign}"
    return ("of unknown curvature" if curv == "unknown" else curv) + (", sign unknown" if sign == "unknown" else f", {sign}")


def _culprit(expr, low, need: str) -> str:
    """": 'sub-expression' is <curvature> (<its operands' curvature and sign>)" for the smallest term that
    breaks the DCP rules: descend into an operand that is not DCP at all, or, through sums and negations,
    into the operand with the wrong curvature. The expression is lowered once (every node memoized), so the
    search is linear in its size."""
    import cvxpy as cp

    from .lower._walk import lower
    from .lower.cvxpy import CVXPY, NotRepresentable
    memo: dict = {}
    try:
        lower(expr, low.leaf, CVXPY, memo)
    except (NotRepresentable, ValueError, TypeError, IndexError, AttributeError, RecursionError):
        return ""

    def cx(node):
        out = memo[id(node)]
        return out if isinstance(out, cp.Expression) else cp.Constant(out)

    e = expr
    try:
        for _ in range(10_000):
            signs = _LINEAR_SIGNS.get(e.name) if isinstance(e, Op) else None
            if signs:  # a sum / negation: the operand that fails the requirement passed down to it
                needs = [(a, _FLIP[need] if s < 0 else need) for a, s in zip(e.args, signs)]
            else:      # any other atom: an operand that is not DCP at all
                needs = [(a, "dcp") for a in e.args]
            nxt = next(((a, n) for a, n in needs if isinstance(a, Op) and not _meets(cx(a), n)), None)
            if nxt is None:
                break
            e, need = nxt
        if e is expr and not e.args:
            return ""
        ops = ", ".join(f"{a.label(40)!r} {_describe(cx(a))}" for a in e.args)
        want = "" if need == "dcp" else f" (needs {need})"
        return f": sub-expression {e.label(80)!r} is {_describe(cx(e))}{want}" + (f"; operands: {ops}" if ops else "")
    except RecursionError:  # cvxpy's curvature analysis recurses: a very deep expression gets no detail
        return ""


def build_graph(problem: Problem) -> nx.DiGraph:
    """Nodes: variables, parameters, the objective and each constraint; an edge u -> v when v reads u."""
    import networkx as nx   # (imported here: dispatch never needs it)

    g = nx.DiGraph(name="problem", sense=problem.sense, tags=analyze(problem).all())
    for v in problem.variables:
        g.add_node(v.name, kind="variable", shape=v.shape, lb=v.lb is not None, ub=v.ub is not None)
    terms = [("objective", problem.objective, {"kind": "objective", "sense": problem.sense})]
    terms += [(c.name, c.expr, {"kind": "constraint", "type": c.kind, "soft": c.soft, "shape": c.expr.shape})
              for c in problem.constraints]
    for lv in problem.extensions.get("bilevel") or ():
        # levels: "owns" edges to their variables, "inside" edges from the enclosing level, and their objective
        # and constraints as terms like the leader's (reads edges below)
        node = f"level:{lv.name}"
        g.add_node(node, kind="level", sense=lv.sense, parent=lv.parent)
        g.add_edge(f"level:{lv.parent}" if lv.parent else "objective", node, relation="inside")
        for v in lv.variables:
            g.add_edge(node, v.name, relation="owns")
        terms.append((f"{lv.name}.objective", lv.objective, {"kind": "objective", "level": lv.name, "sense": lv.sense}))
        terms += [(c.name, c.expr, {"kind": "constraint", "level": lv.name, "type": c.kind, "soft": False,
                                    "shape": c.expr.shape}) for c in lv.constraints]
    for name, expr, attrs in terms:
        g.add_node(name, expr=str(expr), **attrs)
        for leaf in expr.leaves():
            if isinstance(leaf, (Variable, Parameter)):
                if leaf.name not in g:
                    g.add_node(leaf.name, kind="parameter", shape=leaf.shape)
                g.add_edge(leaf.name, name, relation="reads")
    return g


def summary(g: nx.DiGraph) -> str:
    kinds: dict[str, int] = {}
    for _, d in g.nodes(data=True):
        kinds[d.get("kind", "?")] = kinds.get(d.get("kind", "?"), 0) + 1
    parts = ", ".join(f"{k} {kinds[k]}" for k in sorted(kinds))
    return f"{g.number_of_nodes()} nodes ({parts}), {g.number_of_edges()} edges"
