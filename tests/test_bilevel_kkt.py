"""The KKT route for LP / convex-QP followers (bilevel_to_kkt -> mip): BilevelJuMP's README example, random
linear bilevel instances against enumeration over a grid of the leader variable (follower LP by scipy linprog,
optimistic ties), coupled leader constraints, follower duals, big-M derivation, and dispatch."""
import numpy as np
import pytest

import optdsl as od
from optdsl.solvers.testing.linear_bilevel import enumerate_grid, random_linear_bilevel, value_at


def _model(inst):
    m = od.Model("linear_bilevel")
    x = m.variable(lb=0, ub=inst.x_hi, name="x")
    f = m.level("follower")
    y = f.variable(len(inst.d_y), lb=0, ub=inst.y_hi, name="y")
    m.minimize(inst.c_x * x + inst.c_y @ y)
    f.minimize(inst.d_y @ y)
    f.subject_to(inst.A @ y <= inst.b + inst.a * x, name="rows")
    if inst.coupled is not None:
        ex, ey, eb = inst.coupled
        m.subject_to(ex * x + ey @ y <= eb, name="coupled")
    return m, x, y


def _check_against_grid(inst, res, x, points):
    if res.status.name == "INFEASIBLE":  # claimed (big-M derived from the model): no grid point is feasible
        assert res.extras.get("big_m", {}).get("certified", True) and enumerate_grid(inst, points)[0] == np.inf
        return
    assert res.status.name == "OPTIMAL" and res.chain == ["bilevel_to_kkt", "mip"], res.message
    # the returned x with the follower's own (optimistic) answer reproduces the claimed value ...
    here, _ = value_at(inst, float(x.value))
    assert here == pytest.approx(res.objective, abs=1e-6)
    # ... no grid point does better (the route claims a global optimum) and the grid nearly attains it
    best, _ = enumerate_grid(inst, points)
    assert best >= res.objective - 1e-6
    assert best <= res.objective + 0.05 * (1 + abs(res.objective))
    assert res.certificates["lower_level_gap"] <= 1e-6 and res.certificates["complementarity"] <= 1e-6


def test_bilevel_jump_readme_example():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "problems" / "bilevel_jump_example.py"
    spec = importlib.util.spec_from_file_location("bilevel_jump_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    m = mod.build()
    res = m.solve()
    assert res.chain == ["bilevel_to_kkt", "mip"] and res.status.name == "OPTIMAL"
    assert res.objective == pytest.approx(3 * (3.5 * 8 / 15) + 8 / 15, rel=1e-9)
    assert res.values["x"] == pytest.approx(3.5 * 8 / 15) and res.values["y"] == pytest.approx(8 / 15)
    # follower: min −x; only l4 (2x − 7y <= 0) is active, stationarity −1 + 2λ4 = 0
    assert res.duals["l4"] == pytest.approx(0.5) and res.duals["l1"] == pytest.approx(0.0)
    assert res.extras["big_m"]["certified"] and res.certificates["mip_gap"] <= 1e-6


def test_random_linear_bilevel_matches_grid_enumeration():
    inst = random_linear_bilevel(ny=2, m=4, seed=1)
    m, x, y = _model(inst)
    _check_against_grid(inst, m.solve(), x, 201)


def test_coupled_leader_constraint_through_kkt():
    inst = random_linear_bilevel(ny=2, m=4, seed=7, coupled=True)
    m, x, y = _model(inst)
    res = m.solve()
    ex, ey, eb = inst.coupled
    assert ex * x.value + ey @ y.value <= eb + 1e-7
    _check_against_grid(inst, res, x, 201)
    # without the coupled row the leader does much better (x = 10): the row is what shapes the answer
    free, *_ = _model(random_linear_bilevel(ny=2, m=4, seed=7))
    assert free.solve().objective < res.objective - 1.0


def test_coupled_row_that_no_follower_response_meets_is_proven_infeasible():
    inst = random_linear_bilevel(ny=2, m=4, seed=2, coupled=True)
    m, x, y = _model(inst)
    res = m.solve()
    assert res.status.name == "INFEASIBLE" and m.last_result.chain == ["bilevel_to_kkt", "mip"]
    assert enumerate_grid(inst, 51)[0] == np.inf


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3, 9))
def test_random_linear_bilevel_fine_grid(seed):
    inst = random_linear_bilevel(ny=3, m=6, seed=seed, coupled=seed % 2 == 0)
    m, x, y = _model(inst)
    _check_against_grid(inst, m.solve(), x, 2001)


def test_qp_follower_with_linear_leader():
    # follower: y = argmin ½(y − x)² s.t. y <= 1 → y = min(x, 1); leader: min −y − x/2 on x ∈ [0, 3]
    # F(x) = −min(x, 1) − x/2 is smallest at x = 3: F = −2.5, y = 1, the follower's multiplier λ = x − y = 2
    m = od.Model("qp_follower")
    x = m.variable(lb=0, ub=3, name="x")
    f = m.level("f")
    y = f.variable(lb=-10, ub=10, name="y")   # bounds (never active) let the big-M be derived from the model
    f.minimize(0.5 * (y - x) ** 2)
    f.subject_to(y <= 1, name="cap")
    m.minimize(-y - 0.5 * x)
    res = m.solve()
    assert res.chain == ["bilevel_to_kkt", "mip"] and res.status.name == "OPTIMAL"
    assert res.objective == pytest.approx(-2.5) and res.duals["cap"] == pytest.approx(2.0)
    assert res.extras["big_m"]["certified"]


def test_follower_bounds_duals_by_name():
    # follower: max y s.t. 0 <= y <= x; leader min (x − y) − y with x in [1, 2]: y = x, leader picks x = 2
    m = od.Model("bounds")
    x = m.variable(lb=1, ub=2, name="x")
    f = m.level("f")
    y = f.variable(lb=0, ub=5, name="y")
    f.maximize(y)
    f.subject_to(y <= x, name="below_x")
    m.minimize(x - 2 * y)
    res = m.solve()
    assert res.objective == pytest.approx(-2.0)
    assert res.duals["below_x"] == pytest.approx(1.0) and res.duals["y.ub"] == pytest.approx(0.0)
    assert res.duals["y.lb"] == pytest.approx(0.0)


def test_integer_leader_composes_with_kkt():
    # leader x integer in [0, 4]; follower y = argmax y s.t. y <= 2.5 − |…| → y <= 2.5 − 0.5x; min −x − 2y
    m = od.Model("int_leader")
    x = m.variable(integer=True, lb=0, ub=4, name="x")
    f = m.level("f")
    y = f.variable(lb=0, name="y")
    f.maximize(y)
    f.subject_to(y <= 2.7 - 0.6 * x, name="cap")
    m.minimize(-x - 3 * y)
    res = m.solve()
    # F(x) = −x − 3(2.7 − 0.6x) = −8.1 + 0.8x on x with 2.7 − 0.6x >= 0 (x <= 4.5): smallest at x = 0
    assert res.objective == pytest.approx(-8.1) and x.value == 0.0


def test_unbounded_variables_fall_back_to_a_reported_big_m():
    # no bounds anywhere: M cannot be derived; the answer is still right but reported LOCALLY_OPTIMAL
    m = od.Model("unbounded")
    x = m.variable(name="x")
    f = m.level("f")
    y = f.variable(name="y")
    f.minimize(y)
    f.subject_to(y >= x, name="floor")
    m.subject_to(x >= -1, name="x_lo")
    m.minimize(y)
    res = m.solve()
    assert res.objective == pytest.approx(-1.0)
    assert res.status.name in ("OPTIMAL", "LOCALLY_OPTIMAL")
    if not res.extras["big_m"]["certified"]:
        assert res.status.name == "LOCALLY_OPTIMAL" and "big-M" in res.message


def test_dispatch_keeps_first_order_methods_for_nonquadratic_followers():
    m = od.Model("nonquad")
    x = m.variable(lb=0, ub=2, name="x")
    f = m.level("f")
    y = f.variable(name="y")
    f.minimize(od.exp(y) - x * y)
    m.minimize((y - 0.5) ** 2)
    text = m.explain()
    assert "bilevel_to_kkt" not in text.splitlines()[1]
    from optdsl.graph import analyze
    from optdsl.passes.bilevel_to_kkt import PASS
    assert "not quadratic" in PASS.why_not(m.to_problem(), analyze(m.to_problem()))


def test_integer_follower_is_refused_naming_both_structures():
    m = od.Model("int_follower")
    x = m.variable(lb=0, ub=2, name="x")
    f = m.level("f")
    y = f.variable(integer=True, lb=0, ub=3, name="y")
    f.minimize(-y)
    f.subject_to(y <= x, name="cap")
    m.minimize(x - y)
    with pytest.raises(od.NotSolvableError) as e:
        m.solve()
    assert "integer" in str(e.value) and "follower" in str(e.value)


def test_parameter_change_rebuilds_the_follower_data():
    # y = min(x, p); leader min x − 2y on [1, 2]: p = 5 → x = y = 2 (−2); p = 1.5 → x = y = 1.5 (−1.5)
    m = od.Model("param")
    x = m.variable(lb=1, ub=2, name="x")
    p = m.parameter(value=5.0, name="cap")
    f = m.level("f")
    y = f.variable(lb=0, ub=10, name="y")
    f.maximize(y)
    f.subject_to(y <= x, name="below_x")
    f.subject_to(y <= p, name="pcap")
    m.minimize(x - 2 * y)
    assert m.solve().objective == pytest.approx(-2.0)
    p.value = 1.5
    res = m.solve()
    assert res.objective == pytest.approx(-1.5) and y.value == pytest.approx(1.5)
    assert res.duals["pcap"] == pytest.approx(1.0)
