"""Expression IR: leaves (Variable, Parameter, Constant) and one generic `Op` node.

Every operation is an `Op(name, args, attrs)`; what an op *means* lives in tables, not in subclasses:
its shape rule and smoothness in `expr.ops.SPECS`, its implementation in each lowering
(`lower.torch`, `lower.cvxpy`, `lower.sympy`). Shapes are checked when the node is built, so a mismatch
is reported at the line that wrote it, naming both operands.
"""
from __future__ import annotations

import itertools
import math
import numbers
import sys
import weakref
from typing import Any, Iterator

import numpy as np

from ..errors import ModelError, ShapeError
from .ops import SPECS

_ids = itertools.count()


def _shape_of(shape: Any) -> tuple[int, ...]:
    if shape is None:
        return ()
    if isinstance(shape, numbers.Integral):
        shape = (int(shape),)
    # a string is iterable ("12" would become (1, 2)) and a float truncates: both are mistakes, not shapes
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__") or \
            not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in shape):
        raise ModelError(f"shape must be an int or a tuple of ints, got {shape!r}")
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ModelError(f"shape must be non-negative, got {shape}")
    return shape


class Expr:
    """Base of every expression. Supports numpy-style operators and broadcasting."""

    shape: tuple[int, ...]
    __array_priority__ = 1000  # so numpy arrays defer to our operators (A @ x builds an Op)
    __hash__ = object.__hash__

    # --- structure -------------------------------------------------------------------------------
    @property
    def args(self) -> tuple["Expr", ...]:
        return ()

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))   # (np.prod costs microseconds per call; size is read everywhere)

    # Expressions are immutable, so a node's walk is kept once computed, up to this many nodes: the small
    # models whose fixed per-solve cost matters (dispatch, tags, lowering each walk every expression several
    # times; hs071 walked its rows ~200 times per solve) get it free after the first, while a loop-built
    # sum of 10⁴ terms, whose partial sums are walked by recursive analyses, does not keep O(n²) of them.
    _WALK_CACHE_LIMIT = 128

    def leaves(self) -> Iterator["Leaf"]:
        """Every distinct leaf below this node, in walk order."""
        cached = self.__dict__.get("_leaves")
        if cached is not None:
            return iter(cached)
        out = [e for e in self.nodes() if isinstance(e, Leaf)]
        if "_nodes" in self.__dict__:
            self._leaves = tuple(out)
        return iter(out)

    def nodes(self) -> Iterator["Expr"]:
        """Every distinct node below and including this one, depth first (iterative: deep expressions must not
        hit recursion limits)."""
        cached = self.__dict__.get("_nodes")
        if cached is not None:
            return itertools.chain((self,), cached)
        out, seen, stack = [], set(), [self]
        while stack:
            e = stack.pop()
            if id(e) in seen:
                continue
            seen.add(id(e))
            out.append(e)
            stack.extend(e.args)
        if 1 < len(out) <= self._WALK_CACHE_LIMIT:
            self._nodes = tuple(out[1:])   # (without the node itself: holding itself would be a reference cycle)
        return iter(out)

    def _kept(self, key: str, compute):
        """``compute(self)``, computed once and kept on the expression under `key`: expressions are immutable,
        and dispatch, tags and backends ask the same facts of every problem a rewrite derives, which share
        their rows (op names, affinity, CasADi eligibility, size statistics)."""
        d = self.__dict__
        if key not in d:
            d[key] = compute(self)
        return d[key]

    def op_names(self) -> frozenset:
        """The names of the ops in this expression (kept)."""
        return self._kept("_op_names", lambda e: frozenset(n.name for n in e.nodes() if isinstance(n, Op)))

    def variables(self) -> list["Variable"]:
        return [leaf for leaf in self.leaves() if isinstance(leaf, Variable)]

    def parameters(self) -> list["Parameter"]:
        return [leaf for leaf in self.leaves() if isinstance(leaf, Parameter)]

    # --- operators -------------------------------------------------------------------------------
    def __add__(self, other): return op("add", self, other)
    def __radd__(self, other): return op("add", other, self)
    def __sub__(self, other): return op("sub", self, other)
    def __rsub__(self, other): return op("sub", other, self)
    def __mul__(self, other): return op("mul", self, other)
    def __rmul__(self, other): return op("mul", other, self)
    def __truediv__(self, other): return op("div", self, other)
    def __rtruediv__(self, other): return op("div", other, self)
    def __matmul__(self, other): return op("matmul", self, other)
    def __rmatmul__(self, other): return op("matmul", other, self)
    def __neg__(self): return op("neg", self)
    def __pos__(self): return self

    def __pow__(self, p):
        if isinstance(p, Expr) or not np.isscalar(p):
            raise ModelError(f"exponent of ({self.label()})**p must be a Python number, got {type(p).__name__}")
        return op("power", self, p=float(p))

    def __getitem__(self, key): return op("index", self, key=key)

    def __eq__(self, other): return Constraint(self, other, "==")  # type: ignore[override]

    def __lt__(self, other):
        raise ModelError(f"strict inequality '<' with {self.label()!r}: constraints are closed, use <= instead")

    def __gt__(self, other):
        raise ModelError(f"strict inequality '>' with {self.label()!r}: constraints are closed, use >= instead")

    def __le__(self, other): return Constraint(self, other, "<=")
    def __ge__(self, other): return Constraint(other, self, "<=")
    # matrix inequalities, as in cvxpy: X >> Y means X - Y is positive semidefinite
    def __rshift__(self, other): return PSDConstraint(self, other)
    def __rrshift__(self, other): return PSDConstraint(other, self)
    def __lshift__(self, other): return PSDConstraint(other, self)
    def __rlshift__(self, other): return PSDConstraint(self, other)

    def __bool__(self):
        raise ModelError(f"the truth value of expression {self.label()!r} is undefined: comparisons build "
                         "constraints; pass them to Model.subject_to instead of using them in `if`/`and`")

    # --- numpy interop: np.exp(x), np.sum(x), A @ x, A <= x build expressions (see expr.numpy_interop) ---
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from .numpy_interop import apply_ufunc
        return apply_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from .numpy_interop import apply_function
        return apply_function(func, args, kwargs)

    def __array__(self, dtype=None, copy=None):
        """numpy's view of an expression: a 0-d object array holding it (so scipy.sparse and numpy defer to
        our reflected operators), except when cvxpy converts one of its operands (``cp_expr + x``): that
        mix is refused here with a message, since cvxpy would otherwise fail on a float conversion."""
        caller = sys._getframe(1)
        for _ in range(3):
            if caller is None:
                break
            if (caller.f_globals.get("__name__") or "").startswith("cvxpy."):
                raise ModelError(f"optdsl expression {self.label()!r} cannot be mixed into a cvxpy expression: "
                                 "write the cvxpy part with od.* atoms on variables of the optdsl model")
            caller = caller.f_back
        out = np.empty((), dtype=object)
        out[()] = self
        return out

    # --- methods ---------------------------------------------------------------------------------
    @property
    def T(self): return op("transpose", self)

    def sum(self, axis=None): return op("sum", self, axis=axis)
    def mean(self, axis=None): return op("mean", self, axis=axis)
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], numbers.Integral) else shape
        return op("reshape", self, shape=tuple(shape))
    def flatten(self): return self.reshape(self.size)

    # --- printing --------------------------------------------------------------------------------
    def label(self, limit: int = 60) -> str:
        """A short human-readable form used in error messages."""
        s = str(self)
        return s if len(s) <= limit else s[: limit - 3] + "..."

    def __str__(self) -> str:
        from .printing import to_str
        return to_str(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label()}, shape={self.shape})"

    def evaluate(self, values: dict | None = None):
        """Numeric value (numpy) using variables' current `.value` (or `values={var: array}`)."""
        from ..lower.torch import evaluate_numpy
        return evaluate_numpy(self, values)

    @property
    def value(self):
        return self.evaluate()


class Leaf(Expr):
    name: str
    _model_ref = None

    @property
    def model(self):
        """The model that declared this leaf (None for a free-standing one, or once that model is gone). Held
        weakly: a model refers to its variables, so a strong reference back would make every model a
        reference cycle, freed only by the cyclic garbage collector (whose passes cost a solve of a small
        model about a tenth of its time), instead of when the last reference to it goes."""
        ref = self._model_ref
        return None if ref is None else ref()

    @model.setter
    def model(self, model) -> None:
        self._model_ref = None if model is None else weakref.ref(model)


class Variable(Leaf):
    """A decision variable. Created by `Model.variable`; `value` holds the warm start / the solution."""

    def __init__(self, shape=(), *, lb=None, ub=None, name: str | None = None, value=None, model=None,
                 integer: bool = False, boolean: bool = False, symmetric: bool = False, PSD: bool = False,
                 diag: bool = False):
        self.shape = _shape_of(shape)
        self.id = next(_ids)
        self.name = name or f"x{self.id}"
        self.model = model
        if 0 in self.shape:
            raise ModelError(f"variable {self.name!r} has shape {self.shape}, with no entries: every dimension "
                             "must be at least 1")
        self.structure = _matrix_structure(self, symmetric=symmetric, PSD=PSD, diag=diag)
        # boolean: an integer variable in [0, 1] (bounds tighter than [0, 1] are kept, looser ones refused)
        self.integer, self.boolean = bool(integer or boolean), bool(boolean)
        if boolean:
            for b, which in ((lb, "lb"), (ub, "ub")):
                if b is not None and np.any((np.asarray(b, float) < 0) | (np.asarray(b, float) > 1)):
                    raise ModelError(f"boolean variable {self.name!r}: {which} must lie in [0, 1], got {b!r}")
            lb, ub = (0.0 if lb is None else lb), (1.0 if ub is None else ub)
        # bounds are kept as given (a scalar stays 0-d: m.variable(10**9, lb=0) allocates nothing); the
        # dense array of the variable's shape is built on first use of .lb / .ub, by a backend that needs it
        self._bounds: dict = {"lb": None, "ub": None}
        self._dense: dict = {}
        self._set_bounds(_bound(lb, self, "lb"), _bound(ub, self, "ub"))
        self._value = None
        if value is not None:
            self.value = value

    def _set_bounds(self, lb, ub) -> None:
        if lb is not None and ub is not None and np.any(lb > ub):
            raise ModelError(f"variable {self.name!r}: lower bound exceeds upper bound somewhere "
                             f"(lb > ub at {int(np.sum(np.broadcast_to(lb > ub, self.shape)))} entries)")
        self._bounds, self._dense = {"lb": lb, "ub": ub}, {}

    def _dense_bound(self, which: str):
        b = self._bounds[which]
        if b is None or b.shape == self.shape:
            return b
        if self.size > _DENSE_BOUND_LIMIT:  # a read-only view: `x.lb is None`, printing, slicing cost nothing
            return np.broadcast_to(b, self.shape)
        if which not in self._dense:
            self._dense[which] = np.broadcast_to(b, self.shape).astype(float)  # a fresh, writable array
        return self._dense[which]

    def _change_bound(self, which: str, b) -> None:
        new = _bound(b, self, which)
        self._set_bounds(new if which == "lb" else self._bounds["lb"], new if which == "ub" else self._bounds["ub"])
        if self.model is not None and hasattr(self.model, "_touch"):
            self.model._touch()  # compiled problems (the cached cvxpy one too) are rebuilt with the new bound

    @property
    def lb(self):
        """Lower bound, an array of the variable's shape (None: unbounded below). Assigning it after a solve
        takes effect at the next solve."""
        return self._dense_bound("lb")

    @lb.setter
    def lb(self, b) -> None:
        self._change_bound("lb", b)

    @property
    def ub(self):
        """Upper bound, an array of the variable's shape (None: unbounded above)."""
        return self._dense_bound("ub")

    @ub.setter
    def ub(self, b) -> None:
        self._change_bound("ub", b)

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, v):
        if v is None:
            self._value = None
            return
        arr = _as_array(v, f"value of variable {self.name!r}")   # (a fresh float array)
        if not np.isfinite(arr).all():
            raise ModelError(f"value (warm start) of variable {self.name!r} contains "
                             f"{'NaN' if np.any(np.isnan(arr)) else 'inf'}; give finite numbers")
        if arr.shape == self.shape:
            self._value = arr
            return
        try:
            arr = np.broadcast_to(arr, self.shape).astype(float).copy()
        except ValueError:
            raise ShapeError(f"value for variable {self.name!r} has shape {arr.shape}, expected {self.shape}") from None
        self._value = arr

    def __str__(self) -> str:
        return self.name


_DENSE_BOUND_LIMIT = 10 ** 6  # entries; larger variables expose a scalar bound as a broadcast view


def _matrix_structure(var: "Variable", **flags: bool) -> str | None:
    """The one matrix structure declared on a variable: "symmetric", "PSD" (symmetric positive
    semidefinite) or "diag" (zero off the diagonal), or None. Each needs a square matrix."""
    on = [k for k, v in flags.items() if v]
    if not on:
        return None
    if len(on) > 1:
        raise ModelError(f"variable {var.name!r}: choose one of {', '.join(on)} (PSD implies symmetric)")
    if len(var.shape) != 2 or var.shape[0] != var.shape[1]:
        raise ShapeError(f"variable {var.name!r} is declared {on[0]} but its shape {var.shape} is not square")
    return on[0]


class Parameter(Leaf):
    """Data that can change between solves without rebuilding the compiled chain.

    Declared attributes (``nonneg``, ``nonpos``, ``symmetric``, ``PSD``) are promises about every value
    the parameter will take: each assignment is checked against them, and the cvxpy lowering passes them
    on, so DCP sign rules use them (``lam * od.norm1(w)`` is convex when ``lam`` is ``nonneg``).
    """

    ATTRIBUTES = ("nonneg", "nonpos", "symmetric", "PSD")
    _TOL = 1e-10  # cvxpy's own projection tolerance, so a value accepted here is accepted by cvxpy

    def __init__(self, shape=None, *, value=None, name: str | None = None, model=None,
                 nonneg: bool = False, nonpos: bool = False, symmetric: bool = False, PSD: bool = False):
        self.id = next(_ids)
        self.name = name or f"p{self.id}"
        self.model = model
        if value is None and shape is None:
            raise ModelError(f"parameter {self.name!r}: give a value or a shape")
        self.shape = _shape_of(shape) if shape is not None else np.shape(np.asarray(value))
        self.nonneg, self.nonpos, self.symmetric, self.PSD = bool(nonneg), bool(nonpos), bool(symmetric), bool(PSD)
        if self.nonneg and self.nonpos:
            raise ModelError(f"parameter {self.name!r} cannot be both nonneg and nonpos (it would be zero)")
        if (self.symmetric or self.PSD) and (len(self.shape) != 2 or self.shape[0] != self.shape[1]):
            raise ShapeError(f"parameter {self.name!r} is declared {'PSD' if self.PSD else 'symmetric'} "
                             f"but its shape {self.shape} is not square")
        self.version = 0
        self._value = None
        if value is not None:
            self.value = value

    @property
    def attributes(self) -> dict:
        """The declared attributes that are set, e.g. ``{"nonneg": True}`` (cvxpy's Parameter keywords)."""
        return {k: True for k in self.ATTRIBUTES if getattr(self, k)}

    def _check_attributes(self, arr: np.ndarray) -> None:
        what = f"parameter {self.name!r}"
        if self.nonneg and np.any(arr < 0):
            raise ModelError(f"{what} is declared nonneg but the new value has a negative entry (min {arr.min():g})")
        if self.nonpos and np.any(arr > 0):
            raise ModelError(f"{what} is declared nonpos but the new value has a positive entry (max {arr.max():g})")
        if self.symmetric or self.PSD:
            asym = float(np.max(np.abs(arr - arr.T), initial=0.0))
            if asym > self._TOL:
                raise ModelError(f"{what} is declared {'PSD' if self.PSD else 'symmetric'} but the new value is "
                                 f"not symmetric (max |P - P^T| = {asym:.3g})")
        if self.PSD and arr.size:
            lo = float(np.linalg.eigvalsh(arr)[0])
            if lo < -self._TOL:
                raise ModelError(f"{what} is declared PSD but the new value has a negative eigenvalue ({lo:.3g})")

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, v):
        arr = _as_array(v, f"parameter {self.name!r}")
        if arr.shape != self.shape:
            raise ShapeError(f"parameter {self.name!r} has shape {self.shape}; the new value has shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ModelError(f"parameter {self.name!r} contains NaN or inf")
        self._check_attributes(arr)
        self._value = arr.astype(float)
        self.version += 1

    def __str__(self) -> str:
        return self.name


class Uncertain(Leaf):
    """A quantity known only to lie in a set (`within`): constraints that read it must hold for every
    value in the set. Created by `Model.uncertain`; evaluates at its nominal value (the set's center)."""

    def __init__(self, shape, *, within, name: str | None = None, model=None):
        self.id = next(_ids)
        self.shape = _shape_of(shape)
        self.name = name or f"u{self.id}"
        self.model = model
        self.within = within
        dim = getattr(within, "dim", None)
        if dim is not None and dim != (int(np.prod(self.shape)) if self.shape else 1):
            raise ShapeError(f"uncertain {self.name!r} has shape {self.shape} but its set has dimension {dim}")
        center = getattr(within, "center", None)
        self._value = None if center is None else np.asarray(center, float).reshape(self.shape)
        self.version = 0

    @property
    def value(self):
        """The nominal value (the set's center) used when the expression is evaluated."""
        return self._value

    def __str__(self) -> str:
        return self.name


class Constant(Leaf):
    """A numpy/torch/Python constant. The data are copied once at construction, never mutated.

    A scipy.sparse matrix stays sparse (``sparse=True``, data a CSR copy): it may be the left operand of
    ``@`` (``L @ u``), the one place where a large stencil or incidence matrix is used, and lowers to a torch
    sparse CSR tensor, scipy CSR for the sparse lowering, and itself for cvxpy.
    """
    sparse = False

    def __init__(self, value, name: str | None = None):
        self.id = next(_ids)
        if type(value) in (float, int) and math.isfinite(value):   # the common scalar: no numpy round trip
            self.data = np.array(float(value))
            self.shape = ()
            self.name = name or f"{float(value):g}"
            return
        if _is_scipy_sparse(value):
            self.sparse = True
            self.data = _as_sparse(value, name or "constant")
            finite = np.all(np.isfinite(self.data.data))
        else:
            self.data = _as_array(value, name or "constant")
            finite = np.all(np.isfinite(self.data))
        if not finite:
            entries = self.data.tocoo() if self.sparse else None
            values = entries.data if self.sparse else np.ravel(self.data)
            bad = int(np.flatnonzero(~np.isfinite(values))[0])
            index = (int(entries.row[bad]), int(entries.col[bad])) if self.sparse else \
                tuple(int(i) for i in np.unravel_index(bad, self.data.shape))
            raise ModelError(f"constant {name + ' ' if name else ''}of shape {tuple(self.data.shape)} holds "
                             f"{values[bad]}" + (f" at index {index}" if index else "") + ": data must be finite")
        self.shape = tuple(self.data.shape)
        self.name = name or (f"sparse{self.shape}" if self.sparse else _const_name(self.data))

    def __str__(self) -> str:
        return self.name


class Op(Expr):
    """An operation node: `name` selects the shape rule (expr.ops) and each lowering's implementation."""

    def __init__(self, name: str, args: tuple[Expr, ...], attrs: dict, shape: tuple[int, ...]):
        self.name = name
        self._args = args
        self.attrs = attrs
        self.shape = shape

    @property
    def args(self) -> tuple[Expr, ...]:
        return self._args


def as_expr(x: Any) -> Expr:
    """Wrap Python scalars, numpy arrays and torch tensors as `Constant`; pass expressions through."""
    if isinstance(x, Expr):
        return x
    if isinstance(x, Constraint):
        raise ModelError(f"a constraint ({x}) cannot be used as an expression")
    _refuse_foreign(x)
    return Constant(x)


def _as_exprs(args: tuple, how: str) -> tuple:
    """`as_expr` of each; bad data beside an expression names that expression ("... (compared with 'x')")."""
    try:
        return tuple(as_expr(a) for a in args)
    except ModelError as e:
        named = [a for a in args if isinstance(a, Expr)]
        if not named:
            raise
        raise ModelError(f"{e} ({how} with {named[0].label(40)!r})") from None


def _refuse_foreign(x: Any) -> None:
    """A cvxpy object inside an optdsl expression: say so, and name the od.* spelling when there is one."""
    if (type(x).__module__ or "").startswith("cvxpy"):
        kind = type(x).__name__
        from .. import expr as _expr_pkg
        hint = (" (declare it with m.variable / m.parameter)" if kind in ("Variable", "Parameter") else
                f" (od.{kind}(...))" if kind in getattr(_expr_pkg, "__all__", ()) else "")
        raise ModelError(f"the cvxpy object {str(x)[:40]!r} ({kind}) cannot be mixed into an optdsl expression: write "
                         f"that part with od.* atoms{hint} on variables of the optdsl model")


def op(name: str, *args: Any, **attrs: Any) -> Op:
    spec = SPECS[name]
    exprs = _as_exprs(args, "combined")
    for i, a in enumerate(exprs):
        if isinstance(a, Constant) and a.sparse and not (name == "matmul" and i == 0):
            raise ModelError(f"the sparse matrix {a.name} can only be the left operand of @ (as in L @ x); "
                             f"it was used in '{name}'" + (" as the right operand: write (L.T @ x.T).T with "
                                                            "L.T taken in scipy" if name == "matmul" else ""))
    shape = spec.shape(exprs, attrs)
    return Op(name, exprs, attrs, shape)


class Constraint:
    """`lhs == rhs` or `lhs <= rhs` (``>=`` is stored flipped). Stored as ``expr = lhs - rhs`` (== | <=) 0."""

    def __init__(self, lhs: Any, rhs: Any, sense: str):
        if lhs is None or rhs is None:
            side = rhs if lhs is None else lhs
            raise ModelError(f"cannot compare {getattr(side, 'label', lambda: repr(side))()!r} with None "
                             f"('{sense}'): give a number or an array")
        lhs, rhs = _as_exprs((lhs, rhs), "compared")
        self.lhs, self.rhs, self.sense = lhs, rhs, sense
        self.expr = op("sub", lhs, rhs)  # shape-checks the comparison, naming both sides
        self.shape = self.expr.shape
        self.name: str | None = None

    @property
    def kind(self) -> str:
        return "eq" if self.sense == "==" else "ineq"

    def __bool__(self):
        # `x == y` between two Exprs is a Constraint; Python calls __bool__ for `if c:` and `in` checks, and
        # for the middle of a chained comparison `lo <= x <= hi` (evaluated as `(lo <= x) and (x <= hi)`).
        raise ModelError(f"constraint '{self}' has no truth value; pass it to Model.subject_to (a chained "
                         "comparison lo <= x <= hi is not supported: write od.between(lo, x, hi))")

    def __str__(self) -> str:
        return f"{self.lhs} {self.sense} {self.rhs}"

    __repr__ = __str__

    def violation(self):
        """Elementwise violation at the variables' current values (numpy, >= 0)."""
        v = np.asarray(self.expr.evaluate())
        return np.abs(v) if self.sense == "==" else np.maximum(v, 0.0)


class BetweenConstraint(Constraint):
    """``lo <= mid <= hi`` as one constraint (`od.between`): stored as ``stack([lo - mid, mid - hi]) <= 0``,
    so its dual has a leading axis of 2: ``[0]`` the multipliers of the lower side, ``[1]`` of the upper."""

    def __init__(self, lo: Any, mid: Any, hi: Any):
        lo, mid, hi = as_expr(lo), as_expr(mid), as_expr(hi)
        try:
            shape = tuple(np.broadcast_shapes(lo.shape, mid.shape, hi.shape))
        except ValueError:
            raise ShapeError(f"od.between({lo.label(30)}, {mid.label(30)}, {hi.label(30)}): shapes {lo.shape}, "
                             f"{mid.shape} and {hi.shape} do not broadcast") from None
        if isinstance(lo, Constant) and isinstance(hi, Constant) and np.any(lo.data > hi.data):
            raise ModelError(f"od.between(lo, {mid.label(30)}, hi): lo > hi at "
                             f"{int(np.sum(np.broadcast_to(lo.data > hi.data, shape)))} entries, so no point satisfies it")
        zeros = np.zeros(shape)
        sides = [side if side.shape == shape else op("add", side, zeros) for side in (lo - mid, mid - hi)]
        super().__init__(op("stack", *sides, axis=0), 0.0, "<=")
        self.lo, self.mid, self.hi = lo, mid, hi

    def __str__(self) -> str:
        return f"{self.lo} <= {self.mid} <= {self.hi}"

    __repr__ = __str__


class PSDConstraint(Constraint):
    """``lhs >> rhs``: the (symmetric part of the) square matrix ``expr = lhs - rhs`` is positive
    semidefinite, as cvxpy's ``>>``. Convex when `expr` is affine; solved through cvxpy (SDP); its dual
    is a PSD matrix Λ with L = f − ⟨Λ, expr⟩."""

    def __init__(self, lhs: Any, rhs: Any):
        super().__init__(lhs, rhs, ">>")
        if len(self.shape) != 2 or self.shape[0] != self.shape[1]:
            raise ShapeError(f"a semidefinite constraint needs a square matrix; {self.expr.label()!r} has shape "
                             f"{self.shape}")

    @property
    def kind(self) -> str:
        return "psd"

    def violation(self):
        """max(0, −λ_min) of the symmetric part at the variables' current values."""
        return psd_violation(np.asarray(self.expr.evaluate()))


def psd_violation(E: np.ndarray) -> float:
    """How far a square matrix's symmetric part is from the PSD cone: max(0, −λ_min((E + Eᵀ)/2))."""
    if E.size == 0:
        return 0.0
    return float(max(0.0, -np.linalg.eigvalsh((E + E.T) / 2)[0]))


class StructuralConstraint:
    """A constraint on structure rather than values (``od.acyclic(W)``); passes and backends give it meaning."""

    def __init__(self, kind: str, expr: Expr):
        self.kind, self.expr, self.name = kind, expr, None
        self.shape = ()

    def __str__(self) -> str:
        return f"{self.kind}({self.expr})"

    __repr__ = __str__

    def __bool__(self):
        raise ModelError(f"constraint '{self}' has no truth value; pass it to Model.subject_to")


def _is_scipy_sparse(v: Any) -> bool:
    mod = type(v).__module__ or ""
    if not mod.startswith("scipy.sparse"):
        return False
    import scipy.sparse as sp
    return sp.issparse(v)


def _as_sparse(v: Any, what: str):
    import scipy.sparse as sp
    if v.ndim != 2:
        raise ModelError(f"{what}: sparse constants must be 2-D matrices, got shape {v.shape}")
    try:
        return sp.csr_matrix(v, dtype=float, copy=True)
    except (TypeError, ValueError):
        raise ModelError(f"{what}: expected a numeric sparse matrix, got dtype {v.dtype}") from None


def _as_array(v: Any, what: str) -> np.ndarray:
    torch = sys.modules.get("torch")   # (not imported: `v` cannot be a tensor, and no import is paid for it)
    if torch is not None and isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    if isinstance(v, Expr):
        raise ModelError(f"{what}: expected numeric data, got the expression {v.label()!r}")
    _refuse_foreign(v)
    if v is None:
        raise ModelError(f"{what}: expected numeric data, got None")
    if np.iscomplexobj(v):  # numpy would drop the imaginary part with only a warning
        raise ModelError(f"{what}: complex data is not supported (models are real: split real and imaginary "
                         "parts into separate variables or constants)")
    try:
        arr = np.array(v, dtype=float)
    except (TypeError, ValueError):
        if any(isinstance(t, Expr) for t in np.ravel(np.array(v, dtype=object))):
            raise ModelError(f"{what}: a numpy array or list of optdsl expressions is not an expression: build "
                             "it with od.stack / od.hstack / od.vstack") from None
        raise ModelError(f"{what}: expected numeric data, got {type(v).__name__}") from None
    return arr


def _bound(b: Any, var: Variable, which: str):
    if b is None:
        return None
    if type(b) in (int, float) and not math.isnan(b) and abs(b) != math.inf:   # the common finite scalar bound
        return np.array(float(b))
    arr = _as_array(b, f"{which} of variable {var.name!r}")
    if np.any(np.isnan(arr)):
        raise ModelError(f"{which} of variable {var.name!r} contains NaN")
    if which == "lb" and np.any(np.isposinf(arr)) or which == "ub" and np.any(np.isneginf(arr)):
        raise ModelError(f"{which} of variable {var.name!r} is {'+inf' if which == 'lb' else '-inf'}"
                         f"{' somewhere' if arr.ndim else ''}: no value satisfies it (use "
                         f"{'-inf' if which == 'lb' else '+inf'} or None for no bound)")
    try:
        if np.broadcast_shapes(arr.shape, var.shape) != var.shape:
            raise ValueError
    except ValueError:
        raise ShapeError(f"{which} of variable {var.name!r} has shape {arr.shape}, which does not broadcast "
                         f"to the variable's shape {var.shape}") from None
    if which == "lb" and np.all(np.isneginf(arr)) or which == "ub" and np.all(np.isposinf(arr)):
        return None
    return arr  # compact: broadcast to the variable's shape only when a backend asks for .lb / .ub


def _const_name(a: np.ndarray) -> str:
    if a.ndim == 0:
        return f"{float(a):g}"
    if a.size <= 4:
        return np.array2string(a, precision=4, separator=", ").replace("\n", "")
    return f"const{a.shape}"
