"""A status is a claim: each case below once ended with a status (or a point) that was not true."""
import numpy as np
import pytest

import optdsl as od
from optdsl import PrimalStatus
from optdsl import TerminationStatus as Status
from optdsl.certificates import is_feasible, violations

HS071_X = [1.0, 4.74299964, 3.82114998, 1.37940829]


def hs071(scale=1.0):
    m = od.Model("hs071")
    x = m.variable(4, lb=1, ub=5, name="x", value=[1, 5, 5, 1])
    m.minimize(scale * (x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2]))
    m.subject_to(od.sum_squares(x) == 40, name="sphere")
    m.subject_to(x[0] * x[1] * x[2] * x[3] >= 25, name="product")
    return m, x


def _qp():
    rng = np.random.default_rng(0)
    A, b = rng.standard_normal((30, 10)), rng.standard_normal(30)
    m = od.Model("qp")
    x = m.variable(10, name="x")
    m.minimize(od.sum_squares(A @ x - b) + od.norm1(x))
    m.subject_to(od.sum(x) == 1, name="total")
    return m, x


# --- cvxpy ----------------------------------------------------------------------------------------------------

def test_cvxpy_optimal_inaccurate_is_not_optimal():
    m, _ = _qp()
    res = m.solve(solver="cvxpy", cvxpy_solver="SCS", max_iter=5)
    assert res.extras["cvxpy_status"] == "optimal_inaccurate"
    assert res.status == Status.SLOW_PROGRESS and "without meeting its tolerances" in res.message


def test_cvxpy_limits_reach_the_default_solver():
    m, _ = _qp()
    exact = m.solve(solver="cvxpy")
    assert exact.status == Status.OPTIMAL
    limited = m.solve(solver="cvxpy", max_iter=3)           # no cvxpy_solver named: cvxpy's own choice gets it
    assert limited.iterations == 3 and limited.status == Status.ITERATION_LIMIT
    tight = m.solve(solver="cvxpy", tol=1e-10)
    assert tight.status == Status.OPTIMAL and tight.objective == pytest.approx(exact.objective, rel=1e-4)


# --- nlp: limits, scaling, feasibility models -----------------------------------------------------------------

def test_nlp_at_its_iteration_limit_says_so_and_keeps_its_iterate():
    m, _ = hs071()
    res = m.solve(solver="nlp", max_iter=1)
    assert res.status == Status.ITERATION_LIMIT and res.iterations == 1
    assert res.values["x"].shape == (4,) and np.all(np.isfinite(res.values["x"]))
    assert not np.allclose(res.values["x"], [1, 5, 5, 1])     # the iterate after one step, not the start


@pytest.mark.parametrize("solver", ["nlp", "alsketch"])
def test_hs071_reaches_the_same_point_with_its_objective_scaled_by_1e4_either_way(solver):
    points = []
    for scale in (1e-4, 1.0, 1e4):
        m, _ = hs071(scale)
        res = m.solve(solver=solver)
        assert res.status == Status.LOCALLY_OPTIMAL, (scale, res.message)
        assert res.objective / scale == pytest.approx(17.0140173, rel=1e-7)
        points.append(res.values["x"])
    np.testing.assert_allclose(points[0], HS071_X, atol=1e-6)
    for p in points[1:]:
        np.testing.assert_allclose(p, points[0], atol=1e-7)


@pytest.mark.parametrize("solver", ["cvxpy", "nlp", "alsketch", "zo"])
@pytest.mark.parametrize("objective", [None, 5.0])
def test_feasibility_models_solve_on_every_backend_that_takes_constraints(solver, objective):
    m = od.Model("feasibility")
    x = m.variable(3, lb=0, name="x")
    if objective is not None:
        m.minimize(od.Constant(objective))
    m.subject_to(od.sum(x) == 1, name="total")
    m.subject_to(x[0] >= 2 * x[1] + 0.1, name="ratio")
    res = m.solve(solver=solver, **({"max_iter": 150} if solver == "zo" else {}))
    if solver != "zo":  # zo: a short run, judged by its point
        assert res.status in (Status.OPTIMAL, Status.LOCALLY_OPTIMAL), res.message
    assert res.primal_status == PrimalStatus.FEASIBLE_POINT and res.certificates["max_violation"] <= 1e-6
    v = res.values["x"]
    assert v.sum() == pytest.approx(1.0, abs=1e-6) and v[0] >= 2 * v[1] + 0.1 - 1e-6
    assert res.objective == pytest.approx(objective or 0.0)


def test_lbfgs_reports_optimal_on_a_least_squares_model_solved_to_high_accuracy():
    rng = np.random.default_rng(0)
    A, b = rng.standard_normal((30, 10)), rng.standard_normal(30)
    m = od.Model("ls")
    x = m.variable(10, name="x")
    m.minimize(od.sum_squares(A @ x - b))
    res = m.solve(solver="lbfgs")
    assert res.status == Status.OPTIMAL, res.message
    x_star = np.linalg.lstsq(A, b, rcond=None)[0]
    assert np.abs(res.values["x"] - x_star).max() <= 1e-6
    assert np.abs(2 * A.T @ (A @ res.values["x"] - b)).max() <= 1e-5    # the gradient at the returned point


# --- feasibility tolerance --------------------------------------------------------------------------------------

def test_a_large_unrelated_variable_does_not_loosen_the_feasibility_test():
    m = od.Model("loose")
    x = m.variable(2, name="x")
    y = m.variable(name="y")
    m.minimize(od.sum_squares(x) + (y - 1e9) ** 2)
    m.subject_to(x[0] + x[1] >= 447, name="demand")
    prob = m.to_problem()
    values = {x: np.array([0.0, 0.0]), y: np.array(1e9)}              # 447 units short in 'demand'
    viol = violations(prob, values)
    assert viol["demand"] == pytest.approx(447.0)
    assert not is_feasible(prob, values, viol)     # was FEASIBLE_POINT: 1e-6·(1 + 1e9) > 447
    ok = {x: np.array([223.5, 223.5]), y: np.array(1e9)}
    assert is_feasible(prob, ok, violations(prob, ok))


# --- unbounded, diverged ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("solver", ["cvxpy", "lbfgs", "nlp", "alsketch", "zo"])
def test_an_unbounded_convex_model_is_unbounded_whichever_backend_ran(solver):
    m = od.Model("unbounded")
    x = m.variable(3, name="x")
    m.minimize(od.sum(x) + 0.1 * od.sum_squares(x[0:2]))
    res = m.solve(solver=solver, **({"max_iter": 60} if solver == "alsketch" else {"max_iter": 200} if solver == "zo"
                                    else {}))
    assert res.status == Status.UNBOUNDED, res.message
    assert "stationarity" not in res.certificates and "kkt_stationarity" not in res.certificates


@pytest.mark.parametrize("solver", ["cvxpy", "nlp", "alsketch"])
def test_an_unbounded_constrained_convex_model_is_unbounded(solver):
    m = od.Model("unbounded_c")
    x = m.variable(3, name="x")
    m.minimize(x[0] + od.sum_squares(x[1:]))
    m.subject_to(x[0] <= x[1], name="c")
    assert m.solve(solver=solver, **({"max_iter": 60} if solver == "alsketch" else {})).status == Status.UNBOUNDED


def test_a_diverged_zo_run_reports_no_stationarity_and_returns_the_best_point():
    m = od.Model("diverge")
    x = m.variable(3, name="x")
    m.minimize(1e4 * od.sum_squares(x - 1))
    res = m.solve(solver="zo", lr=10.0, max_iter=200, schedule="constant")
    assert res.status == Status.NUMERICAL_ERROR and "diverged" in res.message
    assert not any("grad" in k or "stationarity" in k for k in res.certificates)
    assert res.objective <= 3e4 + 1e-6                 # the start (f = 3e4) or better, not the run-away point


# --- interrupts and callbacks: the best point seen -------------------------------------------------------------

def _interrupting(after):
    """An od.fn term (zero) whose evaluation raises KeyboardInterrupt the `after`-th time: a Ctrl-C that
    lands inside the method, not in a callback."""
    count = [0]

    def bomb(z):
        count[0] += 1
        if count[0] == after:
            raise KeyboardInterrupt
        return z.sum() * 0
    return od.fn(bomb, name="ctrl_c")


@pytest.mark.parametrize("solver, after", [("nlp", 6), ("alsketch", 25)])
def test_ctrl_c_inside_a_smooth_run_returns_the_best_point_seen(solver, after):
    m = od.Model("interrupted")
    x = m.variable(4, lb=1, ub=5, name="x", value=[1, 5, 5, 1])
    m.minimize(x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2] + _interrupting(after)(x))
    m.subject_to(od.sum_squares(x) == 40, name="sphere")
    m.subject_to(x[0] * x[1] * x[2] * x[3] >= 25, name="product")
    seen = []
    res = m.solve(solver=solver, callback=lambda info: seen.append(dict(info["values"])))
    assert res.status == Status.INTERRUPTED and "x" in res.values
    # the returned point is one of the iterates, and none seen is better (feasible first, then objective)
    prob = m.to_problem()

    def key(vals):
        v = {x: vals["x"]}
        viol = max(violations(prob, v).values())
        f = float(prob.objective.evaluate(v))
        return (0, f) if viol <= 1e-6 * (1 + np.abs(vals["x"]).max()) else (1, viol)
    assert any(np.allclose(s["x"], res.values["x"]) for s in seen)
    assert key(res.values) <= min(key(s) for s in seen)


def test_a_callback_stop_in_zo_returns_the_best_point_seen():
    m = od.Model("zo_stop")
    x = m.variable(4, lb=-5, ub=5, name="x")
    m.minimize(od.blackbox(lambda z: float(np.sum((np.asarray(z) - 1) ** 2)))(x))
    res = m.solve(solver="zo", callback=lambda info: info["iteration"] < 50)
    assert res.status == Status.INTERRUPTED and res.iterations <= 51
    assert res.objective < 16.0                        # better than the start x = 0 (f = 4)... and finite
    assert res.objective <= 4.0


@pytest.mark.parametrize("solver", ["lbfgs", "nlp"])
def test_an_infinite_derivative_at_the_start_is_a_numerical_error_saying_so(solver):
    from scipy.optimize import brentq
    m = od.Model("edge")
    x = m.variable(2, name="x", lb=0, value=[0.0, 1.0])
    m.minimize(od.sqrt(x[0]) + od.square(x[0] - 4) + od.square(x[1]))     # sqrt'(0) = inf at the start
    res = m.solve(solver=solver)
    assert res.status == Status.NUMERICAL_ERROR and res.primal_status.value != "FEASIBLE_POINT"
    assert "not finite (NaN/inf) at the start point: start the variables inside the functions' domain" in res.message
    x.value = [1.0, 1.0]                                # inside the domain: the minimum is reached
    res = m.solve(solver=solver)
    x0 = brentq(lambda t: 0.5 / np.sqrt(t) + 2 * (t - 4), 1.0, 4.0)      # 1/(2 sqrt t) = 2 (4 - t)
    assert res.status.is_success and np.allclose(x.value, [x0, 0.0], atol=1e-5)
