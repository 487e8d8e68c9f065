"""Levels compose with robust constraints (a vertex counterpart inside each level), with a black-box leader
objective (a zeroth-order loop over f(x, y*(x))), and say what to write instead of an m.module follower.
Each answer below is derived by hand in the comment above it."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import optdsl as od


def _robust_follower():
    # follower y = argmin (y − x)² s.t. a·y <= 1 for all a ∈ [0.5, 1.5]: the worst case a = 1.5 gives
    # y*(x) = min(x, 2/3). Leader min (x − 2)² + (y − 2)² on [0, 3]: for x >= 2/3, (x − 2)² + (4/3)² → x = 2,
    # F = 16/9; for x < 2/3, 2(x − 2)² > 2(4/3)². The follower's multiplier: 2(y − x) + 1.5λ = 0 → λ = 16/9.
    m = od.Model("robust_follower")
    x = m.variable(lb=0, ub=3, name="x")
    f = m.level("f")
    y = f.variable(name="y")
    a = m.uncertain(within=od.Box(lo=0.5, hi=1.5), name="a")
    f.minimize((y - x) ** 2)
    f.subject_to(a * y <= 1, name="cap")
    m.minimize((x - 2) ** 2 + (y - 2) ** 2)
    return m, x, y


def test_robust_constraint_in_a_follower_hand_derived():
    m, x, y = _robust_follower()
    res = m.solve()
    assert res.chain == ["robust_levels_to_vertices", "bilevel"]
    assert res.status.name == "LOCALLY_OPTIMAL"
    assert res.objective == pytest.approx(16 / 9, abs=1e-5)
    assert x.value == pytest.approx(2.0, abs=1e-5) and y.value == pytest.approx(2 / 3, abs=1e-5)
    assert res.duals["cap"] == pytest.approx(16 / 9, abs=1e-5)   # the vertex rows' multipliers, summed
    assert res.certificates["robust_violation"] <= 1e-9
    assert not any("@vertex" in k for k in res.duals)


def test_ellipsoidal_uncertainty_in_a_follower_hand_derived():
    # aᵀy <= 1 for all a = (1, 1) + w, ‖w‖ <= 1/2: the worst case y1 + y2 + ‖y‖/2 <= 1. The follower projects
    # (x, x) onto that symmetric set: y = (s, s) with s = min(x, s*), s* = 1/(2 + √2/2). Leader (x − 1)² + ‖y − 1‖²
    # on [0, 2]: x = 1, F = 2(1 − s*)²; multiplier 2(1 − s*)/(1 + 1/(2√2))
    s_star = 1 / (2 + np.sqrt(2) / 2)
    m = od.Model("ellipsoid_follower")
    x = m.variable(lb=0, ub=2, name="x")
    f = m.level("f")
    y = f.variable(2, name="y")
    a = m.uncertain(2, within=od.Ellipsoid(np.ones(2), rho=0.5), name="a")
    f.minimize(od.sum_squares(y - x))
    f.subject_to(a @ y <= 1, name="cap")
    m.minimize((x - 1) ** 2 + od.sum_squares(y - 1))
    res = m.solve()
    assert res.chain == ["robust_levels_to_vertices", "bilevel"] and res.status.name == "LOCALLY_OPTIMAL"
    assert res.objective == pytest.approx(2 * (1 - s_star) ** 2, abs=1e-8)
    np.testing.assert_allclose(y.value, [s_star, s_star], atol=1e-8)
    assert res.duals["cap"] == pytest.approx(2 * (1 - s_star) / (1 + 1 / (2 * np.sqrt(2))), abs=1e-6)


def test_the_nominal_follower_would_answer_differently():
    # a = 1 (the centre): y*(x) = min(x, 1), F = (x − 2)² + 1 at x = 2: the robust answer is not the nominal one
    m = od.Model("nominal")
    x = m.variable(lb=0, ub=3, name="x")
    f = m.level("f")
    y = f.variable(name="y")
    f.minimize((y - x) ** 2)
    f.subject_to(y <= 1, name="cap")
    m.minimize((x - 2) ** 2 + (y - 2) ** 2)
    assert m.solve().objective == pytest.approx(1.0, abs=1e-5)


def test_robust_lp_follower_keeps_the_kkt_route():
    # follower max y s.t. a·y <= x for all a ∈ [1, 2], 0 <= y <= 3: y*(x) = min(x/2, 3). Leader min x − 3y on
    # [0, 10]: −x/2 on [0, 6], x − 9 beyond → x = 6, y = 3, F = −3. Multiplier of the binding vertex a = 2:
    # −1 + 2λ = 0 → 1/2 (the bound y <= 3 is active with multiplier 0: degenerate, the MILP picks one)
    m = od.Model("robust_lp_follower")
    x = m.variable(lb=0, ub=10, name="x")
    f = m.level("f")
    y = f.variable(lb=0, ub=3, name="y")
    a = m.uncertain(within=od.Box(lo=1.0, hi=2.0), name="a")
    f.maximize(y)
    f.subject_to(a * y <= x, name="cap")
    m.minimize(x - 3 * y)
    res = m.solve()
    assert res.chain == ["robust_levels_to_vertices", "bilevel_to_kkt", "mip"]
    assert res.status.name == "OPTIMAL" and res.objective == pytest.approx(-3.0, abs=1e-7)
    assert x.value == pytest.approx(6.0, abs=1e-7) and y.value == pytest.approx(3.0, abs=1e-7)


def test_robust_coupled_leader_constraint():
    # follower max y s.t. y <= x; leader min −x − y s.t. x + b·y <= 9 for all b ∈ [1, 2]: with y = x the worst
    # case is 3x <= 9 → x = y = 3, F = −6 (the nominal b = 1.5 would allow x = 3.6)
    m = od.Model("robust_leader")
    x = m.variable(lb=0, ub=10, name="x")
    f = m.level("f")
    y = f.variable(lb=0, ub=10, name="y")
    f.maximize(y)
    f.subject_to(y <= x, name="cap")
    b = m.uncertain(within=od.Box(lo=1.0, hi=2.0), name="b")
    m.subject_to(x + b * y <= 9, name="budget")
    m.minimize(-x - y)
    res = m.solve()
    assert res.status.name == "OPTIMAL" and res.objective == pytest.approx(-6.0, abs=1e-7)
    assert res.certificates["robust_violation"] <= 1e-9


def test_robust_budget_set_in_a_follower():
    # follower max y1 + y2 s.t. (1 + u1)·y1 + (1 + u2)·y2 <= x for all u with |u_i| <= 1/2, |u1| + |u2| <= 1/2
    # (Budget, Γ = 1 on z = 2u), 0 <= y <= 3. Its vertices are (±1/2, 0), (0, ±1/2): the worst cases
    # 1.5·y1 + y2 <= x and y1 + 1.5·y2 <= x, so y1 = y2 = min(x/2.5, 3). Leader min x − 1.5(y1 + y2) on [0, 10]:
    # −0.2x up to x = 7.5, then x − 9 → x = 7.5, y = (3, 3), F = −1.5 (a linear leader: the KKT route, certified)
    m = od.Model("budget_follower")
    x = m.variable(lb=0, ub=10, name="x")
    f = m.level("f")
    y = f.variable(2, lb=0, ub=3, name="y")
    u = m.uncertain(2, within=od.Budget(np.zeros(2), radius=0.5, gamma=1.0), name="u")
    f.maximize(od.sum(y))
    f.subject_to((1 + u) @ y <= x, name="cap")
    m.minimize(x - 1.5 * od.sum(y))
    res = m.solve()
    assert res.status.name == "OPTIMAL" and res.objective == pytest.approx(-1.5, abs=1e-7)
    assert x.value == pytest.approx(7.5, abs=1e-7)
    np.testing.assert_allclose(y.value, [3.0, 3.0], atol=1e-7)


def test_robust_polyhedron_set_in_a_follower():
    # u ∈ {u >= 0, u1 + u2 <= 1} (vertices (0, 0), (1, 0), (0, 1)): (1 + u1)·y1 + (1 + u2)·y2 <= x for all of
    # them means 2y1 + y2 <= x and y1 + 2y2 <= x; the follower maximizes y1 + y2 with y <= 2: y1 = y2 =
    # min(x/3, 2). Leader min x − 2(y1 + y2) on [0, 10]: −x/3 up to x = 6, then x − 8 → x = 6, F = −2
    m = od.Model("polyhedron_follower")
    x = m.variable(lb=0, ub=10, name="x")
    f = m.level("f")
    y = f.variable(2, lb=0, ub=2, name="y")
    u = m.uncertain(2, within=od.Polyhedron(np.array([[-1.0, 0], [0, -1], [1, 1]]), np.array([0.0, 0, 1])),
                    name="u")
    f.maximize(od.sum(y))
    f.subject_to((1 + u) @ y <= x, name="cap")
    m.minimize(x - 2 * od.sum(y))
    res = m.solve()
    assert res.status.name == "OPTIMAL" and res.objective == pytest.approx(-2.0, abs=1e-7)
    assert x.value == pytest.approx(6.0, abs=1e-7)


def test_rows_with_their_own_uncertain_coefficients_need_only_their_own_corners():
    # (A + U) y <= x + 1 for every U with |U_ij| <= 0.1 A_ij: U has 9 components (512 vertices), but row i reads
    # only U[i, :], so 2³ = 8 patterns put every row at each of its corners. With y >= 0 the worst case is
    # 1.1 A y <= x + 1. Leader min x − 2 Σy on [0, 5]: checked against a grid of x, the follower by linprog
    from scipy.optimize import linprog
    A = np.array([[1.0, 0.5, 0.2], [0.3, 1.0, 0.4], [0.2, 0.6, 1.0]])
    m = od.Model("separable_box")
    x = m.variable(lb=0, ub=5, name="x")
    f = m.level("f")
    y = f.variable(3, lb=0, ub=10, name="y")
    U = m.uncertain((3, 3), within=od.Box(np.zeros((3, 3)), radius=0.1 * A), name="U")
    f.maximize(od.sum(y))
    f.subject_to((A + U) @ y <= x + 1, name="rows")
    m.minimize(x - 2 * od.sum(y))
    rewritten = m.plan().steps[0].problem.extensions["bilevel"][0].constraints
    assert sum(c.name.startswith("rows@vertex") for c in rewritten) == 8
    res = m.solve()
    grid = np.linspace(0, 5, 51)
    best = min(t - 2 * -linprog(-np.ones(3), A_ub=1.1 * A, b_ub=np.full(3, t + 1), bounds=[(0, 10)] * 3).fun
               for t in grid)
    assert res.status.name == "OPTIMAL" and res.objective == pytest.approx(best, abs=1e-7)


def test_a_soft_robust_constraint_in_a_follower_pays_for_its_worst_case():
    # follower max y − 0.4·max_a (a·y − x)₊ over a ∈ [1, 2], y <= 5: the worst case a = 2 costs 0.8 per unit of
    # y, less than its gain 1, so y = 5 whatever x; the leader's x − 2y is then smallest at x = 0: F = −10, and
    # the reported violation is the worst case 2·5 − 0 = 10 (not the nominal 1.5·5)
    m = od.Model("soft_robust_follower")
    x = m.variable(lb=0, ub=4, name="x")
    f = m.level("f")
    y = f.variable(lb=-10, ub=10, name="y")
    a = m.uncertain(within=od.Box(lo=1.0, hi=2.0), name="a")
    f.maximize(y)
    f.subject_to(a * y <= x, name="soft_cap", penalty=0.4)
    f.subject_to(y <= 5, name="hard_cap")
    m.minimize(x - 2 * y)
    res = m.solve()
    assert res.chain == ["soft_to_penalty", "robust_levels_to_vertices", "bilevel_to_kkt", "mip"]
    assert res.status.name in ("OPTIMAL", "LOCALLY_OPTIMAL") and res.objective == pytest.approx(-10.0, abs=1e-7)
    assert res.certificates["soft_violation"]["soft_cap"] == pytest.approx(10.0, abs=1e-7)


def test_a_follower_minimizes_its_worst_case_cost():
    # follower min_y max_{c ∈ [0, 2]} (c − 1)·y + (y − x)² = |y| + (y − x)²: y*(x) = x − 1/2 for x > 1/2 (a soft
    # threshold). Leader min (x − 2)² + (y − 2)² on [0, 4]: (x − 2)² + (x − 2.5)² → x = 2.25, y = 1.75, F = 1/8
    # (the nominal follower c = 1 would give y = x and F = 0 at x = 2)
    m = od.Model("worst_case_follower")
    x = m.variable(lb=0, ub=4, name="x")
    f = m.level("f")
    y = f.variable(name="y")
    c = m.uncertain(within=od.Box(lo=0.0, hi=2.0), name="c")
    f.minimize((c - 1) * y + (y - x) ** 2)
    m.minimize((x - 2) ** 2 + (y - 2) ** 2)
    res = m.solve()
    assert res.chain == ["robust_levels_to_vertices", "bilevel"] and res.status.name == "LOCALLY_OPTIMAL"
    assert x.value == pytest.approx(2.25, abs=1e-6) and y.value == pytest.approx(1.75, abs=1e-6)
    assert res.objective == pytest.approx(0.125, abs=1e-8)
    assert sorted(res.values) == ["x", "y"]        # the epigraph variable is not reported


def test_a_leader_minimizes_its_worst_case_cost():
    # leader min_x max_{d ∈ [0.5, 2]} d·x − 1.5y with y*(x) = x (follower max y s.t. y <= x), x ∈ [1, 4]:
    # the worst case d = 2 gives 0.5x → x = 1, F = 0.5 (the nominal d = 1.25 would give −0.25x → x = 4)
    m = od.Model("worst_case_leader")
    x = m.variable(lb=1, ub=4, name="x")
    f = m.level("f")
    y = f.variable(lb=0, ub=10, name="y")
    f.maximize(y)
    f.subject_to(y <= x, name="cap")
    d = m.uncertain(within=od.Box(lo=0.5, hi=2.0), name="d")
    m.minimize(d * x - 1.5 * y)
    res = m.solve()
    assert res.chain == ["robust_levels_to_vertices", "bilevel_to_kkt", "mip"] and res.status.name == "OPTIMAL"
    assert res.objective == pytest.approx(0.5, abs=1e-9) and x.value == pytest.approx(1.0, abs=1e-9)


def _blackbox_leader():
    # follower y = argmin (y − x)² s.t. y <= 1: y*(x) = min(x, 1). Leader (a black box) C(x, y) = (x − 2)² +
    # 3(y − 0.5)² on [0, 3]: for x >= 1, (x − 2)² + 0.75 → x = 2, F = 0.75; for x < 1 the minimum of
    # (x − 2)² + 3(x − 0.5)² is at x = 7/8 with F = 1.6875. Answer x = 2, y = 1, F = 3/4; multiplier 2(1 − 2)+λ=0 → 2
    m = od.Model("blackbox_leader")
    x = m.variable(lb=0, ub=3, name="x")
    f = m.level("f")
    y = f.variable(name="y")
    f.minimize((y - x) ** 2)
    f.subject_to(y <= 1, name="cap")
    m.minimize(od.blackbox(lambda a, b: float((a - 2) ** 2 + 3 * (b - 0.5) ** 2))(x, y))
    return m, x, y


def test_blackbox_leader_by_a_zeroth_order_loop_hand_derived():
    m, x, y = _blackbox_leader()
    res = m.solve()
    assert res.chain == ["bilevel"] and "method zo" in res.message
    assert res.status.name == "LOCALLY_OPTIMAL", res.message   # zo's stationarity test passed
    assert res.objective == pytest.approx(0.75, abs=1e-8)
    assert x.value == pytest.approx(2.0, abs=1e-5) and y.value == pytest.approx(1.0, abs=1e-7)
    assert res.duals["cap"] == pytest.approx(2.0, abs=1e-5)
    assert res.certificates["lower_level_gap"] <= 1e-7


def test_blackbox_leader_is_reproducible_and_honest_on_a_short_budget():
    a, b = (m.solve(max_iter=5) for m, _, _ in [_blackbox_leader() for _ in range(2)])
    assert a.values["x"] == b.values["x"] and a.values["x"] != 0.0   # a fixed seed: the same run twice
    assert a.status.name == "ITERATION_LIMIT"             # 5 steps pass no stationarity test


def test_blackbox_leader_steps_do_not_depend_on_the_scale_of_its_cost():
    # lr="auto" divides the estimates by their running RMS: c·C gives the same iterates for every c > 0
    def build(c):
        m = od.Model("scaled")
        x = m.variable(lb=0, ub=3, name="x")
        f = m.level("f")
        y = f.variable(name="y")
        f.minimize((y - x) ** 2)
        f.subject_to(y <= 1, name="cap")
        m.minimize(od.blackbox(lambda a, b: c * float((a - 2) ** 2 + 3 * (b - 0.5) ** 2))(x, y))
        return m
    xs = [build(c).solve(max_iter=20).values["x"] for c in (1.0, 1e4)]
    assert xs[0] == pytest.approx(xs[1], abs=1e-12)


def test_blackbox_leader_respects_its_bounds():
    # follower y = x/2 (unconstrained, strongly convex: Newton). Leader −x + (y − 1)² = −x + (x/2 − 1)²,
    # decreasing on [0, 3] (derivative x/2 − 2 < 0): the optimum is the bound x = 3, F = −2.75
    m = od.Model("blackbox_at_bound")
    x = m.variable(lb=0, ub=3, name="x")
    f = m.level("f")
    y = f.variable(name="y")
    f.minimize((y - x / 2) ** 2)
    m.minimize(od.blackbox(lambda a, b: float(-a + (b - 1) ** 2))(x, y))
    res = m.solve()
    assert 0 <= x.value <= 3 and x.value == pytest.approx(3.0, abs=1e-9)
    assert res.objective == pytest.approx(-2.75, abs=1e-8)
    assert res.status.name == "LOCALLY_OPTIMAL", res.message


def _blackbox_leader_with_a_coupled_constraint():
    # follower y*(x) = min(x, 1) as above; leader (a black box) (x − 2)² + (y − 1.5)² s.t. x + y <= 2.5 (it reads
    # the follower's y). For x >= 1, y = 1 and x <= 1.5: (x − 2)² + 0.25 is smallest at the constraint, x = 1.5,
    # F = 0.5; on [0, 1], (x − 2)² + (x − 1.5)² decreases. Multiplier: dF/dx = −1 = −μ·d(x + y*)/dx → μ = 1
    m = od.Model("blackbox_coupled")
    x = m.variable(lb=0, ub=3, name="x")
    f = m.level("f")
    y = f.variable(name="y")
    f.minimize((y - x) ** 2)
    f.subject_to(y <= 1, name="cap")
    m.minimize(od.blackbox(lambda a, b: float((a - 2) ** 2 + (b - 1.5) ** 2))(x, y))
    m.subject_to(x + y <= 2.5, name="budget")
    return m, x, y


def test_blackbox_leader_takes_leader_constraints():
    m, _, _ = _blackbox_leader_with_a_coupled_constraint()
    assert "chosen: bilevel" in m.explain()


def test_a_named_gradient_method_does_not_ignore_leader_constraints():
    m, _, _ = _blackbox_leader_with_a_coupled_constraint()
    with pytest.raises(ValueError, match="method='hyper' needs the leader's gradient.*method='zo'"):
        m.solve(method="hyper")


@pytest.mark.slow
def test_blackbox_leader_with_a_coupled_constraint_hand_derived():
    m, x, y = _blackbox_leader_with_a_coupled_constraint()
    res = m.solve(max_iter=40)
    assert res.status.name == "LOCALLY_OPTIMAL" and res.primal_status.name == "FEASIBLE_POINT", res.message
    assert x.value == pytest.approx(1.5, abs=1e-5) and y.value == pytest.approx(1.0, abs=1e-9)
    assert res.objective == pytest.approx(0.5, abs=1e-5) and res.duals["budget"] == pytest.approx(1.0, abs=1e-4)


def test_blackbox_leader_needs_a_unique_follower_answer():
    # y1 + y2 = x leaves a line of follower optima, and the black box reads y1: F is not a function of x
    m = od.Model("not_unique")
    x = m.variable(lb=0, ub=3, name="x")
    f = m.level("f")
    y = f.variable(2, name="y")
    f.minimize((y[0] + y[1] - x) ** 2)
    m.minimize(od.blackbox(lambda a, b: float((a - 2) ** 2 + b[0] ** 2))(x, y))
    with pytest.raises(ValueError, match=r"unique follower answer.*not strongly convex in y.*Hessian eigenvalue"):
        m.solve()


def test_zo_method_by_name_on_a_differentiable_leader_agrees_with_hyper():
    m, x, y = _blackbox_leader()
    m2 = od.Model("fn_leader")
    x2 = m2.variable(lb=0, ub=3, name="x")
    f = m2.level("f")
    y2 = f.variable(name="y")
    f.minimize((y2 - x2) ** 2)
    f.subject_to(y2 <= 1, name="cap")
    m2.minimize(od.fn(lambda a, b: (a - 2) ** 2 + 3 * (b - 0.5) ** 2)(x2, y2))
    exact = m2.solve()
    assert "method hyper" in exact.message and exact.objective == pytest.approx(0.75, abs=1e-9)
    x2.value, y2.value = 0.0, 0.0
    zo = m2.solve(method="zo")
    assert "method zo" in zo.message and zo.objective == pytest.approx(0.75, abs=1e-6)


def test_gallery_robust_bilevel_blackbox_against_enumeration():
    path = Path(__file__).resolve().parent.parent / "problems" / "robust_bilevel_blackbox.py"
    spec = importlib.util.spec_from_file_location("robust_bilevel_blackbox", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    grid = np.linspace(0.0, 4.0, 400_001)
    q = mod.firm_output(grid)
    cost = np.array([mod.simulate(s, v) for s, v in zip(grid[::100], q[::100])])   # the simulator itself
    k = int(np.argmin(cost))
    res = mod.build().solve()
    assert res.objective <= cost[k] + 1e-9                          # no grid point of s does better
    assert res.values["s"] == pytest.approx(grid[::100][k], abs=1e-3)
    assert res.values["q"] == pytest.approx(mod.firm_output(res.values["s"]), abs=1e-7)


def test_a_model_wide_module_with_levels_is_refused_with_the_nearest_form():
    net = torch.nn.Linear(2, 1)
    X, Y = torch.randn(20, 2), torch.randn(20, 1)
    m = od.Model("module_follower")
    lam = m.variable(lb=0, ub=1, name="lam")
    f = m.level("f")
    w = f.variable(2, name="w")
    m.module(net)
    f.minimize(od.sum_squares(w) + lam * od.sum(w))
    m.minimize(od.mean(lambda b: ((net(b[0]) - b[1]) ** 2).mean(), over=(X, Y), batch=5) + lam)
    with pytest.raises(od.NotSolvableError, match=r"levels \(m\.level\) and m\.module") as e:
        m.solve()
    assert "f.module(net)" in str(e.value) and "od.fn" in str(e.value)


def _ridge_data():
    rng = np.random.default_rng(0)
    X, Xv = rng.normal(size=(30, 3)), rng.normal(size=(30, 3))
    w_true = np.array([1.0, -2.0, 0.5])
    return X, X @ w_true + rng.normal(size=30), Xv, Xv @ w_true + 0.1 * rng.normal(size=30)


def _ridge_validation(X, t, Xv, tv, lam):
    """Closed form: w*(λ) = (XᵀX/n + λI)⁻¹ Xᵀt/n, and its validation loss."""
    w = np.linalg.solve(X.T @ X / 30 + lam * np.eye(3), X.T @ t / 30)
    return float(np.sum((Xv @ w - tv) ** 2) / 30), w


def test_a_module_follower_is_trained_in_place():
    # the follower trains a torch network (a linear layer: ridge regression, strongly convex) given the leader's
    # regularization weight λ; the leader's validation loss is checked against a grid of λ (closed-form ridge)
    X, t, Xv, tv = _ridge_data()
    Xt, tt, Xvt, tvt = (torch.as_tensor(a) for a in (X, t, Xv, tv))
    net = torch.nn.Linear(3, 1, bias=False).double()
    m = od.Model("module_follower")
    lam = m.variable(lb=1e-3, ub=10, name="lam")
    f = m.level("fit")
    f.module(net, name="ridge")
    f.minimize(od.fn(lambda l_: ((net(Xt).reshape(-1) - tt) ** 2).mean() + l_ * (net.weight ** 2).sum())(lam))
    m.minimize(od.fn(lambda: ((net(Xvt).reshape(-1) - tvt) ** 2).mean(), shape=())())
    assert "level 'fit': over module ridge" in str(m) and r"\theta_{\text{ridge}}" in m.to_latex()
    res = m.solve()
    grid = np.linspace(1e-3, 10, 20001)
    best = min(_ridge_validation(X, t, Xv, tv, g)[0] for g in grid)
    assert res.status.name == "LOCALLY_OPTIMAL" and "method hyper" in res.message
    assert res.objective <= best + 1e-10
    _, w = _ridge_validation(X, t, Xv, tv, float(lam.value))
    np.testing.assert_allclose(net.weight.detach().numpy().reshape(-1), w, atol=1e-8)   # updated in place


@pytest.mark.slow
def test_a_module_follower_under_a_blackbox_leader():
    # the same ridge follower; the leader's validation loss computed by numpy from the network's predictions (a
    # black box): the zeroth-order leader, the network solved by Newton at each evaluation, checked on a grid of λ
    X, t, Xv, tv = _ridge_data()
    Xt, tt, Xvt = (torch.as_tensor(a) for a in (X, t, Xv))
    net = torch.nn.Linear(3, 1, bias=False).double()
    m = od.Model("module_zo")
    lam = m.variable(lb=1e-3, ub=1, name="lam")
    f = m.level("fit")
    f.module(net, name="ridge")
    f.minimize(od.fn(lambda l_: ((net(Xt).reshape(-1) - tt) ** 2).mean() + l_ * (net.weight ** 2).sum())(lam))

    def validation(_):
        with torch.no_grad():
            return float(np.mean((net(Xvt).reshape(-1).numpy() - tv) ** 2))
    m.minimize(od.blackbox(validation)(lam))
    res = m.solve()
    best = min(_ridge_validation(X, t, Xv, tv, g)[0] for g in np.linspace(1e-3, 1, 4001))
    assert res.status.name == "LOCALLY_OPTIMAL" and "method zo" in res.message
    assert res.objective <= best + 1e-9


def test_a_module_follower_in_the_wrong_dtype_is_named():
    net = torch.nn.Linear(3, 1)     # float32
    m = od.Model("module_dtype")
    lam = m.variable(lb=0, ub=1, name="lam")
    f = m.level("fit")
    f.module(net, name="ridge")
    f.minimize(od.fn(lambda l_: (net.weight ** 2).sum() * (1 + l_))(lam))
    m.minimize(lam)
    with pytest.raises(ValueError, match=r"module 'ridge' has torch.float32 parameters.*net.to"):
        m.solve()


def test_a_follower_with_weights_as_level_variables_trains_them():
    # the same ridge follower with its weights as level variables and its loss through od.fn (a torch function):
    # w*(λ) = (XᵀX/n + λI)⁻¹ Xᵀt/n; the leader's validation loss is checked against a grid of λ
    rng = np.random.default_rng(0)
    X, Xv = rng.normal(size=(30, 3)), rng.normal(size=(30, 3))
    w_true = np.array([1.0, -2.0, 0.5])
    t, tv = X @ w_true + rng.normal(size=30), Xv @ w_true + 0.1 * rng.normal(size=30)
    Xt, tt = torch.as_tensor(X), torch.as_tensor(t)
    m = od.Model("nearest_module_form")
    lam = m.variable(lb=1e-3, ub=10, name="lam")
    f = m.level("fit")
    w = f.variable(3, name="w")
    f.minimize(od.fn(lambda w_, l_: ((Xt @ w_ - tt) ** 2).mean() + l_ * (w_ ** 2).sum())(w, lam))
    m.minimize(od.sum_squares(Xv @ w - tv) / 30)
    res = m.solve()
    grid = np.linspace(1e-3, 10, 20001)

    def val(lv):
        wl = np.linalg.solve(X.T @ X / 30 + lv * np.eye(3), X.T @ t / 30)
        return float(np.sum((Xv @ wl - tv) ** 2) / 30)
    best = min(val(lv) for lv in grid)
    assert res.status.name == "LOCALLY_OPTIMAL" and res.objective <= best + 1e-8
