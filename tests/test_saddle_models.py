"""Gallery min–max models (problems/saddle_*.py) solved through the modeling layer by the `halpern` backend,
against answers computed independently in each file (closed forms, scipy linprog, cvxpy)."""
import importlib.util
import os

import numpy as np
import pytest
import torch

import optdsl as od
from optdsl import TerminationStatus as Status
from optdsl.cli import main
from optdsl.solvers.halpern import Ball, Box, solve_saddle

ROOT = os.path.join(os.path.dirname(__file__), "..", "problems")
NAMES = ["saddle_bilinear_game", "saddle_matrix_game", "saddle_finite_sum", "saddle_box_ball"]
_MODULES = {}


def load(name):
    if name not in _MODULES:
        spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, name + ".py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _MODULES[name] = mod
    return _MODULES[name]


_RESULTS = {}


def solved(name):
    """The gallery model solved with default options (once per test session)."""
    if name not in _RESULTS:
        _RESULTS[name] = load(name).build().solve()
    return _RESULTS[name]


def explain_text(m, solver=None):
    """explain() returns the dispatch report, or (when no backend fits) may raise it as NotSolvableError."""
    try:
        return m.explain(solver)
    except od.NotSolvableError as e:
        return str(e)


def assert_expected(res, exp, atol=1e-5):
    assert res.status == Status[exp["status"]], res.message
    assert res.objective == pytest.approx(exp["objective"], rel=exp["rtol"], abs=exp["rtol"])
    for k, v in exp.get("values", {}).items():
        np.testing.assert_allclose(res.values[k], v, atol=atol)


def matrix_game_model(A, declare="saddle"):
    m = od.Model("game")
    x = m.variable(A.shape[0], lb=0, name="x")
    y = m.variable(A.shape[1], lb=0, name="y")
    m.subject_to(x.sum() == 1, name="sx")
    m.subject_to(y.sum() == 1, name="sy")
    if declare == "saddle":
        m.saddle(x @ A @ y, [x], [y])
    else:
        m.minimize(od.maximum_over(y, x @ A @ y))
    return m


@pytest.mark.parametrize("name", NAMES)
def test_gallery_file_declares_the_contract(name):
    mod = load(name)
    assert callable(mod.build) and mod.SOLVERS == ["halpern"]
    exp = mod.EXPECTED
    assert exp["status"] == "OPTIMAL" and np.isfinite(exp["objective"]) and 0 < exp["rtol"] <= 1e-6
    m = mod.build()
    assert isinstance(m, od.Model) and set(exp["values"]) == {v.name for v in m.variables}
    assert m.plan().backend.name == "halpern"


# --- bilinear game (unconstrained, closed form) ---------------------------------------------------------

def test_bilinear_game_reaches_the_closed_form_saddle_point():
    mod = load("saddle_bilinear_game")
    res = solved("saddle_bilinear_game")
    assert res.solver == "halpern"
    assert res.certificates["operator_residual"] <= res.certificates["residual_tolerance"]   # tol × L
    assert res.objective == pytest.approx(mod.EXPECTED["objective"], rel=1e-6)
    for k, v in mod.EXPECTED["values"].items():
        np.testing.assert_allclose(res.values[k], v, atol=1e-5)


def test_bilinear_game_converged_run_is_reported_optimal():
    # the run converged (residual <= tol, checked above); on unbounded sets the exact gap is +inf by nature,
    # so it must not be certified, or at least must not overturn the status
    res = solved("saddle_bilinear_game")
    assert res.status == Status.OPTIMAL, (res.status, res.certificates)


def test_bilinear_game_on_a_box_certifies_the_duality_gap():
    mod = load("saddle_bilinear_game")
    # non-binding bounds |x|, |y| <= 10: same saddle point, bounded sets, finite exact gap
    res = mod.build(box=10.0).solve(tol=1e-9)
    assert_expected(res, mod.EXPECTED, atol=1e-7)
    assert res.certificates["operator_residual"] <= res.certificates["residual_tolerance"]   # tol × L
    assert 0 <= res.certificates["duality_gap"] <= 1e-6


# --- matrix game (simplices, LP value) --------------------------------------------------------------------

def test_matrix_game_value_equals_the_lp_with_certificates():
    mod = load("saddle_matrix_game")
    res = mod.build().solve(tol=1e-7)   # the gap is ~ a few times the residual: ask 1e-7 to certify 1e-6
    assert res.solver == "halpern"
    assert_expected(res, mod.EXPECTED)
    assert abs(res.objective - mod.VALUE) <= 1e-6
    assert res.certificates["operator_residual"] <= res.certificates["residual_tolerance"]   # tol × L
    assert 0 <= res.certificates["duality_gap"] <= 1e-6
    assert res.certificates["max_violation"] <= 1e-9
    assert res.values["x"].sum() == pytest.approx(1.0, abs=1e-12) and res.values["x"].min() >= 0


@pytest.mark.parametrize("method", ["eag", "eg"])
def test_matrix_game_by_other_methods(method):
    mod = load("saddle_matrix_game")
    res = mod.build().solve(method=method, tol=1e-7)
    assert_expected(res, mod.EXPECTED)
    assert abs(res.objective - mod.VALUE) <= 1e-6
    assert res.certificates["operator_residual"] <= res.certificates["residual_tolerance"]   # tol × L
    assert res.certificates["duality_gap"] <= 1e-6


def _cli_value(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "OPTIMAL" in out and "objective=" in out
    return float(out.split("objective=")[1].split()[0])


def test_cli_solves_the_matrix_game_with_eag(capsys):
    path = os.path.join(ROOT, "saddle_matrix_game.py")
    value = _cli_value(capsys, ["solve", path, "--method", "eag", "-q"])
    assert value == pytest.approx(load("saddle_matrix_game").VALUE, abs=1e-6)


def test_maximum_over_and_saddle_declare_the_same_problem():
    A = load("saddle_matrix_game").A
    m1, m2 = matrix_game_model(A, "saddle"), matrix_game_model(A, "maximum_over")
    assert m2.plan().backend.name == "halpern"
    r1, r2 = m1.solve(), m2.solve()
    assert r1.status == r2.status == Status.OPTIMAL
    assert r1.objective == pytest.approx(r2.objective, abs=1e-12)
    assert r1.iterations == r2.iterations
    for k in ("x", "y"):
        np.testing.assert_allclose(r1.values[k], r2.values[k], atol=1e-12)
    assert r2.objective == pytest.approx(load("saddle_matrix_game").VALUE, abs=1e-6)


# --- finite sum (variance-reduced Halpern) ---------------------------------------------------------------

def test_finite_sum_is_solved_by_vr_halpern_to_the_closed_form():
    mod = load("saddle_finite_sum")
    res = mod.build().solve()
    assert res.solver == "halpern" and res.message.startswith("vr_halpern")
    assert_expected(res, mod.EXPECTED)
    assert res.certificates["operator_residual"] <= res.certificates["residual_tolerance"]   # tol × L
    # component calls were counted: at least one full pass (n) plus mini-batch steps
    assert res.counts["component"] > mod.N
    assert "duality_gap" not in res.certificates        # L is quadratic in each player: no affine-gap certificate


def test_vr_halpern_needs_min_then_max_args():
    mod = load("saddle_finite_sum")
    m = od.Model("fs_swapped")
    x, y = m.variable(mod.D, name="x"), m.variable(mod.D, name="y")
    m.saddle(od.mean(lambda b, yy, xx: mod.loss(b, xx, yy), over=mod.DATA, args=(y, x)), [x], [y])
    with pytest.raises(ValueError, match="min player's variables then the max player's"):
        m.solve(method="vr_halpern")


# --- box player vs ball player -----------------------------------------------------------------------------

def test_box_ball_game_matches_cvxpy():
    mod = load("saddle_box_ball")
    res = mod.build().solve()
    assert res.solver == "halpern"
    assert_expected(res, mod.EXPECTED)


def test_box_ball_expected_answer_by_the_tensor_level_solver():
    """The same game given to solve_saddle directly with Box/Ball projections reaches the file's EXPECTED
    (the model-level solve above must agree with the tensor-level one)."""
    mod = load("saddle_box_ball")
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    A, b, c = t(mod.A), t(mod.B), t(mod.C)
    out = solve_saddle(lambda x, y: x @ A @ y + b @ x + c @ y + 0.5 * mod.MU * (x @ x),
                       torch.zeros(mod.NX, dtype=torch.float64), torch.zeros(mod.NY, dtype=torch.float64),
                       project_x=Box(-1.0, 1.0), project_y=Ball(mod.R), tol=1e-7)
    assert out.status == Status.OPTIMAL and out.certificates["operator_residual"] <= out.extras["tol_residual"]
    assert out.objective == pytest.approx(mod.VALUE, rel=1e-6)
    np.testing.assert_allclose(out.x[0].numpy(), mod.X_STAR, atol=1e-6)
    np.testing.assert_allclose(out.x[1].numpy(), mod.Y_STAR, atol=1e-6)


# --- bad input ---------------------------------------------------------------------------------------------

def test_constraint_coupling_the_players_is_rejected_by_name():
    m = matrix_game_model(load("saddle_matrix_game").A)
    x, y = m.variables
    m.subject_to(x[0] + y[0] <= 0.5, name="couple")
    with pytest.raises(od.ModelError, match=r"constraint 'couple' couples the min player's and the max player's"):
        m.solve()


def test_variable_listed_for_both_players_is_rejected():
    m = od.Model("both")
    x, y = m.variable(2, name="x"), m.variable(2, name="y")
    with pytest.raises(od.ModelError, match=r"\['x'\] are listed for both the min and the max player"):
        m.saddle(x @ y, [x], [x, y])


def polyhedral_max_player_model():
    m = od.Model("poly")
    x = m.variable(2, lb=-1, ub=1, name="x")
    y = m.variable(2, lb=0, name="y")
    m.subject_to(y[0] + 2 * y[1] <= 1, name="poly")          # a polytope, not a box / simplex / ball
    m.saddle(x @ np.array([[1.0, 2.0], [0.5, -1.0]]) @ y, [x], [y])
    return m


def test_max_player_set_that_is_not_box_simplex_or_ball_is_explained():
    m = polyhedral_max_player_model()
    text = explain_text(m)
    assert "no backend can take this model" in text
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("halpern:"))
    assert "are not a box, simplex (sum == r, lb = 0) or ball (norm <= r)" in line
    with pytest.raises(od.NotSolvableError, match="are not a box, simplex"):
        m.solve(solver="halpern")


def test_rejection_names_the_offending_constraint_and_player():
    m = polyhedral_max_player_model()
    line = next(ln for ln in explain_text(m).splitlines() if ln.strip().startswith("halpern:"))
    assert "['poly'] on 'y'" in line and "'x'" not in line


def test_non_scalar_saddle_function_is_rejected():
    m = od.Model("vec")
    x, y = m.variable(3, name="x"), m.variable(3, name="y")
    with pytest.raises(od.ShapeError, match="the saddle function must be a scalar"):
        m.saddle(x * y, [x], [y])
    with pytest.raises(od.ShapeError, match="must be a scalar"):
        m.minimize(od.maximum_over(y, x * y))
