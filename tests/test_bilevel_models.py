"""The bilevel gallery (problems/bilevel_*.py) through the modeling layer: plain ``m.solve()`` (method "auto")
meets each file's EXPECTED, the non-default methods (penalty, LV-HBA, nested penalties, implicit) reach their
own known points, the lower-level gap certificate, printing, bad input and the CLI.

Tolerances (measured values in brackets, on this machine):
* plain m.solve() ("hyper"): quadratic toy, ridge, constrained follower and three levels to 1e-6 [< 1e-9].
* quadratic toy: penalty = the closed-form penalty point x_σ to 1e-6 [5e-8], x* to 5e-3 [4e-4 = the O(σ)
  bias, σ = 1e-3]; implicit = x* to 1e-6 [4e-8].
* ridge: penalty = t_σ (closed-form ψ_σ, bounded search) to 1e-5 [2e-6], t* to 2e-3 [6e-4]; implicit = t* to
  1e-5 [6e-8].
* hyper-cleaning: validation CE <= baseline − 0.3 [1.003 -> 0.40 penalty, 0.47 implicit]; test accuracy >=
  baseline + 0.10 [0.770 -> 0.928 penalty, 0.918 implicit].
* constrained follower (LV-HBA, 1500 steps): x*, y* to 5e-3 [1.6e-3, 8e-4].
* three levels (nested penalties, σ = 0.02): x* to 1e-2 [6.4e-3], y*, z* to 2e-2 [1.7e-2, 1e-3].
"""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import optdsl as od
from optdsl import TerminationStatus as Status
from optdsl.lower import sympy as sym

ROOT = Path(__file__).resolve().parent.parent / "problems"
NAMES = ["bilevel_quadratic_toy", "bilevel_ridge_tuning", "bilevel_hyper_cleaning", "bilevel_constrained_lower",
         "bilevel_three_level"]
_CACHE = {}


def load(name):
    if name not in _CACHE:
        spec = importlib.util.spec_from_file_location(f"gallery_{name}", ROOT / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _CACHE[name] = mod
    return _CACHE[name]


def solve(name, options="PENALTY_OPTIONS", **over):
    """Solve a gallery file with one of its named option sets (a non-default method), overridden by ``over``."""
    mod = load(name)
    m = mod.build()
    opts = {**getattr(mod, options, {}), **over}
    return mod, m, m.solve(**{k: v for k, v in opts.items() if v is not None})


# --- the gallery files are well formed ------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_gallery_file_is_well_formed(name):
    mod = load(name)
    assert mod.__doc__ and "Known answer" in mod.__doc__
    assert mod.SOLVERS == ["bilevel"] and "objective" in mod.EXPECTED
    # the file is solved by its defaults: no OPTIONS (named option sets show non-default methods)
    assert not hasattr(mod, "OPTIONS")
    m = mod.build()
    assert "bilevel" in m.tags() and m.plan().backend.name == "bilevel"


# --- known answers ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bilevel_quadratic_toy", "bilevel_ridge_tuning", "bilevel_constrained_lower",
                                  "bilevel_three_level"])
def test_plain_solve_meets_expected(name):
    mod = load(name)
    r = mod.build().solve()
    exp = mod.EXPECTED
    assert r.status == Status.LOCALLY_OPTIMAL, r.message
    assert r.certificates["relative_stationarity"] <= 1e-6
    for k, want in exp["values"].items():
        np.testing.assert_allclose(r.values[k], want, atol=exp["atol_values"], rtol=0, err_msg=k)
    assert r.objective == pytest.approx(exp["objective"], rel=exp["rtol"])
    assert abs(r.certificates["lower_level_gap"]) < 1e-8
    assert r.iterations <= 10          # measured: 2 (three levels) to 6 (quadratic toy) leader iterations


def test_constrained_follower_multiplier_by_name():
    mod = load("bilevel_constrained_lower")
    r = mod.build().solve()
    assert float(r.duals["budget"]) == pytest.approx(mod.MULTIPLIER, abs=1e-6)
    assert r.certificates["lower_infeasibility"] < 1e-12


def test_quadratic_toy_penalty_lands_on_the_closed_form_penalty_point():
    mod, m, r = solve("bilevel_quadratic_toy")
    xs, ys = mod.penalty_point(mod.PENALTY_OPTIONS["sigma"])
    assert r.solver == "bilevel" and r.status == Status.LOCALLY_OPTIMAL, r.message
    np.testing.assert_allclose(r.values["x"], xs, atol=1e-6)
    np.testing.assert_allclose(r.values["y"], ys, atol=1e-6)
    # the O(σ) bias of the penalty, separately: x_σ -> x* linearly in σ
    bias = [np.abs(mod.penalty_point(s)[0] - mod.X_STAR).max() for s in (1e-2, 1e-3, 1e-4)]
    assert 2e-4 < bias[1] < 1e-3 and bias[0] / bias[1] == pytest.approx(10, rel=0.1)
    assert bias[1] / bias[2] == pytest.approx(10, rel=0.02)
    np.testing.assert_allclose(r.values["x"], mod.X_STAR, atol=5e-3)
    assert r.objective == pytest.approx(mod.F_STAR, rel=1e-2)
    # y_σ is O(σ) off the follower's argmin: the certificate is small, nonnegative, and the inner solve converged
    assert 0 <= r.certificates["lower_level_gap"] < 1e-5
    assert r.certificates["lower_level_gap_residual"] < 1e-6
    assert r.certificates["stationarity"] <= mod.PENALTY_OPTIONS["tol"]


def test_quadratic_toy_implicit_baseline_reaches_the_exact_solution():
    mod, m, r = solve("bilevel_quadratic_toy", method="implicit", sigma=None)
    assert r.status == Status.LOCALLY_OPTIMAL, r.message
    np.testing.assert_allclose(r.values["x"], mod.X_STAR, atol=1e-6)
    np.testing.assert_allclose(r.values["y"], mod.Y_STAR, atol=1e-6)
    assert r.objective == pytest.approx(mod.F_STAR, rel=1e-7)
    assert abs(r.certificates["lower_level_gap"]) < 1e-10


def test_ridge_answer_agrees_with_the_tensor_level_generator():
    from optdsl.solvers.bilevel import testing
    mod = load("bilevel_ridge_tuning")
    P = testing.ridge_tuning(seed=0)
    assert mod.T_STAR == pytest.approx(float(P.x_star[0]), abs=1e-6)
    assert mod.F_STAR == pytest.approx(P.F_star, rel=1e-10)
    assert abs(mod.dF(mod.T_STAR)) < 1e-6 and mod.dF(mod.T_STAR - 0.5) < 0 < mod.dF(mod.T_STAR + 0.5)


def test_ridge_tuning_by_penalty_and_its_bias():
    mod, m, r = solve("bilevel_ridge_tuning")
    assert r.status == Status.LOCALLY_OPTIMAL, r.message
    t_sigma = mod._argmin(lambda t: mod.penalty_value(t, mod.PENALTY_OPTIONS["sigma"]))
    assert float(r.values["t"]) == pytest.approx(t_sigma, abs=1e-5)
    assert 1e-4 < abs(t_sigma - mod.T_STAR) < 2e-3                 # the O(σ) bias, σ = 1e-3
    assert float(r.values["t"]) == pytest.approx(mod.T_STAR, abs=2e-3)
    assert r.objective == pytest.approx(mod.F_STAR, rel=5e-3)
    assert 0 <= r.certificates["lower_level_gap"] < 1e-4
    assert r.certificates["sigma"] == mod.PENALTY_OPTIONS["sigma"]


def test_ridge_tuning_by_implicit_baseline():
    mod, m, r = solve("bilevel_ridge_tuning", method="implicit", sigma=None)
    assert r.status == Status.LOCALLY_OPTIMAL, r.message
    assert float(r.values["t"]) == pytest.approx(mod.T_STAR, abs=1e-5)
    np.testing.assert_allclose(r.values["w"], mod.w_of(mod.T_STAR), atol=1e-5)
    assert r.objective == pytest.approx(mod.F_STAR, rel=1e-7)
    assert abs(r.certificates["lower_level_gap"]) < 1e-8


@pytest.mark.parametrize("method", ["penalty", "implicit"])
def test_hyper_cleaning_beats_training_on_corrupted_labels(method):
    mod, m, r = solve("bilevel_hyper_cleaning", method=method, sigma=None if method == "implicit" else 0.1)
    exp = mod.EXPECTED
    assert r.status == Status.ITERATION_LIMIT and r.primal_status == od.PrimalStatus.FEASIBLE_POINT
    assert r.objective == pytest.approx(mod.validation_loss(r.values), rel=1e-9)
    assert r.objective <= exp["objective"], r.objective
    acc = mod.accuracy(r.values, "test")
    assert acc >= exp["accuracy_baseline"] + exp["accuracy_margin"], (acc, exp["accuracy_baseline"])
    # the learned weights mute the corrupted examples
    w = 1 / (1 + np.exp(-r.values["x"]))
    assert w[mod.CORRUPTED].mean() < w[~mod.CORRUPTED].mean() - 0.4
    assert 0 <= r.certificates["lower_level_gap"] < 0.05


def _check_hyper_cleaning(mod, r):
    assert r.objective == pytest.approx(mod.validation_loss(r.values), rel=1e-9)
    assert r.objective <= mod.EXPECTED["objective"], r.objective
    acc = mod.accuracy(r.values, "test")
    assert acc >= mod.EXPECTED["accuracy_baseline"] + mod.EXPECTED["accuracy_margin"], acc
    w = 1 / (1 + np.exp(-r.values["x"]))
    assert w[mod.CORRUPTED].mean() < w[~mod.CORRUPTED].mean() - 0.4


def test_hyper_cleaning_default_method_on_a_budget():
    # the default ("hyper") with 5 leader iterations already beats the bound [val CE 0.263, measured]
    mod = load("bilevel_hyper_cleaning")
    r = mod.build().solve(max_iter=5)
    assert r.status == Status.ITERATION_LIMIT and r.iterations == 5
    _check_hyper_cleaning(mod, r)


@pytest.mark.slow
def test_hyper_cleaning_plain_solve_is_stationary():
    mod = load("bilevel_hyper_cleaning")
    r = mod.build().solve()
    assert r.status == Status.LOCALLY_OPTIMAL, r.message
    assert r.certificates["relative_stationarity"] <= 1e-5
    _check_hyper_cleaning(mod, r)
    assert abs(r.certificates["lower_level_gap"]) < 1e-8


def test_hyper_cleaning_baseline_is_the_follower_at_uniform_weights():
    mod = load("bilevel_hyper_cleaning")
    base = mod.BASELINE
    assert 0.74 < base["accuracy"] < 0.80 and base["val_loss"] > 0.9        # measured 0.770, 1.003
    # the model's follower objective at x = 0 is stationary at the baseline point
    import torch
    from optdsl.lower.torch import TorchLowering
    m = mod.build()
    (lv,) = m.to_problem().extensions["bilevel"]
    x = next(v for v in m.variables if v.name == "x")
    W, b = lv.variables
    env = {x: torch.zeros(mod.N_TRAIN, dtype=torch.float64),
           W: torch.tensor(base["W"], requires_grad=True), b: torch.tensor(base["b"], requires_grad=True)}
    g = TorchLowering().evaluate(lv.objective, env).reshape(())
    gW, gb = torch.autograd.grad(g, [env[W], env[b]])
    assert float(max(gW.abs().max(), gb.abs().max())) < 1e-6


def test_constrained_follower_by_lvhba():
    mod, m, r = solve("bilevel_constrained_lower", "LVHBA_OPTIONS")
    x, y = float(r.values["x"]), r.values["y"]
    assert r.primal_status == od.PrimalStatus.FEASIBLE_POINT and r.status == Status.ITERATION_LIMIT
    assert x == pytest.approx(mod.X_STAR, abs=5e-3)
    np.testing.assert_allclose(y, mod.Y_STAR, atol=5e-3)
    assert y.sum() <= x + 1e-9                         # the follower's constraint holds (and is active)
    assert y.sum() == pytest.approx(x, abs=1e-6)
    assert r.objective == pytest.approx(mod.F_STAR, abs=1e-3)
    assert r.certificates["lower_infeasibility"] < 1e-9
    assert abs(r.certificates["lower_level_gap"]) < 1e-6   # measured -8e-9 (the docs promise >= 0; roundoff)


def test_constrained_follower_named_methods_run_or_say_why():
    mod = load("bilevel_constrained_lower")
    r = mod.build().solve(method="lvhba", max_iter=5)
    assert r.iterations == 5 and r.status == Status.ITERATION_LIMIT
    r = mod.build().solve(method="hyper")
    assert r.status == Status.LOCALLY_OPTIMAL and float(r.values["x"]) == pytest.approx(mod.X_STAR, abs=1e-6)
    for meth in ("penalty", "implicit", "unrolled", "borep"):
        with pytest.raises(ValueError, match=rf"method='{meth}' handles followers without constraints.*'lvhba'"):
            mod.build().solve(method=meth)


def test_three_levels_by_nested_penalties():
    mod, m, r = solve("bilevel_three_level")
    assert r.status == Status.LOCALLY_OPTIMAL, r.message
    x, y, z = (float(r.values[k]) for k in "xyz")
    assert x == pytest.approx(mod.X_STAR, abs=1e-2) and x > 2.55     # 2.5 would mean z was treated as fixed
    assert abs(x - mod.X_STAR) > 1e-4                                 # the O(σ) bias the exact default avoids
    assert y == pytest.approx(mod.Y_STAR, abs=2e-2) and z == pytest.approx(mod.Z_STAR, abs=2e-2)
    assert r.objective == pytest.approx(mod.F_STAR, rel=1e-2)
    assert 0 <= r.certificates["lower_level_gap"] < 1e-3


def test_three_levels_with_implicit_fails_cleanly_or_solves():
    m = load("bilevel_three_level").build()
    try:
        r = m.solve(method="implicit", max_iter=50)
    except TypeError as e:
        raise AssertionError(f"raw TypeError: {e}") from None
    except (od.OptdslError, ValueError) as e:
        assert "implicit" in str(e)
        return
    assert (r.status.is_success and abs(float(r.values["x"]) - 2.6) < 2e-2) or (not r.status.is_success and r.message)


# --- printing -----------------------------------------------------------------------------------------------------

def test_print_shows_the_levels():
    s = str(load("bilevel_constrained_lower").build())
    assert "level 'follower': over y: minimize 0.5 * sum_squares(y - [2., 1.])" in s
    assert "budget : y[0] + y[1] <= x" in s
    assert "minimize  0.5 * (x - 1)^2 + 0.5 * sum_squares(y - [ 0.5, -0.5])" in s
    s = str(load("bilevel_three_level").build())
    assert "level 'middle': over y: minimize 0.5 * (y - x)^2 + 0.5 * (z - 1)^2" in s
    assert "level 'bottom' (inside 'middle'): over z: minimize 0.5 * (z - y)^2" in s
    assert "minimize  0.5 * (x - 2)^2 + 0.5 * (z - 3)^2" in s
    s = str(load("bilevel_hyper_cleaning").build())
    assert "level 'fit': over W, b: minimize mean(sigmoid(x) * (logsumexp(" in s


def test_to_latex_shows_the_leader():
    tex = load("bilevel_three_level").build().to_latex()
    assert tex.startswith("\\begin{array}") and "\\min" in tex and "x - 2" in tex


@pytest.mark.parametrize("name", ["bilevel_constrained_lower", "bilevel_three_level"])
def test_to_latex_shows_the_levels(name):
    m = load(name).build()
    tex = m.to_latex()
    for lv in m.to_problem().extensions["bilevel"]:
        assert sym.to_latex(lv.objective) in tex, (lv.name, tex)
        for c in lv.constraints:
            assert c.name in tex


# --- bad input ----------------------------------------------------------------------------------------------------

def _toy():
    m = od.Model("toy")
    x = m.variable(name="x")
    inner = m.level("inner")
    y = inner.variable(name="y")
    inner.minimize((y - x) ** 2)
    m.minimize((x - 1) ** 2 + (y - 2) ** 2)
    return m, x, y, inner


def test_follower_variable_in_a_leader_constraint_is_not_solvable():
    m, x, y, _ = _toy()
    m.subject_to(x + y <= 3, name="coupled")
    with pytest.raises(od.NotSolvableError, match="bilevel"):
        m.solve()
    with pytest.raises(od.NotSolvableError):
        m.solve(solver="bilevel")
    assert "bilevel" in m.explain()


def test_follower_variable_in_a_leader_constraint_is_named():
    m, x, y, _ = _toy()
    m.subject_to(x + y <= 3, name="coupled")
    with pytest.raises(od.NotSolvableError) as err:
        m.solve(solver="bilevel")
    assert "coupled" in str(err.value) and "follower" in str(err.value)
    assert "coupled" in m.explain()


def test_level_without_objective_names_the_level():
    m = od.Model("m")
    x = m.variable(name="x")
    lv = m.level("lazy")
    y = lv.variable(name="y")
    m.minimize(x ** 2 + y ** 2)
    with pytest.raises(od.ModelError, match=r"level 'lazy' has no objective"):
        m.solve()
    assert "(no objective)" in str(m)


def test_level_without_variables_names_the_level():
    m = od.Model("m")
    x = m.variable(name="x")
    lv = m.level("empty")
    lv.minimize(x ** 2)
    m.minimize(x ** 2)
    with pytest.raises(od.ModelError, match=r"level 'empty' has no variables"):
        m.solve()


def test_two_levels_with_the_same_name():
    m = od.Model("m")
    lv = m.level("inner")
    with pytest.raises(od.ModelError, match=r"already has a level named 'inner'"):
        m.level("inner")
    with pytest.raises(od.ModelError, match=r"already has a level named 'inner'"):
        lv.level("inner")


def test_bad_level_objective_and_options():
    m, x, y, inner = _toy()
    z = inner.variable(2, name="z")
    with pytest.raises(od.ShapeError, match="level 'inner' must be a scalar"):
        inner.minimize(z)
    with pytest.raises(ValueError, match="method='bogus'"):
        m.solve(method="bogus")
    with pytest.raises(ValueError, match="sigma"):
        m.solve(method="penalty", sigma=-1.0)


# --- command line ------------------------------------------------------------------------------------------------

def test_cli_solves_a_bilevel_file(capsys):
    from optdsl.cli import main
    path = str(ROOT / "bilevel_quadratic_toy.py")
    rc = main(["solve", path, "-q"])                  # no options: the defaults reach the answer
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "LOCALLY_OPTIMAL" in out and "objective=0.83904" in out
    # a named method with its flags still works
    rc = main(["solve", path, "--method", "implicit", "--lr-x", "0.3", "--lr-y", "0.4", "-q"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "LOCALLY_OPTIMAL" in out and "objective=0.83904" in out
