"""`Model`: declare variables, parameters, an objective and named constraints; `solve()` compiles the
model into a `Problem`, lets dispatch pick a chain of passes and a backend, and maps the answer back.

Compilation is cached per model structure: changing a parameter's `.value` or a variable's warm start
re-solves with the same chain; adding a variable or constraint rebuilds it.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Optional

import numpy as np

from . import certificates
from .backends import BACKENDS
from .dispatch import Plan, explain_plan, make_plan
from .errors import ModelError, NotSolvableError, ShapeError, SolverError
from .expr.node import Constraint, Expr, Op, Parameter, StructuralConstraint, Uncertain, Variable, as_expr
from .graph import analyze, build_graph
from .problem import ConstraintItem, Problem, RawSolution
from .result import PrimalStatus, Result
from .solvers.autodiff import NonFinite
from .solvers.common import Status, resolve_device, threads_for


class Model:
    """An optimization model.

    >>> m = Model("demo")
    >>> x = m.variable(2, lb=0, name="x")
    >>> m.minimize(((x - 1) ** 2).sum())
    >>> m.subject_to(x.sum() == 1, name="budget")
    >>> res = m.solve()
    """

    def __init__(self, name: str = "model"):
        self.name = name
        self._variables: list[Variable] = []
        self._parameters: list[Parameter] = []
        self._objective: Optional[Expr] = None
        self._sense = "min"
        self._constraints: list[ConstraintItem] = []
        self._user_constraints: dict[str, Constraint] = {}
        self._levels: list = []              # follower problems (Model.level)
        self._saddle: Optional[dict] = None   # min-max declaration (Model.saddle / od.maximum_over)
        self._uncertain: list[Uncertain] = []
        self._structural: list[tuple[str, StructuralConstraint]] = []
        self._modules: list[tuple[str, Any]] = []
        self._version = 0
        self._cache: dict = {}
        self.last_result: Optional[Result] = None

    # --- declarations --------------------------------------------------------------------------
    def variable(self, shape: Any = (), *, lb: Any = None, ub: Any = None, name: Optional[str] = None,
                 value: Any = None, integer: bool = False, boolean: bool = False, symmetric: bool = False,
                 PSD: bool = False, diag: bool = False, **unsupported: Any) -> Variable:
        """A decision variable of `shape` with optional bounds and initial value (the warm start).
        ``integer=True`` restricts it to integers, ``boolean=True`` to {0, 1} (mixed-integer backends).
        ``symmetric=True``, ``PSD=True`` (symmetric positive semidefinite) or ``diag=True`` declare a square
        matrix's structure (convex models through cvxpy)."""
        name = name or f"x{len(self._variables)}"
        _refuse_keywords("m.variable", name, unsupported)
        self._check_new_name(name)
        v = Variable(shape, lb=lb, ub=ub, name=name, value=value, model=self, integer=integer, boolean=boolean,
                     symmetric=symmetric, PSD=PSD, diag=diag)
        self._variables.append(v)
        self._touch()
        return v

    def parameter(self, shape: Any = None, *, value: Any = None, name: Optional[str] = None, nonneg: bool = False,
                  nonpos: bool = False, symmetric: bool = False, PSD: bool = False, **unsupported: Any) -> Parameter:
        """Data that may change between solves (`p.value = ...`) without recompiling.

        ``nonneg``/``nonpos``/``symmetric``/``PSD`` declare what every value will satisfy (checked on each
        assignment); convexity analysis uses them, e.g. ``lam * od.norm1(w)`` is convex for ``nonneg=True``.
        """
        name = name or f"p{len(self._parameters)}"
        _refuse_keywords("m.parameter", name, unsupported)
        self._check_new_name(name)
        p = Parameter(shape, value=value, name=name, model=self, nonneg=nonneg, nonpos=nonpos,
                      symmetric=symmetric, PSD=PSD)
        self._parameters.append(p)
        self._touch()
        return p

    def minimize(self, expr: Any) -> None:
        self._set_objective(expr, "min")

    def maximize(self, expr: Any) -> None:
        self._set_objective(expr, "max")

    def subject_to(self, constraint: Any, name: Optional[str] = None, *, penalty: Optional[float] = None,
                   penalty_kind: str = "l1"):
        """Add a constraint (or a list of them). `penalty=ρ` makes it soft: ρ·violation joins the
        objective (``penalty_kind`` "l1" exact or "l2" quadratic) instead of being enforced."""
        if isinstance(constraint, (list, tuple)):
            base = name or f"c{len(self._constraints)}"
            return [self.subject_to(c, f"{base}[{i}]", penalty=penalty, penalty_kind=penalty_kind)
                    for i, c in enumerate(constraint)]
        if isinstance(constraint, (bool, np.bool_)):
            raise ModelError(f"constraint {name or ''} is a plain Python bool ({constraint}), not an optdsl "
                             "constraint: both sides are constants, or a comparison was made on numpy/Python "
                             "values instead of optdsl expressions".replace("constraint  is", "constraint is"))
        if isinstance(constraint, StructuralConstraint):
            return self._add_structural(constraint, name)
        if not isinstance(constraint, Constraint):
            raise ModelError(f"subject_to expects a constraint built with ==, <= or >=, got {type(constraint).__name__}")
        if penalty is not None and not (np.isscalar(penalty) and np.isfinite(penalty) and penalty > 0):
            raise ModelError(f"penalty for constraint {name!r} must be a positive number, got {penalty!r}")
        if penalty_kind not in ("l1", "l2"):
            raise ModelError(f"penalty_kind must be 'l1' or 'l2', got {penalty_kind!r}")
        name = name or f"c{len(self._constraints)}"
        self._register_constraint_name(name, constraint, f"constraint {name!r}")
        self._constraints.append(ConstraintItem(name, constraint.kind, constraint.expr,
                                                None if penalty is None else float(penalty), penalty_kind))
        self._touch()
        return constraint

    def _register_constraint_name(self, name: str, constraint, what: str) -> None:
        if name in self._user_constraints:
            raise ModelError(f"a constraint named {name!r} already exists in model {self.name!r}")
        self._check_owned(constraint.expr, what)
        constraint.name = name
        self._user_constraints[name] = constraint

    def _add_structural(self, c: StructuralConstraint, name: Optional[str]):
        if not isinstance(c.expr, Variable):
            raise ModelError(f"{c.kind}(...) must be applied to a matrix variable, got {c.expr.label()!r}")
        name = name or f"{c.kind}{len(self._structural)}"
        self._register_constraint_name(name, c, f"constraint {name!r}")
        self._structural.append((name, c))
        self._touch()
        return c

    # --- levels, min-max, robust, modules -------------------------------------------------------
    def level(self, name: str):
        """Open a follower problem: ``inner = m.level("inner")``; ``inner.variable``, ``inner.minimize``,
        ``inner.subject_to``; nest with ``inner.level(...)``."""
        return self._new_level(name, parent=None)

    def _new_level(self, name: str, parent):
        from .levels import Level
        if any(lv.name == name for lv in self._levels):
            raise ModelError(f"model {self.name!r} already has a level named {name!r}")
        lv = Level(self, name, parent)
        self._levels.append(lv)
        self._touch()
        return lv

    def saddle(self, L: Any, min_vars: Iterable[Variable], max_vars: Iterable[Variable]) -> None:
        """Declare the saddle-point problem min over `min_vars`, max over `max_vars` of `L`."""
        L = as_expr(L)
        if L.size != 1:
            raise ShapeError(f"the saddle function must be a scalar; {L.label()!r} has shape {L.shape}")
        self._check_owned(L, "the saddle function")
        mins, maxs = list(min_vars), list(max_vars)
        both = {v.name for v in mins} & {v.name for v in maxs}
        if both:
            raise ModelError(f"variables {sorted(both)} are listed for both the min and the max player")
        for v in mins + maxs:
            if not isinstance(v, Variable) or v.model is not self:
                raise ModelError(f"saddle players must be variables of model {self.name!r}, got {v!r}")
        self._saddle = {"L": L if L.shape == () else L.reshape(()), "min_vars": tuple(mins), "max_vars": tuple(maxs)}
        self._objective, self._sense = self._saddle["L"], "min"
        self._touch()

    def uncertain(self, shape: Any = (), *, within: Any = None, name: Optional[str] = None) -> Uncertain:
        """An uncertain quantity in the set `within` (``od.Box``, ``od.Ellipsoid``, ``od.Budget``,
        ``od.Polyhedron``); every constraint that reads it must hold for all of its values."""
        name = name or f"u{len(self._uncertain)}"
        if within is None:
            raise ModelError(f"uncertain {name!r} needs a set: within=od.Box(...), od.Ellipsoid(...), ...")
        self._check_new_name(name)
        if hasattr(within, "for_shape"):  # a set given without arrays takes the quantity's shape (centre 0)
            try:
                within = within.for_shape(shape)
            except ValueError as err:
                raise ShapeError(f"uncertain {name!r}: {err}") from None
        u = Uncertain(shape, within=within, name=name, model=self)
        self._uncertain.append(u)
        self._touch()
        return u

    def recourse(self, shape: Any = (), **kw) -> Variable:
        """A second-stage (wait-and-see) variable of a two-stage robust model: chosen after the
        uncertainty is revealed."""
        v = self.variable(shape, **kw)
        v.recourse = True
        return v

    def module(self, net: Any, name: Optional[str] = None) -> Any:
        """Declare the parameters of a torch ``nn.Module`` as decision variables, in place (no copies):
        solving updates `net` itself. Pair with ``od.mean(loss, over=data, batch=B)``."""
        import torch
        if not isinstance(net, torch.nn.Module):
            raise ModelError(f"m.module expects a torch.nn.Module, got {type(net).__name__}")
        if not any(p.requires_grad for p in net.parameters()):
            raise ModelError(f"module {name or type(net).__name__!r} has no trainable parameters")
        self._modules.append((name or type(net).__name__, net))
        self._touch()
        return net

    def constraint(self, name: str) -> Constraint:
        try:
            return self._user_constraints[name]
        except KeyError:
            raise ModelError(f"model {self.name!r} has no constraint named {name!r}; it has: "
                             f"{', '.join(self._user_constraints) or 'none'}") from None

    @property
    def variables(self) -> list[Variable]:
        return list(self._variables)

    @property
    def parameters(self) -> list[Parameter]:
        return list(self._parameters)

    @property
    def constraints(self) -> dict[str, Constraint]:
        return dict(self._user_constraints)

    @property
    def objective(self) -> Optional[Expr]:
        return self._objective

    # --- compilation ---------------------------------------------------------------------------
    def to_problem(self) -> Problem:
        cached = self._cache.get("problem")
        if cached is not None:
            return cached
        if self._objective is None:
            if not self._constraints:
                raise ModelError(f"model {self.name!r} has no objective and no constraints")
            objective: Expr = as_expr(0.0)  # a feasibility problem
        else:
            objective = self._objective
        prob = Problem(objective, self._sense, tuple(self._constraints), tuple(self._variables),
                       extensions=self._extensions())
        self._cache["problem"] = prob
        return prob

    def _extensions(self) -> dict:
        from .levels import snapshot
        ext: dict = {}
        if self._levels:
            ext["bilevel"] = snapshot(self._levels)
        if self._saddle is not None:
            ext["minmax"] = self._saddle
            self._check_saddle_constraints()
        if self._uncertain:
            ext["robust"] = tuple(self._uncertain)
        if any(getattr(v, "recourse", False) for v in self._variables):
            ext["recourse"] = tuple(v for v in self._variables if getattr(v, "recourse", False))
        if self._structural:
            for name, c in self._structural:
                ext.setdefault(c.kind, []).append((name, c.expr))
        if self._modules:
            ext["module"] = tuple(self._modules)
        if self._objective is not None and "finite_sum" in self._objective.op_names():
            ext["finite_sum"] = True
        return ext

    def _check_saddle_constraints(self) -> None:
        mins = set(self._saddle["min_vars"])
        maxs = set(self._saddle["max_vars"])
        for c in self._constraints:
            vs = set(c.expr.variables())
            if vs & mins and vs & maxs:
                raise ModelError(f"constraint {c.name!r} couples the min player's and the max player's variables "
                                 f"({', '.join(sorted(v.name for v in vs))}); a saddle model needs separate feasible "
                                 "sets for the two players")

    def plan(self, solver: Optional[str] = None) -> Plan:
        key = ("plan", solver)
        if key in self._cache and not self._cache[key].holds():
            # a rewrite relied on a parameter's sign, which has changed: plan (and compile) again
            for k in [k for k in self._cache if k[0] in ("plan", "compiled") and k[1] == solver]:
                del self._cache[k]
        if key not in self._cache:
            self._cache[key] = make_plan(self.to_problem(), solver)
        return self._cache[key]

    def explain(self, solver: Optional[str] = None) -> str:
        """The chain dispatch chooses and, for every other backend, why it was not chosen (or, when none
        fits, why each backend and rewrite refused)."""
        try:
            return explain_plan(self.plan(solver))
        except NotSolvableError as e:
            return f"tags: {', '.join(self.tags())}\n{e}"

    # --- solving -------------------------------------------------------------------------------
    def solve(self, solver: Optional[str] = None, *, device: str = "cpu", dtype: Any = None,
              callback: Optional[Callable[[dict], Optional[bool]]] = None, **options: Any) -> Result:
        """Solve the model; returns a `Result` and stores the solution in each variable's `.value`.

        ``solver``: a backend name (``optdsl solvers`` lists them) or None for automatic dispatch.
        ``callback(info)``: called every iteration with ``iteration``, ``objective``, ``values``...;
        returning False stops the solve with status INTERRUPTED (so does Ctrl-C).
        ``options``: the backend's options (e.g. ``max_iter``, ``tol``, ``time_limit``).
        """
        t0 = time.perf_counter()
        if solver is not None and solver not in BACKENDS:
            raise SolverError(f"unknown solver {solver!r}; known solvers: {', '.join(sorted(BACKENDS))}")
        device, dtype = resolve_device(device, dtype)
        self._check_data()
        plan = self.plan(solver)
        backend = plan.backend
        opts = backend.check_options({k: v for k, v in options.items() if v is not None})
        ckey = ("compiled", solver, str(device), str(dtype))
        if ckey not in self._cache:
            plan.problem.payload["_convex"] = "convex" in analyze(plan.source).properties
            self._cache[ckey] = backend.compile(plan.problem, device=device, dtype=dtype)
        compiled = self._cache[ckey]
        t1 = time.perf_counter()
        try:
            with threads_for(self._size(), device):
                raw = backend.solve(compiled, plan.problem, opts, callback)
        except KeyboardInterrupt:
            raw = RawSolution(Status.INTERRUPTED, message="interrupted (Ctrl-C) before a point was available")
        except NonFinite as e:  # any backend: NaN/inf in the model's own functions is a status, not a traceback
            raw = RawSolution(Status.NUMERICAL_ERROR, message=str(e))
        t2 = time.perf_counter()
        for step in reversed(plan.steps):
            raw = step.pass_.invert(raw, step.inverse)
        result = self._result(raw, plan, {"compile": t1 - t0, "solve": t2 - t1})
        self.last_result = result
        return result

    def _result(self, raw: RawSolution, plan: Plan, times: dict) -> Result:
        source = plan.source
        certs: dict[str, Any] = dict(raw.certificates)
        # a backend may evaluate the certificates below itself (ipopt: on its CasADi graph); they are the
        # user's model's only when no pass rewrote the problem
        at_point = raw.extras.pop("at_point", None)
        if plan.steps:
            at_point = None
        values = raw.values if raw.status.has_point else {}
        if values and not all(np.all(np.isfinite(a)) for a in values.values()):
            values = {}  # a diverged iterate is not a point to hand back (or to warm-start from)
            certs["nonfinite_iterate"] = True
        objective = raw.objective
        primal = PrimalStatus.NO_SOLUTION
        if values:
            for v, val in values.items():
                v.value = val
            viol = at_point["violations"] if at_point else certificates.violations(source, values)
            worst = max(viol, key=viol.get) if viol else None
            certs["max_violation"] = viol[worst] if worst else 0.0
            if worst and viol[worst] > 1e-9:
                certs["worst_constraint"] = worst
            soft = raw.extras.get("soft_violation")
            if soft:  # soft constraints may be violated by design: reported, not counted as infeasibility
                sv = {k: float(np.max(v, initial=0.0)) for k, v in soft.items()}
                certs["soft_violation"] = sv
                certs["max_soft_violation"] = max(sv.values())
            # (a bilevel model's duals are the follower's: the leader's Lagrangian is not the certificate there)
            if (certificates.is_smooth(source) and raw.duals
                    and not source.extensions.get("bilevel")):
                st = (at_point["stationarity"] if at_point and certificates.has_multipliers(source, values, raw.duals)
                      else certificates.stationarity(source, values, raw.duals))
                if st is not None:
                    certs["kkt_stationarity"] = st
            feasible = certificates.is_feasible(source, values, viol)  # each row against its own scale
            primal = PrimalStatus.FEASIBLE_POINT if feasible else PrimalStatus.INFEASIBLE_POINT
            if not (source.extensions.get("robust") or source.extensions.get("recourse")):
                try:  # the user's objective at the point (without penalty terms added by passes)
                    objective = at_point["objective"] if at_point else float(source.objective.evaluate(values))
                except Exception:  # a black box may fail at the end point; keep the backend's value
                    pass
        if values and raw.status == Status.NUMERICAL_ERROR:
            primal = PrimalStatus.UNKNOWN
        elif source.extensions.get("module") and raw.status.has_point and raw.iterations > 0:
            primal = PrimalStatus.FEASIBLE_POINT  # the module's parameters hold the point, updated in place
        msg = raw.message
        if raw.status == Status.INFEASIBLE and certs.get("worst_constraint"):
            msg = f"{msg}; largest violation {certs['max_violation']:.3g} in constraint {certs['worst_constraint']!r}"
        return Result(status=raw.status, primal_status=primal, objective=objective,
                      values={v.name: np.asarray(a) for v, a in values.items()},
                      duals={k: np.asarray(v) for k, v in raw.duals.items()}, certificates=certs,
                      history=raw.history, counts=raw.counts, iterations=raw.iterations, times=times,
                      chain=plan.chain, solver=plan.backend.name, message=msg, extras=raw.extras)

    # --- inspection ----------------------------------------------------------------------------
    def graph(self):
        """The problem graph (networkx DiGraph): variables/parameters -> objective/constraints."""
        return build_graph(self.to_problem())

    def tags(self) -> list[str]:
        return analyze(self.to_problem()).all()

    def __str__(self) -> str:
        lines = [f"Model {self.name!r}"]
        for v in self._variables:
            b = []
            if v.lb is not None:
                b.append(f"{_bound_str(v.lb)} <= {v.name}")
            if v.ub is not None:
                b.append(f"{v.name} <= {_bound_str(v.ub)}")
            shape = "scalar" if v.shape == () else "x".join(map(str, v.shape))
            shape += f", {v.structure}" if getattr(v, "structure", None) else ""
            shape += ", boolean" if getattr(v, "boolean", False) else ", integer" if getattr(v, "integer", False) else ""
            lines.append(f"  variable  {v.name} ({shape})" + (f"   {', '.join(b)}" if b else ""))
        for p in self._parameters:
            lines.append(f"  parameter {p.name} {p.shape}" + "".join(f", {k}" for k in p.attributes))
        for u in self._uncertain:
            lines.append(f"  uncertain {u.name} {u.shape} in {u.within!r}")
        for lv in self._levels:
            head = f"  level {lv.name!r}" + (f" (inside {lv.parent.name!r})" if lv.parent else "")
            obj = f"{'minimize' if lv.sense == 'min' else 'maximize'} {lv.objective}" if lv.objective is not None else "(no objective)"
            over = [v.name for v in lv.variables] + [f"module {name}" for name, _ in lv.modules]
            lines.append(f"{head}: over {', '.join(over)}: {obj}")
            lines += [f"      {c.name} : {self._user_constraints[c.name]}" for c in lv.constraints]
        if self._saddle is not None:
            lines.append(f"  min over {', '.join(v.name for v in self._saddle['min_vars'])}, "
                         f"max over {', '.join(v.name for v in self._saddle['max_vars'])}:  {self._saddle['L']}")
        for name, c in self._structural:
            lines.append(f"  structure {name} : {c}")
        for name, _ in self._modules:
            lines.append(f"  module    {name} (parameters updated in place)")
        if self._objective is not None and self._saddle is None:
            lines.append(f"  {'minimize' if self._sense == 'min' else 'maximize'}  {self._objective}")
        if self._constraints:
            lines.append("  subject to")
            width = max(len(c.name) for c in self._constraints)
            for c in self._constraints:
                uc = self._user_constraints.get(c.name)
                soft = f"   [soft, {c.penalty_kind} penalty {c.penalty:g}]" if c.soft else ""
                lines.append(f"    {c.name.ljust(width)} : {uc}{soft}")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:  # notebooks
        from .plotting import model_html
        return model_html(self)

    def _repr_latex_(self) -> Optional[str]:
        from .plotting import model_latex
        try:
            return model_latex(self)
        except Exception:  # noqa: BLE001 - an atom without a LaTeX form: the notebook falls back to the HTML view
            return None

    def to_latex(self) -> str:
        """The model in LaTeX (through sympy)."""
        from .lower import sympy as sym   # (sympy: ~0.4 s of import that solving never needs)
        if self._objective is None:
            head = r"\text{find} & " + ", ".join(v.name for v in self._variables)
        else:
            head = (r"\min" if self._sense == "min" else r"\max") + r" & " + sym.to_latex(self._objective)
        rows = [head]
        for c in self._constraints:
            uc = self._user_constraints[c.name]
            rel = {"==": "=", "<=": r"\le", ">>": r"\succeq"}[uc.sense]
            if hasattr(uc, "mid"):  # od.between(lo, x, hi)
                rows.append(rf"\text{{{c.name}}}: & {sym.to_latex(uc.lo)} \le {sym.to_latex(uc.mid)} \le {sym.to_latex(uc.hi)}")
                continue
            rows.append(rf"\text{{{c.name}}}: & {sym.to_latex(uc.lhs)} {rel} {sym.to_latex(uc.rhs)}")
        for lv in self._levels:
            opt = r"\min" if lv.sense == "min" else r"\max"
            over = ", ".join([v.name for v in lv.variables] + [rf"\theta_{{\text{{{name}}}}}" for name, _ in lv.modules])
            rows.append(rf"\text{{level {lv.name}}}: & {over} \in \arg{opt}_{{{over}}}\; {sym.to_latex(lv.objective)}")
            for c in lv.constraints:
                uc = self._user_constraints[c.name]
                rel = {"==": "=", "<=": r"\le", ">>": r"\succeq"}[uc.sense]
                rows.append(rf"\quad\text{{{c.name}}}: & {sym.to_latex(uc.lhs)} {rel} {sym.to_latex(uc.rhs)}")
        for v in self._variables:
            if v.lb is not None or v.ub is not None:
                lo = "" if v.lb is None else f"{_bound_str(v.lb)} \\le "
                hi = "" if v.ub is None else f" \\le {_bound_str(v.ub)}"
                rows.append(rf" & {lo}{v.name}{hi}")
        return "\\begin{array}{ll}\n" + " \\\\\n".join(rows) + "\n\\end{array}"

    # --- internals -----------------------------------------------------------------------------
    def _set_objective(self, expr: Any, sense: str) -> None:
        expr = as_expr(expr)
        if expr.size != 1:
            raise ShapeError(f"the objective must be a scalar; {expr.label()!r} has shape {expr.shape} "
                             "(use .sum() or a norm)")
        self._check_owned(expr, "the objective")
        if isinstance(expr, Op) and expr.name == "max_over":
            if sense != "min":
                raise ModelError("od.maximum_over(...) belongs in minimize(): min over x of max over y")
            maxs = list(expr.attrs["max_vars"])
            mins = [v for v in expr.args[0].variables() if v not in set(maxs)]
            self.saddle(expr.args[0], mins, maxs)
            return
        self._objective = expr if expr.shape == () else expr.reshape(())
        self._sense = sense
        self._saddle = None
        self._touch()

    def _check_owned(self, expr: Expr, what: str) -> None:
        for leaf in expr.leaves():
            owner = getattr(leaf, "model", None)
            if isinstance(leaf, (Variable, Parameter, Uncertain)) and owner is not self:
                where = f"model {owner.name!r}" if owner is not None else "no model"
                raise ModelError(f"{what} uses {type(leaf).__name__.lower()} {leaf.name!r}, which belongs to "
                                 f"{where}, not to model {self.name!r}")

    def _check_new_name(self, name: str) -> None:
        taken = {v.name for v in self._variables} | {p.name for p in self._parameters} | {u.name for u in self._uncertain}
        if name in taken:
            raise ModelError(f"model {self.name!r} already has a variable or parameter named {name!r}")

    def _size(self) -> int:
        """Scalars the backend works on (variables, constraint rows, module parameters): picks threading."""
        n = sum(v.size for v in self._variables) + sum(c.expr.size for c in self._constraints)
        return n + sum(int(p.numel()) for _, net in self._modules for p in net.parameters())

    def _check_data(self) -> None:
        for p in self._parameters:
            if p.value is None:
                raise ModelError(f"parameter {p.name!r} has no value; set {p.name}.value before solving")

    def _touch(self) -> None:
        self._version += 1
        self._cache.clear()


# keywords a user of CVXPY/JuMP/Pyomo may reach for that optdsl does not have (yet): say so in one line
_MISSING_KINDS = {
    "integer": "integer-valued", "boolean": "boolean-valued", "complex": "complex", "imag": "imaginary",
    "hermitian": "Hermitian", "NSD": "negative semidefinite (declare the negation PSD instead)",
    "pos": "strictly positive (use nonneg)", "neg": "strictly negative (use nonpos)", "sparsity": "sparse-pattern",
}


def _refuse_keywords(where: str, name: str, keywords: dict) -> None:
    if not keywords:
        return
    key = sorted(keywords)[0]
    noun = where.split(".")[-1]
    if key in _MISSING_KINDS:
        raise ModelError(f"{where}({name!r}, {key}=...): {_MISSING_KINDS[key]} {noun}s are not supported in optdsl")
    raise ModelError(f"{where}({name!r}, {key}=...): unknown keyword {key!r}; optdsl {noun}s have no such feature")


def _bound_str(b: np.ndarray) -> str:
    if b.size and not any(b.strides):  # a scalar bound broadcast (large variables): do not copy it to print it
        return f"{b.flat[0]:g}"
    flat = np.unique(b)
    return f"{flat[0]:g}" if flat.size == 1 else f"[{', '.join(f'{x:g}' for x in b.ravel()[:4])}{', ...' if b.size > 4 else ''}]"


def explain(model: Model, solver: Optional[str] = None) -> str:
    return model.explain(solver)
