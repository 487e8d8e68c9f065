"""Structures compose: soft constraints inside levels and in bilevel leaders, integers with levels, and the
errors for what does not compose (naming both structures and the nearest supported form)."""
import numpy as np
import pytest

import optdsl as od


def _soft_follower(rho):
    m = od.Model("soft_level")
    x = m.variable(lb=0, ub=4, name="x")
    f = m.level("f")
    y = f.variable(lb=-10, ub=10, name="y")   # bounded: the big-M bounds are derived, the optimum certified
    f.maximize(y)
    f.subject_to(y <= x, name="soft_cap", penalty=rho)
    f.subject_to(y <= 5, name="hard_cap")
    m.minimize(x - 2 * y)
    return m, x, y


def test_soft_constraint_in_a_level_cheap_penalty_is_ignored():
    # ρ = 0.5 < 1 = the follower's gain per unit of y: it pays the penalty and takes y = 5 whatever x is;
    # the leader then sets x = 0: objective 0 − 10, violation y − x = 5, multiplier ρ
    m, x, y = _soft_follower(0.5)
    res = m.solve()
    assert res.chain == ["soft_to_penalty", "bilevel_to_kkt", "mip"]
    assert res.status.name == "OPTIMAL" and res.objective == pytest.approx(-10.0)
    assert x.value == pytest.approx(0.0) and y.value == pytest.approx(5.0)
    assert res.certificates["soft_violation"]["soft_cap"] == pytest.approx(5.0)
    assert res.duals["soft_cap"] == pytest.approx(0.5) and res.duals["hard_cap"] == pytest.approx(0.5)
    assert not any("elastic" in k for k in list(res.values) + list(res.duals))


def test_soft_constraint_in_a_level_dear_penalty_is_obeyed():
    # ρ = 2 > 1: the follower keeps y = x; the leader's x − 2y = −x is smallest at x = 4 (y = 4 < 5)
    m, x, y = _soft_follower(2.0)
    res = m.solve()
    assert res.objective == pytest.approx(-4.0) and y.value == pytest.approx(4.0)
    assert res.certificates["soft_violation"]["soft_cap"] == pytest.approx(0.0, abs=1e-9)
    assert res.duals["soft_cap"] == pytest.approx(1.0)  # stationarity −1 + λ = 0, inside [0, ρ]


def test_soft_equality_in_a_level():
    # follower: min y s.t. y == x soft (ρ = 3), y >= 1 hard → y = max(x, 1); leader min (3 − x) + 2y on [0, 4]
    # F(x) = 3 − x + 2·max(x, 1): on [0, 1] 5 − x, on [1, 4] 3 + x → x = 1, F = 4
    m = od.Model("soft_eq")
    x = m.variable(lb=0, ub=4, name="x")
    f = m.level("f")
    y = f.variable(lb=-10, ub=10, name="y")
    f.minimize(y)
    f.subject_to(y == x, name="track", penalty=3)
    f.subject_to(y >= 1, name="floor")
    m.minimize(3 - x + 2 * y)
    res = m.solve()
    assert res.objective == pytest.approx(4.0) and x.value == pytest.approx(1.0)


def test_soft_leader_constraint_in_a_bilevel_model():
    # follower y = min(x, 5); leader min −y − 0.1x + max(x + y − 6, 0): on [0, 3] −1.1x, beyond 0.9x − 6 → x = 3
    m = od.Model("soft_leader")
    x = m.variable(lb=0, ub=5, name="x")
    f = m.level("f")
    y = f.variable(lb=0, ub=5, name="y")
    f.maximize(y)
    f.subject_to(y <= x, name="cap")
    m.minimize(-y - 0.1 * x)
    m.subject_to(x + y <= 6, name="soft_budget", penalty=1.0)
    res = m.solve()
    assert res.chain[-2:] == ["bilevel_to_kkt", "mip"] and res.status.name == "OPTIMAL"
    assert res.objective == pytest.approx(-3.3) and x.value == pytest.approx(3.0)


def test_level_penalty_must_be_positive():
    m = od.Model("bad")
    f = m.level("f")
    y = f.variable(name="y")
    with pytest.raises(od.ModelError, match="level 'f': penalty"):
        f.subject_to(y <= 1, name="c", penalty=-1)


def _error(m):
    with pytest.raises(od.NotSolvableError) as e:
        m.solve()
    return str(e.value)


def test_a_blackbox_in_the_follower_names_both_and_the_nearest_form():
    # a black-box leader objective composes (zeroth-order leader); a black box in the follower does not
    m = od.Model("bb")
    x = m.variable(lb=0, ub=1, name="x")
    f = m.level("f")
    y = f.variable(name="y")
    f.minimize((y - x) ** 2 + od.blackbox(lambda v: float(np.asarray(v) ** 2))(y))
    m.minimize(od.blackbox(lambda v: float(np.asarray(v) ** 2))(x) + y)
    text = _error(m)
    assert "level 'f' reads a black-box term" in text and "od.fn" in text
    assert "levels (m.level) and a black-box term" in text
    assert "solver='zo') is needed" not in text      # the single-structure hint would mislead here


def test_levels_with_a_large_uncertainty_set_name_both_and_the_nearest_form():
    # a box over 7 components read together by one row has 2^7 vertices, more than the level rewrite enumerates
    m = od.Model("rb")
    x = m.variable(7, lb=0, ub=1, name="x")
    f = m.level("f")
    y = f.variable(name="y")
    f.minimize((y - x.sum()) ** 2)
    u = m.uncertain(7, within=od.Box(np.zeros(7), radius=0.1), name="u")
    m.minimize(y - x.sum())
    m.subject_to((1 + u) @ x <= 1, name="rob")
    text = _error(m)
    assert "m.uncertain" in text and "levels" in text and "robust counterpart" in text
    assert "2^7 vertices" in text


def test_dag_with_integer_weights_names_both():
    m = od.Model("dag_int")
    W = m.variable((3, 3), integer=True, lb=-1, ub=1, name="W")
    m.minimize(od.sum_squares(W - 0.5))
    m.subject_to(od.acyclic(W), name="dag")
    text = _error(m)
    assert "od.acyclic(W) and integer variables" in text
