"""Dispatch decides DCP-convexity once per model and builds the cvxpy problem only for the cvxpy backend.

The fast DCP rules (graph._surely_dcp) must agree with cvxpy wherever they answer; the DCP HS models that go to
ipopt must not be lowered to cvxpy at all while planning (counted lowerings, not time).
"""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import optdsl as od
from optdsl import graph
from optdsl.lower.cvxpy import CvxpyLowering

HS = Path(__file__).resolve().parent.parent / "problems" / "hs"
DCP_HS = ["hs021", "hs028", "hs048", "hs049", "hs050", "hs051", "hs052"]


def _hs(name):
    spec = importlib.util.spec_from_file_location(f"t_{name}", HS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("path", sorted(HS.glob("hs*.py")), ids=lambda p: p.stem)
def test_fast_rules_agree_with_cvxpy_on_hs(path):
    p = _hs(path.stem).build().to_problem()
    fast = graph._surely_dcp(p)
    assert fast == (path.stem in DCP_HS)          # the rules cover every DCP HS model ...
    assert (graph._dcp(p) is None) == (path.stem in DCP_HS)   # ... and cvxpy agrees on each


def _model(objective, *constraints):
    m = od.Model("t")
    x = m.variable(3, name="x")
    y = m.variable(name="y")
    m.minimize(objective(x, y))
    for c in constraints:
        m.subject_to(c(x, y))
    return m.to_problem()


@pytest.mark.parametrize("objective,constraint", [
    (lambda x, y: -od.square(x[0]), lambda x, y: x[1] <= 1),                 # concave objective
    (lambda x, y: od.square(x[0]), lambda x, y: od.square(x[1]) == 1),       # non-affine equality
    (lambda x, y: od.square(x[0]), lambda x, y: 1 - od.square(x[1]) <= 0),   # concave inequality
    (lambda x, y: -2 * od.square(x[0]), lambda x, y: x[1] <= 1),             # negative weight
    (lambda x, y: od.square(x[0]) / -2, lambda x, y: y >= 0),                # division by a negative constant
])
def test_fast_rules_never_claim_a_non_dcp_model(objective, constraint):
    p = _model(objective, constraint)
    assert not graph._surely_dcp(p)
    assert graph._dcp(p) is not None


def test_fast_rules_on_convex_scalar_models_match_cvxpy():
    p = _model(lambda x, y: 3 * od.square(x[0] - y) + (x[1] + 2 * x[2]) ** 4 / 5 + x.sum(),
               lambda x, y: od.square(x[2]) - y <= 4, lambda x, y: x.mean() - 2 * y == 1)
    assert graph._surely_dcp(p)
    assert graph._dcp(p) is None
    m = od.Model("p")
    x = m.variable(2, name="x")
    m.minimize(m.parameter(value=2.0, name="lam", nonneg=True) * od.square(x[0]))   # parameters: cvxpy decides
    m.subject_to(x[1] <= 1)
    q = m.to_problem()
    assert not graph._surely_dcp(q) and graph._dcp(q) is None
    odd = _model(lambda x, y: (x[0] - 1) ** 3, lambda x, y: x[1] <= 1)       # cvxpy: convex on its domain x >= 1
    assert not graph._surely_dcp(odd) and graph._dcp(odd) is None


@pytest.mark.parametrize("name", ["hs051", "hs021"])
def test_planning_a_dcp_model_for_ipopt_lowers_nothing_to_cvxpy(name, monkeypatch):
    m = _hs(name).build()
    calls = []
    original = CvxpyLowering.lower
    monkeypatch.setattr(CvxpyLowering, "lower", lambda self, e: calls.append(e) or original(self, e))
    plan = m.plan()
    assert plan.backend.name == "ipopt"
    assert "convex_to_cvxpy -> cvxpy" in m.explain()   # still judged DCP: cvxpy is the costed alternative
    assert calls == []
    r = m.solve(solver="cvxpy")                         # and the cvxpy route still builds and solves it
    assert r.status.name == "OPTIMAL"
    assert np.isclose(r.objective, _hs(name).EXPECTED["objective"], atol=1e-5, rtol=1e-6)


def test_fast_rules_leave_a_data_mean_objective_to_the_other_checks():
    """od.mean(..., over=data) is an op with no expression operands: outside the rules, and not DCP."""
    m = od.Model("fs")
    x = m.variable(2, name="x")
    data = np.arange(6.0).reshape(3, 2)
    m.minimize(od.mean(lambda b: ((b @ x) ** 2).mean(), over=(data,), batch=3) + od.square(x[0]))
    m.subject_to(x[1] <= 1)
    p = m.to_problem()
    assert not graph._surely_dcp(p)
    assert graph._dcp(p, culprit=False) is not None
