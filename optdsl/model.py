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
from .errors import ModelError, ShapeError, SolverError
from .expr.node import Constraint, Expr, Parameter, Variable, as_expr
from .graph import analyze, build_graph
from .lower import sympy as sym
from .problem import ConstraintItem, Problem, RawSolution
from .result import PrimalStatus, Result
from .solvers.common import Status, resolve_device


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
        self._version = 0
        self._cache: dict = {}
        self.last_result: Optional[Result] = None

    # --- declarations --------------------------------------------------------------------------
    def variable(self, shape: Any = (), *, lb: Any = None, ub: Any = None, name: Optional[str] = None,
                 value: Any = None) -> Variable:
        """A decision variable of `shape` with optional bounds and initial value (the warm start)."""
        name = name or f"x{len(self._variables)}"
        self._check_new_name(name)
        v = Variable(shape, lb=lb, ub=ub, name=name, value=value, model=self)
        self._variables.append(v)
        self._touch()
        return v

    def parameter(self, shape: Any = None, *, value: Any = None, name: Optional[str] = None) -> Parameter:
        """Data that may change between solves (`p.value = ...`) without recompiling."""
        name = name or f"p{len(self._parameters)}"
        self._check_new_name(name)
        p = Parameter(shape, value=value, name=name, model=self)
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
        if not isinstance(constraint, Constraint):
            raise ModelError(f"subject_to expects a constraint built with ==, <= or >=, got {type(constraint).__name__}")
        if penalty is not None and not (np.isscalar(penalty) and np.isfinite(penalty) and penalty > 0):
            raise ModelError(f"penalty for constraint {name!r} must be a positive number, got {penalty!r}")
        if penalty_kind not in ("l1", "l2"):
            raise ModelError(f"penalty_kind must be 'l1' or 'l2', got {penalty_kind!r}")
        name = name or f"c{len(self._constraints)}"
        if name in self._user_constraints:
            raise ModelError(f"a constraint named {name!r} already exists in model {self.name!r}")
        self._check_owned(constraint.expr, f"constraint {name!r}")
        constraint.name = name
        self._user_constraints[name] = constraint
        self._constraints.append(ConstraintItem(name, constraint.kind, constraint.expr,
                                                None if penalty is None else float(penalty), penalty_kind))
        self._touch()
        return constraint

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
        prob = Problem(objective, self._sense, tuple(self._constraints), tuple(self._variables))
        self._cache["problem"] = prob
        return prob

    def plan(self, solver: Optional[str] = None) -> Plan:
        key = ("plan", solver)
        if key not in self._cache:
            self._cache[key] = make_plan(self.to_problem(), solver)
        return self._cache[key]

    def explain(self, solver: Optional[str] = None) -> str:
        """The chain dispatch chooses and, for every other backend, why it was not chosen."""
        return explain_plan(self.plan(solver))

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
            raw = backend.solve(compiled, plan.problem, opts, callback)
        except KeyboardInterrupt:
            raw = RawSolution(Status.INTERRUPTED, message="interrupted (Ctrl-C) before a point was available")
        t2 = time.perf_counter()
        for step in reversed(plan.steps):
            raw = step.pass_.invert(raw, step.inverse)
        result = self._result(raw, plan, {"compile": t1 - t0, "solve": t2 - t1})
        self.last_result = result
        return result

    def _result(self, raw: RawSolution, plan: Plan, times: dict) -> Result:
        source = plan.source
        certs: dict[str, Any] = dict(raw.certificates)
        values = raw.values if raw.status.has_point else {}
        objective = raw.objective
        primal = PrimalStatus.NO_SOLUTION
        if values:
            for v, val in values.items():
                v.value = val
            viol = certificates.violations(source, values)
            worst = max(viol, key=viol.get) if viol else None
            certs["max_violation"] = viol[worst] if worst else 0.0
            if worst and viol[worst] > 1e-9:
                certs["worst_constraint"] = worst
            if "smooth" in analyze(source).properties and raw.duals:
                st = certificates.stationarity(source, values, raw.duals)
                if st is not None:
                    certs["kkt_stationarity"] = st
            feas_tol = 1e-6 * (1 + max((float(np.max(np.abs(a), initial=0)) for a in values.values()), default=0))
            primal = PrimalStatus.FEASIBLE_POINT if certs["max_violation"] <= max(feas_tol, 1e-6) else PrimalStatus.INFEASIBLE_POINT
            try:
                objective = float(source.objective.evaluate(values))
            except Exception:  # a black box may fail at the end point; keep the backend's value
                pass
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
            lines.append(f"  variable  {v.name} ({shape})" + (f"   {', '.join(b)}" if b else ""))
        for p in self._parameters:
            lines.append(f"  parameter {p.name} {p.shape}")
        if self._objective is not None:
            lines.append(f"  {'minimize' if self._sense == 'min' else 'maximize'}  {self._objective}")
        if self._constraints:
            lines.append("  subject to")
            width = max(len(c.name) for c in self._constraints)
            for c in self._constraints:
                uc = self._user_constraints[c.name]
                soft = f"   [soft, {c.penalty_kind} penalty {c.penalty:g}]" if c.soft else ""
                lines.append(f"    {c.name.ljust(width)} : {uc}{soft}")
        return "\n".join(lines)

    __repr__ = __str__

    def to_latex(self) -> str:
        """The model in LaTeX (through sympy)."""
        if self._objective is None:
            head = r"\text{find} & " + ", ".join(v.name for v in self._variables)
        else:
            head = (r"\min" if self._sense == "min" else r"\max") + r" & " + sym.to_latex(self._objective)
        rows = [head]
        for c in self._constraints:
            uc = self._user_constraints[c.name]
            rel = {"==": "=", "<=": r"\le"}[uc.sense]
            rows.append(rf"\text{{{c.name}}}: & {sym.to_latex(uc.lhs)} {rel} {sym.to_latex(uc.rhs)}")
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
        self._objective = expr if expr.shape == () else expr.reshape(())
        self._sense = sense
        self._touch()

    def _check_owned(self, expr: Expr, what: str) -> None:
        for leaf in expr.leaves():
            owner = getattr(leaf, "model", None)
            if isinstance(leaf, (Variable, Parameter)) and owner is not self:
                where = f"model {owner.name!r}" if owner is not None else "no model"
                raise ModelError(f"{what} uses {type(leaf).__name__.lower()} {leaf.name!r}, which belongs to "
                                 f"{where}, not to model {self.name!r}")

    def _check_new_name(self, name: str) -> None:
        taken = {v.name for v in self._variables} | {p.name for p in self._parameters}
        if name in taken:
            raise ModelError(f"model {self.name!r} already has a variable or parameter named {name!r}")

    def _check_data(self) -> None:
        for p in self._parameters:
            if p.value is None:
                raise ModelError(f"parameter {p.name!r} has no value; set {p.name}.value before solving")

    def _touch(self) -> None:
        self._version += 1
        self._cache.clear()


def _bound_str(b: np.ndarray) -> str:
    flat = np.unique(b)
    return f"{flat[0]:g}" if flat.size == 1 else f"[{', '.join(f'{x:g}' for x in b.ravel()[:4])}{', ...' if b.size > 4 else ''}]"


def explain(model: Model, solver: Optional[str] = None) -> str:
    return model.explain(solver)
