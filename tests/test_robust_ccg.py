"""Column-and-constraint generation: Zeng-Zhao trace, enumeration agreement, statuses, bad input."""
import itertools

import numpy as np
import pytest

from optdsl.solvers.common import Status
from optdsl.solvers.robust import Box, Budget, Ellipsoid
from optdsl.solvers.robust.ccg import TwoStageProblem, ccg, recourse_value, solve_extensive_form
from optdsl.solvers.robust.testing import random_location, zeng_zhao_location


@pytest.mark.parametrize("mode", ["vertices", "milp"])
def test_zeng_zhao_instance(mode):
    prob, opt = zeng_zhao_location()
    out = ccg(prob, subproblem=mode)
    assert out.status is Status.OPTIMAL and out.objective == pytest.approx(opt, abs=1e-6)
    first = out.history[0]  # the paper's first iteration: LB 14296, UB 35238
    assert first["lower_bound"] == pytest.approx(14296, abs=1e-6)
    assert first["upper_bound"] == pytest.approx(35238, abs=1e-6)
    assert out.iterations <= 3 and out.certificates["gap"] <= 1e-6 * opt
    lbs = [h["lower_bound"] for h in out.history]
    ubs = [h["upper_bound"] for h in out.history]
    assert lbs == sorted(lbs) and ubs == sorted(ubs, reverse=True)
    # independent check of the UB: the worst vertex recourse cost at the returned x
    worst = max(recourse_value(prob, out.x, v)[0] for v in prob.uset.vertices())
    assert prob.c @ out.x + worst == pytest.approx(opt, abs=1e-6)


def _tiny():
    """2 products, 2 demand sites, 4-vertex box: x capacities (continuous), y shipments + unmet demand."""
    # rows: cap_i: -Σ_j y_ij ≥ -x_i;  dem_j: Σ_i y_ij + s_j ≥ 3 + u_j, u ∈ [-1,1]^2
    G = np.array([[-1, -1, 0, 0, 0, 0], [0, 0, -1, -1, 0, 0], [1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 1.0]])
    E = np.array([[1, 0], [0, 1], [0, 0], [0, 0.0]])
    M = np.array([[0, 0], [0, 0], [-1, 0], [0, -1.0]])
    d = np.array([1, 2, 2, 1, 10, 10.0])  # shipping costs, 10 per unit of unmet demand
    return TwoStageProblem(c=np.array([3.0, 4.0]), d=d, G=G, h=np.array([0, 0, 3, 3.0]), E=E, M=M,
                           uset=Box(np.zeros(2), radius=1.0), lb=np.zeros(2), ub=np.full(2, 10.0))


@pytest.mark.parametrize("mode", ["vertices", "milp"])
def test_tiny_instance_equals_enumeration(mode):
    prob = _tiny()
    out = ccg(prob, subproblem=mode)
    ef = solve_extensive_form(prob)
    assert ef.extras["scenarios"].shape == (4, 2)
    assert out.status is Status.OPTIMAL and out.objective == pytest.approx(ef.objective, abs=1e-6)
    # brute force over a grid of first-stage decisions (objective is piecewise linear with integer kinks)
    grid = np.arange(0, 7.0, 1.0)
    brute = min(prob.c @ x + max(recourse_value(prob, x, v)[0] for v in prob.uset.vertices())
                for x in itertools.product(grid, grid))
    assert out.objective == pytest.approx(brute, abs=1e-6)


@pytest.mark.parametrize("integer", [True, False])
def test_random_location_budget_milp_vs_extensive_form(integer):
    prob = random_location(3, 5, gamma=2, seed=3, integer=integer)
    out = ccg(prob, subproblem="milp")
    ef = solve_extensive_form(prob)
    assert len(ef.extras["scenarios"]) == 40  # C(5,2)·2²
    assert out.status is Status.OPTIMAL
    assert out.objective == pytest.approx(ef.objective, rel=1e-7)
    assert out.iterations < 40


def test_infeasible_recourse_becomes_feasibility_cut():
    # min x + max_u min {y : y ≥ u, y ≤ x}, u ∈ [0, 2]: x = 2, cost 4.
    prob = TwoStageProblem(c=[1.0], d=[1.0], G=[[1.0], [-1.0]], h=[0.0, 0.0], E=[[0.0], [1.0]],
                           M=[[-1.0], [0.0]], uset=Box([1.0], radius=1.0), lb=[0.0], ub=[10.0])
    out = ccg(prob, subproblem="vertices")
    assert out.status is Status.OPTIMAL and out.objective == pytest.approx(4.0)
    assert np.isinf(out.history[0]["upper_bound"])
    assert out.x[0] == pytest.approx(2.0)


def test_statuses():
    prob = random_location(3, 5, gamma=2, seed=3)
    out = ccg(prob, max_iter=1)
    assert out.status is Status.ITERATION_LIMIT and out.certificates["gap"] > 0 and out.x is not None
    out = ccg(prob, callback=lambda info: False)
    assert out.status is Status.INTERRUPTED and len(out.history) == 1
    bad = _tiny()
    bad.ub = np.full(2, -1.0)
    bad.lb = np.full(2, -2.0)
    bad.A, bad.b = np.eye(2), np.zeros(2)  # x ≥ 0 and x ≤ −1: empty first stage
    out = ccg(bad)
    assert out.status is Status.INFEASIBLE and out.objective is None


def test_bad_input():
    base = dict(c=[1.0], d=[1.0], G=[[1.0]], h=[0.0], E=[[0.0]], M=[[-1.0]], uset=Box([0.0]))
    with pytest.raises(ValueError, match=r"M must have shape \(1, 2\)"):
        TwoStageProblem(**{**base, "uset": Box([0.0, 0.0])})
    with pytest.raises(ValueError, match=r"G must have shape \(q, 1\)"):
        TwoStageProblem(**{**base, "G": [[1.0, 2.0]]})
    with pytest.raises(ValueError, match=r"E must have shape \(1, 1\)"):
        TwoStageProblem(**{**base, "E": [[0.0, 1.0]]})
    with pytest.raises(TypeError, match="UncertaintySet"):
        TwoStageProblem(**{**base, "uset": None})
    with pytest.raises(ValueError, match="polyhedral"):
        ccg(TwoStageProblem(**{**base, "uset": Ellipsoid([0.0])}))
    with pytest.raises(ValueError, match="subproblem"):
        ccg(TwoStageProblem(**base), subproblem="benders")
    with pytest.raises(ValueError, match="vertices"):
        ccg(TwoStageProblem(**{**base, "M": -np.ones((1, 30)), "uset": Budget(np.zeros(30), gamma=5)}),
            subproblem="vertices")


def test_small_big_m_is_raised_automatically():
    prob, opt = zeng_zhao_location()
    out = ccg(prob, subproblem="milp", big_m=10.0)   # shipments up to ~500 need M ≥ 1000
    assert out.status is Status.OPTIMAL and out.objective == pytest.approx(opt, abs=1e-6)
    assert out.extras["big_m"] >= 1000
    out = ccg(prob, subproblem="milp", big_m=1e-3)   # 4 tries (1e-3..1) cannot reach it: a clear status
    assert out.status is Status.OTHER_ERROR and "big_m" in out.message
