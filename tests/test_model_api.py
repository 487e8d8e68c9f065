"""Unit tests of the modeling layer (errors, duals/sign, soft constraints, results, callbacks, caching)."""
import json

import networkx as nx
import numpy as np
import pytest
import torch

import optdsl as od
from optdsl.backends import BACKENDS
from optdsl.result import Result, TerminationStatus


# --- errors ---------------------------------------------------------------------------------------------
def test_shape_error_names_both_operands():
    m = od.Model("a")
    x, y = m.variable(3, name="xx"), m.variable(2, name="yy")
    with pytest.raises(od.ShapeError) as e:
        x + y
    assert "xx" in str(e.value) and "yy" in str(e.value) and "(3,)" in str(e.value) and "(2,)" in str(e.value)


def test_variable_from_other_model():
    m, m2 = od.Model("a"), od.Model("b")
    x, z = m.variable(3, name="x"), m2.variable(3, name="zed")
    with pytest.raises(od.ModelError, match="zed"):
        m.minimize(od.sum_squares(x - z))


def test_subject_to_python_bool():
    m = od.Model("a")
    m.variable(name="x")
    with pytest.raises(od.ModelError, match="bool"):
        m.subject_to(True)


def test_nonfinite_parameter_named():
    m = od.Model("a")
    with pytest.raises(od.ModelError, match="'theta'.*NaN"):
        m.parameter(value=np.array([1.0, np.nan]), name="theta")
    p = m.parameter(value=np.zeros(2), name="rho")
    with pytest.raises(od.ModelError, match="'rho'"):
        p.value = np.array([np.inf, 0.0])


def _constrained():
    m = od.Model("c")
    x = m.variable(2, name="x")
    m.minimize(od.sum_squares(x - 3))
    m.subject_to(x.sum() <= 1, name="cap")
    return m, x


def test_unknown_solver_lists_known():
    m, _ = _constrained()
    with pytest.raises(od.SolverError) as e:
        m.solve(solver="nope")
    for name in BACKENDS:
        assert name in str(e.value)


def test_solver_that_cannot_take_model_says_why():
    m, _ = _constrained()
    with pytest.raises(od.NotSolvableError, match="lbfgs.*inequality"):
        m.solve(solver="lbfgs")


def test_blackbox_needs_zeroth_order():
    m = od.Model("bb")
    x = m.variable(2, name="x")
    m.minimize(od.blackbox(lambda a: float(np.sum((a - 1) ** 2)))(x))
    with pytest.raises(od.NotSolvableError) as e:
        m.solve(solver="nlp")
    assert "blackbox" in str(e.value)
    if "zo" not in BACKENDS:
        with pytest.raises(od.NotSolvableError, match="zeroth-order"):
            m.solve()
    else:
        assert m.plan().backend.name == "zo"


# --- duals, sign, soft constraints ------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["cvxpy", "nlp"])
def test_maximize_sign_of_objective_and_duals(solver):
    # min (x-3)^2 s.t. sum x <= 1: x = (.5,.5), multiplier 5; maximize the negation: same point, same dual
    m, x = _constrained()
    r = m.solve(solver=solver)
    mx = od.Model("max")
    y = mx.variable(2, name="x")
    mx.maximize(-od.sum_squares(y - 3))
    mx.subject_to(y.sum() <= 1, name="cap")
    rx = mx.solve(solver=solver)
    assert r.objective == pytest.approx(12.5, rel=1e-6)
    assert rx.objective == pytest.approx(-12.5, rel=1e-6)
    np.testing.assert_allclose(rx.values["x"], [0.5, 0.5], atol=1e-6)
    assert float(r.duals["cap"]) == pytest.approx(5.0, rel=1e-5)
    assert float(rx.duals["cap"]) == pytest.approx(5.0, rel=1e-5)


def _soft(kind):
    m = od.Model("soft")
    x = m.variable(name="x")
    m.minimize(od.square(x - 3))
    m.subject_to(x <= 1, name="cap", penalty=2.0, penalty_kind=kind)
    return m, x


def test_soft_constraint_l1_point_and_dual():
    # (x-3)^2 + 2 max(0, x-1): 2(x-3) + 2 = 0 -> x = 2, violation 1, multiplier = penalty weight 2
    m, x = _soft("l1")
    r = m.solve()
    assert float(x.value) == pytest.approx(2.0, abs=1e-6)
    assert r.objective == pytest.approx(1.0, abs=1e-6)  # user's objective, without the penalty
    assert float(r.duals["cap"]) == pytest.approx(2.0, rel=1e-5)


def test_soft_constraint_l2_point_and_dual():
    # (x-3)^2 + 2 (x-1)_+^2: 2(x-3) + 4(x-1) = 0 -> x = 5/3; multiplier 4 (x-1) = 8/3
    m, x = _soft("l2")
    r = m.solve()
    assert float(x.value) == pytest.approx(5 / 3, abs=1e-6)
    assert float(r.duals["cap"]) == pytest.approx(8 / 3, rel=1e-5)


def test_soft_constraint_reports_violation():
    m, x = _soft("l1")
    r = m.solve()
    assert any(isinstance(v, dict) and v.get("cap", 0) == pytest.approx(1.0, abs=1e-6) for v in r.certificates.values()) \
        or r.certificates.get("max_violation", 0) == pytest.approx(1.0, abs=1e-6)


def test_soft_constraint_kkt_certificate():
    m, x = _soft("l1")
    r = m.solve()
    assert r.certificates["kkt_stationarity"] <= 1e-6


# --- results ---------------------------------------------------------------------------------------------
def test_result_json_round_trip():
    m, _ = _constrained()
    r = m.solve()
    s = r.to_json()
    json.loads(s)
    r2 = Result.from_json(s)
    assert r2.status == r.status and r2.primal_status == r.primal_status
    assert r2.objective == pytest.approx(r.objective)
    assert set(r2.values) == set(r.values) and set(r2.duals) == set(r.duals)
    for k in r.values:
        np.testing.assert_array_equal(r2.values[k], r.values[k])
    for k in r.duals:
        np.testing.assert_array_equal(r2.duals[k], r.duals[k])


def _smooth(n=20):
    m = od.Model("smooth")
    x = m.variable(n, name="x")
    m.minimize(od.sum_squares(x - np.arange(n)) + od.sum(od.exp(x / 20)))
    return m, x


@pytest.mark.parametrize("solver", ["nlp", "lbfgs"])
def test_callback_false_interrupts_with_point(solver):
    m, x = _smooth()
    seen = []

    def cb(info):
        seen.append(info["iteration"])
        return len(seen) < 2
    r = m.solve(solver=solver, callback=cb)
    assert r.status == TerminationStatus.INTERRUPTED
    assert len(seen) == 2
    assert "x" in r.values and np.all(np.isfinite(r.values["x"]))
    assert r.primal_status.name == "FEASIBLE_POINT"


def test_warm_start_reduces_iterations():
    m = od.Model("rb")
    x = m.variable(2, name="x")
    m.minimize(100 * od.square(x[1] - od.square(x[0])) + od.square(1 - x[0]))
    x.value = np.array([-1.2, 1.0])
    cold = m.solve(solver="nlp")
    assert cold.objective < 1e-8
    x.value = np.array([0.99, 0.98])
    warm = m.solve(solver="nlp")
    assert warm.objective < 1e-8
    assert warm.iterations < cold.iterations / 3, (warm.iterations, cold.iterations)


@pytest.mark.parametrize("solver", ["nlp", "lbfgs", "cvxpy"])
def test_parameter_resolve_closed_form_and_cache(solver):
    # min ||x - b||^2 + ||x||^2  ->  x = b / 2
    m = od.Model("par")
    x = m.variable(3, name="x")
    b = m.parameter(value=np.ones(3), name="b")
    m.minimize(od.sum_squares(x - b) + od.sum_squares(x))
    r = m.solve(solver=solver)
    np.testing.assert_allclose(r.values["x"], 0.5 * np.ones(3), atol=1e-5)
    keys = [k for k in m._cache if isinstance(k, tuple) and k[0] == "compiled" and k[1] == solver]
    assert len(keys) == 1
    compiled = m._cache[keys[0]]
    b.value = np.array([1.0, -2.0, 4.0])
    r2 = m.solve(solver=solver)
    np.testing.assert_allclose(r2.values["x"], [0.5, -1.0, 2.0], atol=1e-5)
    assert r2.objective == pytest.approx(np.sum((np.array([1.0, -2, 4]) / 2) ** 2) * 2, rel=1e-6)
    assert m._cache[keys[0]] is compiled


def test_nan_during_solve_objective():
    m = od.Model("nan")
    x = m.variable(name="x")
    m.minimize(od.fn(lambda a: torch.log(a))(x) + x)
    x.value = np.array(-1.0)
    r = m.solve(solver="nlp")
    assert r.status == TerminationStatus.NUMERICAL_ERROR
    assert "objective" in r.message and "NaN" in r.message


def test_nan_during_solve_names_constraint():
    m = od.Model("nanc")
    x = m.variable(name="x")
    m.minimize(od.square(x))
    m.subject_to(od.log(x - 5) >= -1, name="logc")
    x.value = np.array(1.0)
    r = m.solve(solver="nlp")
    assert r.status == TerminationStatus.NUMERICAL_ERROR
    assert "'logc'" in r.message


# --- inspection ------------------------------------------------------------------------------------------
def test_explain_lists_every_backend_with_reason():
    m, _ = _constrained()
    text = m.explain()
    assert "chosen:" in text
    lines = text.splitlines()
    for name in BACKENDS:
        assert any(name in ln for ln in lines), name
    for ln in lines:
        if ln.strip().startswith("not "):
            assert ":" in ln and len(ln.split(":", 1)[1].strip()) > 5


def test_print_and_latex_contain_constraint_names():
    m, _ = _constrained()
    m.subject_to(m.variables[0][0] >= -4, name="floor_x0")
    for text in (str(m), m.to_latex()):
        assert "cap" in text and "floor" in text


def test_graph_nodes_and_edges():
    m = od.Model("g")
    x, y = m.variable(2, name="x"), m.variable(name="y")
    p = m.parameter(value=np.ones(2), name="p")
    m.minimize(od.sum_squares(x - p))
    m.subject_to(x.sum() <= 1, name="c1")
    m.subject_to(y >= 0, name="c2")
    g = m.graph()
    assert isinstance(g, nx.DiGraph)
    assert {"x", "y", "p", "objective", "c1", "c2"} <= set(g.nodes)
    assert g.nodes["x"]["kind"] == "variable" and g.nodes["c1"]["kind"] == "constraint"
    assert g.has_edge("x", "objective") and g.has_edge("p", "objective") and g.has_edge("x", "c1")
    assert g.has_edge("y", "c2") and not g.has_edge("y", "objective") and not g.has_edge("x", "c2")
