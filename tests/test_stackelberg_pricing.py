"""Stackelberg toll pricing (problems/stackelberg_pricing.py) and the KKT route's strong-duality rewrite of a
bilinear leader objective: the certified answer against enumeration over a grid of tolls (follower LP by
scipy's linprog, then the leader's best among the follower's optima: the optimistic convention)."""
import functools
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linprog

import optdsl as od

_PATH = Path(__file__).resolve().parent.parent / "problems" / "stackelberg_pricing.py"
_spec = importlib.util.spec_from_file_location("stackelberg_pricing", _PATH)
gallery = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gallery)

# the same model in numbers: q = (q1 bridge, q1 road, q2 bridge, q2 tunnel, q2 road)
_BASE = np.array([2.0, 10, 4, 3, 8])
_TOLL = np.array([[1.0, 0], [0, 0], [1, 0], [0, 1], [0, 0]])        # which toll each route pays
_A_EQ = np.array([[1.0, 1, 0, 0, 0], [0, 0, 1, 1, 1]])
_A_CAP, _B_CAP = np.array([[1.0, 0, 1, 0, 0], [0, 0, 0, 1, 0]]), np.array([8.0, 3])
_TOWN = np.array([0.0, 1, 0, 0, 1])


def leader_values(T):
    """The leader's revenue at tolls T with the optimistic follower, (with the contract, without it); -inf
    when no follower optimum meets the contract."""
    cost = _BASE + _TOLL @ T
    follower = linprog(cost, A_ub=_A_CAP, b_ub=_B_CAP, A_eq=_A_EQ, b_eq=gallery.DEMAND, method="highs")
    assert follower.status == 0
    # the follower's optima are its feasible points complementary to one dual optimum (exact, no tolerance on
    # the cost): routes with a positive reduced cost carry nothing, capacities with a positive price are full
    bounds = [(0, 0) if r > 1e-9 else (0, None) for r in follower.lower.marginals]
    full = np.abs(follower.ineqlin.marginals) > 1e-9
    out = []
    for contract in (True, False):
        A_ub, b_ub = [_A_CAP[~full]], [_B_CAP[~full]]
        if contract:
            A_ub.append(_TOWN[None])
            b_ub.append([gallery.TOWN_CAP])
        best = linprog(-(_TOLL @ T), A_ub=np.vstack(A_ub), b_ub=np.concatenate(b_ub),
                       A_eq=np.vstack([_A_EQ, _A_CAP[full]]), b_eq=np.concatenate([gallery.DEMAND, _B_CAP[full]]),
                       bounds=bounds, method="highs")
        out.append(-best.fun if best.status == 0 else -np.inf)
    return tuple(out)


def leader_value(T, contract=True):
    return leader_values(T)[0 if contract else 1]


@functools.lru_cache(maxsize=None)
def enumerate_tolls(step, top):
    """Best grid point over [0, top]² with and without the contract: ((value, T), (value, T))."""
    grid = np.arange(0.0, top + 1e-9, step)
    vals = np.array([[leader_values(np.array([a, b])) for b in grid] for a in grid])
    out = []
    for k in range(2):
        i, j = np.unravel_index(np.argmax(vals[..., k]), vals.shape[:2])
        out.append((vals[i, j, k], np.array([grid[i], grid[j]])))
    return tuple(out)


def _check(contract, step, top=12.0):
    m = gallery.build(contract=contract)
    res = m.solve()
    assert res.chain == ["maximize_to_minimize", "bilevel_to_kkt", "mip"] and res.status.name == "OPTIMAL"
    assert res.extras["big_m"]["certified"] and res.certificates["mip_gap"] <= 1e-6
    T = res.values["T"]
    # the returned tolls with the follower's own optimistic answer give the claimed revenue ...
    assert leader_value(T, contract) == pytest.approx(res.objective, abs=1e-7)
    # ... and no grid point does better (the grid holds the breakpoints, so it attains the optimum; by default
    # [0, 12]²: a bridge toll above 8 or a tunnel toll above 5 prices every user off that route)
    best, at = enumerate_tolls(step, top)[0 if contract else 1]
    assert res.objective == pytest.approx(best, abs=1e-7)
    assert res.certificates["lower_level_gap"] <= 1e-7 and res.certificates["complementarity"] <= 1e-7
    return res, at


def test_contract_binds_and_matches_grid_enumeration():
    res, at = _check(contract=True, step=1.0)
    assert res.objective == pytest.approx(43.0) and np.allclose(at, [4, 5])
    assert np.allclose(res.values["q2"], [1, 3, 0], atol=1e-7)
    assert res.values["q1"][1] + res.values["q2"][2] <= gallery.TOWN_CAP + 1e-9


def test_without_contract_the_leader_earns_more():
    res, at = _check(contract=False, step=1.0)
    assert res.objective == pytest.approx(63.0) and np.allclose(res.values["T"], [8, 5], atol=1e-7)


@pytest.mark.slow
def test_fine_grid_over_the_whole_toll_box():
    _check(contract=True, step=0.25, top=20.0)
    _check(contract=False, step=0.25, top=20.0)


def test_revenue_is_the_follower_cost_minus_its_toll_free_part():
    """The rewrite's identity on the answer: Tᵀ(tolled flow) = follower cost − base cost = dual value − base."""
    res = gallery.build().solve()
    q = np.concatenate([res.values["q1"], res.values["q2"]])
    dual_value = -(res.duals["demand1"] * 6 + res.duals["demand2"] * 4 + res.duals["bridge_cap"] * 8
                   + res.duals["tunnel_cap"] * 3)
    assert dual_value - _BASE @ q == pytest.approx(res.objective, abs=1e-7)


def _pricing_model(follower_reads_toll_in_a_row=False, revenue_scale=1.0, other_product=False):
    m = od.Model("pricing")
    p = m.variable(lb=0, ub=10, name="p")
    f = m.level("buyer")
    q = f.variable(2, lb=0, name="q")
    f.minimize((1 + p) * q[0] + 6 * q[1])
    f.subject_to(q[0] + q[1] == 3, name="need")
    if follower_reads_toll_in_a_row:
        f.subject_to(q[0] <= 5 - 0.1 * p, name="cap")
    m.maximize(revenue_scale * p * (q[1] if other_product else q[0]))
    return m


def test_scaled_revenue_is_rewritten_and_exact():
    res = _pricing_model(revenue_scale=2.5).solve()
    assert res.status.name == "OPTIMAL" and res.objective == pytest.approx(2.5 * 5 * 3)


def test_bilinear_terms_outside_the_rewrite_are_refused_with_the_reason():
    from optdsl.passes.bilevel_to_kkt import bilinear_leader, follower_data
    for kw, words in (({"other_product": True}, "not a multiple"),
                      ({"follower_reads_toll_in_a_row": True}, "do not read leader variables")):
        m = _pricing_model(**kw)
        problem = m.to_problem()
        problem = problem.with_(objective=-problem.objective, sense="min")
        form, why = bilinear_leader(problem, follower_data(problem)[0])
        assert form is None and words in why
        with pytest.raises(od.NotSolvableError):
            m.solve("mip")


def _toll_model(inst):
    Ek, Ea = inst.incidence()
    m = od.Model("tolls")
    T = m.variable(inst.A, lb=0, ub=inst.T_hi, name="T")
    users = m.level("users")
    q = users.variable(len(inst.k), lb=0, name="q")     # flow of each (commodity, tolled arc) pair
    r = users.variable(inst.K, lb=0, name="r")          # each commodity's toll-free alternative
    users.minimize(inst.base @ q + T @ (Ea @ q) + inst.out @ r)
    users.subject_to(Ek @ q + r == inst.demand, name="demand")
    users.subject_to(Ea @ q <= inst.cap, name="cap")
    m.maximize(T @ (Ea @ q))
    return m, T


def test_random_toll_instance_is_certified_and_beats_every_grid_point():
    from optdsl.solvers.testing.toll_pricing import enumerate_grid, random_toll_instance, value_at
    inst = random_toll_instance(A=2, K=4, seed=0)
    m, T = _toll_model(inst)
    res = m.solve()
    # big-M derived from the model (the dual-value floor bounds the multipliers): a certified optimum
    assert res.status.name == "OPTIMAL" and res.extras["big_m"]["certified"]
    assert value_at(inst, T.value) == pytest.approx(res.objective, abs=1e-6)
    # a toll above 13 (largest alternative 14 minus smallest base cost 1) carries nothing: grid over [0, 13]²
    best, _ = enumerate_grid(inst, step=0.5, top=13.0)
    assert best <= res.objective + 1e-6 and best >= res.objective - 0.5 * inst.demand.sum()


def test_a_maximizing_follower_and_linear_leader_terms_are_rewritten_too():
    # the buyer maximizes minus its cost; the leader also values the competitor's sales at 2 per unit
    m = od.Model("pricing_max")
    p = m.variable(lb=0, ub=10, name="p")
    buyer = m.level("buyer")
    q = buyer.variable(2, lb=0, name="q")
    buyer.maximize(-(1 + p) * q[0] - 6 * q[1])
    buyer.subject_to(q[0] + q[1] == 3, name="need")
    m.maximize(p * q[0] + 2 * q[1])
    res = m.solve()
    # p = 5 (the buyer indifferent, ties to the leader) earns 15; any p > 5 sends all 3 units away: 6
    assert res.chain[-2:] == ["bilevel_to_kkt", "mip"] and res.status.name == "OPTIMAL"
    assert res.objective == pytest.approx(15.0) and p.value == pytest.approx(5.0)


def test_lvhba_stationary_with_a_wrong_follower_is_not_locally_optimal():
    # a bilevel status is a claim about the follower too: LOCALLY_OPTIMAL only when y solves the follower
    from optdsl.solvers import Status
    from optdsl.solvers.testing.toll_pricing import random_toll_instance, value_at
    # LV-HBA's merit goes stationary at T = (20, 20) with the follower infeasible and 216 above its optimum;
    # the true revenue there is 0 (every commodity takes its toll-free alternative)
    inst = random_toll_instance(A=2, K=4, seed=0)
    m, T = _toll_model(inst)
    res = m.solve(solver="bilevel", method="lvhba", max_iter=400)
    truth = value_at(inst, T.value)
    claimed_ok = res.status in (Status.OPTIMAL, Status.LOCALLY_OPTIMAL)
    follower_ok = (res.certificates.get("lower_infeasibility", 0.0) <= 1e-5
                   and res.certificates.get("lower_level_gap", 0.0) <= 1e-3 * (1 + abs(res.objective)))
    assert not claimed_ok or follower_ok, (res.status, res.certificates)
    if not follower_ok:
        assert res.status == Status.SLOW_PROGRESS and "not the follower's solution" in res.message
        assert res.objective != pytest.approx(truth, abs=1e-3)  # the claimed revenue is not what T earns
    # the exact route on the same model: certified, and the revenue is what the tolls really earn
    exact = m.solve()
    assert exact.status == Status.OPTIMAL
    assert exact.objective == pytest.approx(value_at(inst, np.asarray(T.value)), abs=1e-6)
