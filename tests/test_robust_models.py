"""Robust gallery models (problems/robust_*.py) through the modeling layer and the CLI, and the errors a user
sees for robust models that cannot be solved."""
import glob
import importlib.util
import os

import numpy as np
import pytest

import optdsl as od
from optdsl import TerminationStatus as Status
from optdsl.cli import main

ROOT = os.path.join(os.path.dirname(__file__), "..", "problems")
GALLERY = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "robust_*.py")))


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def check_expected(res, exp):
    assert res.status.name == exp["status"], res.message
    assert res.objective == pytest.approx(exp["objective"], rel=exp["rtol"])
    for k, ref in exp.get("values", {}).items():
        # points are compared more loosely than values: near a curved constraint a 1e-10 objective error is
        # a ~1e-5 error in x (second order), e.g. robust_nonaffine_cutting_plane: 3e-5
        assert np.asarray(res.values[k]) == pytest.approx(ref, rel=1e-4, abs=1e-4), k


def test_the_gallery_is_complete():
    assert GALLERY == ["robust_bilevel_blackbox", "robust_least_squares", "robust_lp_box", "robust_lp_budget", "robust_lp_ellipsoid",
                       "robust_nonaffine_cutting_plane", "robust_portfolio", "robust_two_stage_location"]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", GALLERY)
def test_gallery_model_solves_to_expected(name):
    mod = load(name)
    m = mod.build()
    assert isinstance(m, od.Model)
    res = m.solve()
    check_expected(res, mod.EXPECTED)
    assert res.solver in getattr(mod, "SOLVERS", [res.solver])
    for backend in getattr(mod, "SOLVERS", []):
        check_expected(mod.build().solve(backend), mod.EXPECTED)


@pytest.mark.filterwarnings("ignore")
def test_counterpart_models_go_through_the_rewrite():
    for name in ["robust_lp_box", "robust_lp_ellipsoid", "robust_lp_budget", "robust_portfolio"]:
        assert load(name).build().plan().chain[-2:] == ["robust_to_counterpart", "cvxpy"], name


@pytest.mark.filterwarnings("ignore")
def test_robust_points_are_feasible_for_every_vertex_of_the_budget_set():
    mod = load("robust_lp_budget")
    x = mod.build().solve().values["x"]
    lhs = np.array([(mod.A + mod.R * z) @ x for z in mod.budget_points()])
    assert np.all(lhs <= mod.B + 1e-6)
    assert lhs.max(axis=0) == pytest.approx(mod.B, abs=1e-6)      # both rows are active at their worst case


def test_nonaffine_model_with_the_vertex_oracle_is_certified_optimal():
    mod = load("robust_nonaffine_cutting_plane")
    res = mod.build().solve(oracle="vertices")
    assert res.solver == "robust_cp" and res.status == Status.OPTIMAL
    assert res.objective == pytest.approx(np.linalg.norm(mod.C) / 1.3, rel=1e-6)
    assert res.certificates["feasibility"] <= 1e-6


def test_robust_least_squares_over_a_frobenius_ball_by_cutting_planes_matches_el_ghaoui_lebret():
    # min t s.t. ||(A + Delta) x - b|| <= t for all ||Delta||_F <= rho: convex, not affine, in Delta -> robust_cp
    from optdsl.solvers.robust.testing import robust_least_squares
    A, b, rho = robust_least_squares(6, 3, rho=0.5, seed=0)
    m = od.Model("rls_cp")
    x = m.variable(3, name="x")
    t = m.variable(name="t")
    D = m.uncertain(18, within=od.Ellipsoid(np.zeros(18), rho=rho), name="Delta")
    m.minimize(t)
    m.subject_to(od.norm((A + od.reshape(D, (6, 3))) @ x - b) <= t, name="worst")
    res = m.solve(max_iter=100)
    import cvxpy as cp
    xv = cp.Variable(3)
    ref = cp.Problem(cp.Minimize(cp.norm2(A @ xv - b) + rho * cp.norm2(xv)))
    ref.solve()
    assert res.solver == "robust_cp" and res.status == Status.LOCALLY_OPTIMAL
    assert res.objective == pytest.approx(ref.value, rel=1e-6)      # measured 1.2e-7 apart, 11 rounds
    # the point is (to 1e-6) optimal for the true worst case ||Ax - b|| + rho ||x|| (El Ghaoui-Lebret); x itself
    # is only ~1e-3 from the SOCP's minimiser because the objective is flat there
    xr = res.values["x"]
    assert np.linalg.norm(A @ xr - b) + rho * np.linalg.norm(xr) == pytest.approx(ref.value, rel=1e-6)
    assert xr == pytest.approx(xv.value, abs=5e-3)


@pytest.mark.filterwarnings("ignore")
def test_cli_solves_a_gallery_file_to_json(tmp_path):
    mod = load("robust_lp_budget")
    out = str(tmp_path / "out.json")
    rc = main(["solve", os.path.join(ROOT, "robust_lp_budget.py"), "--json", out, "-q"])
    assert rc == 0
    res = od.Result.from_json(out)
    assert res.status == Status.OPTIMAL and res.solver == "cvxpy"
    assert res.objective == pytest.approx(mod.EXPECTED["objective"], rel=1e-6)
    assert res.values["x"] == pytest.approx(mod.EXPECTED["values"]["x"], abs=1e-5)


def test_ccg_history_shows_a_shrinking_gap():
    mod = load("robust_two_stage_location")
    res = mod.build().solve()
    assert res.solver == "robust_ccg" and res.status == Status.OPTIMAL
    lb = [h["lower_bound"] for h in res.history]
    ub = [h["upper_bound"] for h in res.history]
    gap = [h["gap"] for h in res.history]
    print("\nCCG (lower, upper) per iteration:", [(round(a, 1), round(c, 1)) for a, c in zip(lb, ub)])
    # measured: (14282.0, 35224.0), (33291.9, 33307.9), (33292.2, 33292.2)
    assert len(res.history) >= 2
    assert all(b >= a - 1e-6 for a, b in zip(lb, lb[1:]))              # lower bounds never decrease
    assert all(g2 < g1 for g1, g2 in zip(gap, gap[1:]))                 # the gap shrinks every iteration
    assert np.minimum.accumulate(ub)[-1] == pytest.approx(res.objective, rel=1e-9)
    assert gap[-1] <= 1e-6 * abs(res.objective) and gap[0] > 1e4
    assert lb[-1] <= mod.EXPECTED["objective"] * (1 + 1e-9) <= ub[0]
    assert res.certificates["gap"] <= 1e-6 * abs(res.objective)


# ---------------------------------------------------------------- errors a user sees

def test_uncertain_without_a_set_names_it():
    m = od.Model("r")
    with pytest.raises(od.ModelError, match=r"uncertain 'demand' needs a set: within=od.Box"):
        m.uncertain(2, name="demand")


@pytest.mark.parametrize("make,msg", [
    (lambda: od.Box(np.zeros(2), radius=-1), r"radius must be >= 0 \(a negative radius is an empty set\)"),
    (lambda: od.Ellipsoid(np.zeros(2), rho=-0.5), r"rho must be >= 0 .*empty set"),
    (lambda: od.Budget(np.zeros(2), radius=1.0, gamma=-1), r"gamma .*empty set"),
    (lambda: od.Polyhedron(np.eye(2), np.ones(2)), r"Polyhedron is unbounded along coordinate 0"),
    (lambda: od.Polyhedron(np.array([[1.0, 0], [-1, 0], [0, 1], [0, -1]]), np.array([1, -2, 1, 1.0])),
     r"Polyhedron is empty"),
])
def test_bad_sets_are_rejected_at_construction(make, msg):
    with pytest.raises(ValueError, match=msg):
        make()


def _eq_model(sense):
    m = od.Model("eq")
    x = m.variable(2, lb=0, name="x")
    u = m.uncertain(2, within=od.Box(np.zeros(2), radius=0.5), name="u")
    m.minimize(-x.sum()) if sense == "min" else m.maximize(x.sum())
    m.subject_to((np.ones(2) + u) @ x == 1, name="balance")
    return m


def _mixed_model():
    m = od.Model("mix")
    x = m.variable(2, lb=0, name="x")
    u = m.uncertain(2, within=od.Box(np.zeros(2), radius=0.5), name="u")
    v = m.uncertain(2, within=od.Ellipsoid(np.zeros(2), rho=0.5), name="v")
    m.minimize(-x.sum())
    m.subject_to((np.ones(2) + u + v) @ x <= 1, name="mixed")
    return m


def test_equality_constraint_depending_on_u_is_not_solvable_and_says_why():
    m = _eq_model("min")
    text = m.explain()   # explains instead of raising when nothing fits
    assert "no backend can take this model" in text
    assert "robust_cp: robust equality constraints are not supported" in text
    with pytest.raises(od.NotSolvableError, match="robust equality constraints are not supported"):
        m.solve()


def test_constraint_mixing_two_uncertain_quantities_is_not_solvable_and_says_why():
    with pytest.raises(od.NotSolvableError) as e:
        _mixed_model().solve()
    assert "robust_cp: needs exactly one uncertain quantity" in str(e.value)


@pytest.mark.parametrize("sense", ["min", "max"])
def test_equality_error_names_the_users_constraint(sense):
    with pytest.raises(od.NotSolvableError) as e:
        _eq_model(sense).solve()
    assert "balance" in str(e.value) and "equality" in str(e.value)


def test_mixing_error_names_the_users_constraint():
    with pytest.raises(od.NotSolvableError) as e:
        _mixed_model().solve()
    assert "mixed" in str(e.value)
