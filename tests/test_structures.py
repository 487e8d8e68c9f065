"""Each structured capability end to end through the modeling layer, against known answers and peers."""
import cvxpy as cp
import numpy as np
import pytest
import torch

import optdsl as od
from optdsl import TerminationStatus as Status


def test_blackbox_goes_to_zo_and_reaches_the_prox_optimum():
    c = np.array([0.3, -0.2, 0.5])
    sim = lambda z: float(np.sum((z - c) ** 2) + 0.1 * np.abs(z).sum())
    m = od.Model("bb")
    x = m.variable(3, lb=-1, ub=1, name="x")
    m.minimize(od.blackbox(sim)(x))
    assert m.plan().backend.name == "zo"
    res = m.solve(max_iter=2000, lr=0.05)
    # argmin ||z - c||² + 0.1||z||₁ = soft-threshold(c, 0.05)
    assert res.values["x"] == pytest.approx(np.sign(c) * (np.abs(c) - 0.05), abs=2e-3)


def test_module_fine_tuning_by_zo_improves_the_loss_in_place():
    torch.manual_seed(0)
    X = torch.randn(256, 5)
    y = X @ torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0])
    net = torch.nn.Linear(5, 1)
    loss = lambda b: ((net(b[0]).squeeze(-1) - b[1]) ** 2).mean()
    before = float(loss((X, y)).detach())
    m = od.Model("ft")
    m.module(net)
    m.minimize(od.mean(loss, over=(X, y), batch=32))
    res = m.solve(max_iter=1500, lr=0.01, eps=1e-3)
    after = float(loss((X, y)).detach())
    assert res.solver == "zo" and after < 0.05 * before
    assert res.primal_status == od.PrimalStatus.FEASIBLE_POINT


def test_ipopt_is_the_default_for_smooth_constrained_models_and_matches_hs71():
    m = od.Model("hs71")
    x = m.variable(4, lb=1, ub=5, name="x", value=[1, 5, 5, 1])
    m.minimize(x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2])
    m.subject_to(od.sum_squares(x) == 40, name="sphere")
    m.subject_to(x[0] * x[1] * x[2] * x[3] >= 25, name="product")
    res = m.solve()
    assert res.solver == "ipopt" and res.status == Status.LOCALLY_OPTIMAL
    assert res.objective == pytest.approx(17.0140172891563, rel=1e-7)
    assert res.duals["sphere"] == pytest.approx(0.16146856, rel=1e-5)
    assert res.certificates["kkt_stationarity"] < 1e-6


def test_matrix_game_value_equals_the_lp_and_gap_is_certified():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((8, 6))
    m = od.Model("game")
    x = m.variable(8, lb=0, name="x")
    y = m.variable(6, lb=0, name="y")
    m.subject_to(x.sum() == 1, name="sx")
    m.subject_to(y.sum() == 1, name="sy")
    m.minimize(od.maximum_over(y, x @ A @ y))
    res = m.solve()
    xv, v = cp.Variable(8), cp.Variable()
    lp = cp.Problem(cp.Minimize(v), [xv >= 0, cp.sum(xv) == 1, A.T @ xv <= v])
    lp.solve()
    assert res.solver == "halpern"
    assert res.objective == pytest.approx(lp.value, abs=1e-6)
    assert res.certificates["duality_gap"] <= 1e-6


@pytest.mark.parametrize("kind", ["box", "ellipsoid"])
def test_robust_counterpart_equals_the_hand_derived_one(kind):
    a, P = np.array([1.0, 2.0]), np.array([[0.3, 0.1], [0.0, 0.4]])
    S = od.Box(np.zeros(2), radius=1.0) if kind == "box" else od.Ellipsoid(np.zeros(2), P=np.eye(2))
    m = od.Model("rlp")
    x = m.variable(2, lb=0, name="x")
    u = m.uncertain(2, within=S, name="u")
    m.maximize(x[0] + 3 * x[1])
    m.subject_to((a + P @ u) @ x <= 1, name="cap")
    res = m.solve()
    xv = cp.Variable(2)
    worst = cp.norm1(P.T @ xv) if kind == "box" else cp.norm2(P.T @ xv)
    ref = cp.Problem(cp.Maximize(xv[0] + 3 * xv[1]), [xv >= 0, a @ xv + worst <= 1])
    ref.solve()
    assert res.chain[-2:] == ["robust_to_counterpart", "cvxpy"]
    assert res.objective == pytest.approx(ref.value, rel=1e-6)
    # the robust point satisfies the constraint for sampled u in the set
    us = np.random.default_rng(1).uniform(-1, 1, size=(500, 2))
    if kind == "ellipsoid":
        us /= np.maximum(1, np.linalg.norm(us, axis=1, keepdims=True))
    lhs = (a + us @ P.T) @ res.values["x"]
    assert lhs.max() <= 1 + 1e-6


def test_non_affine_robust_constraint_by_cutting_planes():
    m = od.Model("cp")
    x = m.variable(2, name="x")
    v = m.uncertain(2, within=od.Box(np.zeros(2), radius=1.0), name="v")
    m.minimize(-x.sum())
    m.subject_to(od.sum_squares(x) + (v[0] ** 2) * x[0] + v[1] * x[1] <= 1, name="rob")
    res = m.solve()
    t = (-2 + np.sqrt(12)) / 4      # worst case v = (±1, 1): 2t² + 2t = 1
    assert res.solver == "robust_cp"
    assert res.values["x"] == pytest.approx([t, t], abs=1e-5)


def test_two_stage_location_by_ccg_matches_the_matrix_form():
    from optdsl.solvers.robust.ccg import TwoStageProblem, ccg
    from optdsl.solvers.robust.testing import zeng_zhao_location
    P, _ = zeng_zhao_location()
    direct = ccg(TwoStageProblem(c=P.c, d=P.d, G=P.G, h=P.h, E=P.E, M=P.M, uset=P.uset, A=P.A, b=P.b,
                                 lb=P.lb, ub=P.ub))   # continuous relaxation of the instance
    import runpy
    from pathlib import Path
    gallery = Path(__file__).resolve().parents[1] / "problems" / "robust_two_stage_location.py"
    m = runpy.run_path(str(gallery))["build"]()      # the gallery's model of the same instance
    res = m.solve()
    assert res.solver == "robust_ccg" and res.status == Status.OPTIMAL
    assert res.objective == pytest.approx(direct.objective, rel=1e-6)
    assert res.certificates["gap"] <= 1e-6 * abs(res.objective)


@pytest.mark.parametrize("method,tol", [("implicit", 1e-4), ("penalty", 5e-3)])
def test_bilevel_toy_reaches_the_known_solution(method, tol):
    m = od.Model("toy")
    x = m.variable(name="x")
    inner = m.level("inner")
    y = inner.variable(name="y")
    inner.minimize((y - x) ** 2)
    m.minimize((x - 1) ** 2 + (y - 2) ** 2)      # y*(x) = x  ->  x* = y* = 1.5
    res = m.solve(method=method)
    assert res.solver == "bilevel"
    assert res.values["x"] == pytest.approx(1.5, abs=tol)
    assert res.values["y"] == pytest.approx(1.5, abs=tol)
    assert res.certificates["lower_level_gap"] < 1e-3


def test_dag_model_recovers_an_er_graph():
    from optdsl.solvers.dag import data
    B = data.simulate_dag(8, 16, "ER", seed=1)
    X = data.simulate_linear_sem(data.simulate_parameter(B, seed=1), 1000, seed=1)
    m = od.Model("dag")
    W = m.variable((8, 8), name="W")
    m.minimize(od.sem_loss(W, X) + 0.05 * od.norm1(W))
    m.subject_to(od.acyclic(W), name="dag")
    res = m.solve()
    from optdsl.solvers.dag import count_accuracy, is_dag
    assert res.solver == "dag" and is_dag(res.values["W"])
    assert count_accuracy(B, res.values["W"] != 0)["shd"] <= 2


def test_linear_system_sequence_goes_to_sor_and_learns():
    n = 30
    T = np.diag(np.full(n, 2.0)) - np.diag(np.ones(n - 1), 1) - np.diag(np.ones(n - 1), -1)
    A = T + 0.05 * np.eye(n)
    m = od.Model("seq")
    x = m.variable(n, name="x")
    b = m.parameter(value=np.ones(n), name="b")
    m.subject_to(A @ x == b, name="sys")
    assert "linear_system" in m.tags() and m.plan().backend.name == "sor"
    rng = np.random.default_rng(0)
    for _ in range(8):
        b.value = rng.random(n)
        res = m.solve(tol=1e-10, max_iter=5000)
        assert res.status == Status.OPTIMAL
        assert res.values["x"] == pytest.approx(np.linalg.solve(A, b.value), abs=1e-7)
    assert res.extras["round"] == 8          # the tuner lives with the compiled model
    fixed = m.solve(omega="1.0", tol=1e-10, max_iter=5000)
    assert fixed.extras["omega"] == 1.0
    again = m.solve(tol=1e-10, max_iter=5000)
    assert again.extras["round"] == 9        # back to "auto": the learned tuner was kept


def test_problem_graph_records_level_ownership_and_reads():
    m = od.Model("levels")
    x = m.variable(name="x")
    inner = m.level("inner")
    y = inner.variable(name="y")
    deep = inner.level("deep")
    z = deep.variable(name="z")
    deep.minimize((z - y) ** 2)
    inner.minimize((y - x) ** 2 + z ** 2)
    m.minimize((x - 1) ** 2 + (y - 2) ** 2)
    g = m.graph()
    rel = {(u, v): d for u, v, d in g.edges(data="relation")}
    assert rel[("level:inner", "y")] == "owns" and rel[("level:deep", "z")] == "owns"
    assert rel[("level:inner", "level:deep")] == "inside" and rel[("objective", "level:inner")] == "inside"
    assert rel[("x", "inner.objective")] == "reads" and rel[("z", "inner.objective")] == "reads"
    assert g.nodes["deep.objective"]["level"] == "deep"


def test_two_level_models_go_through_the_value_function_penalty_pass():
    m = od.Model("vp")
    x = m.variable(name="x")
    inner = m.level("inner")
    y = inner.variable(name="y")
    inner.minimize((y - x) ** 2)
    m.minimize((x - 1) ** 2 + (y - 2) ** 2)
    plan = m.plan()
    assert plan.chain == ["bilevel_to_value_penalty", "bilevel"]
    # a decreasing σ schedule tightens the O(σ) bias of the fixed-σ run (x_σ = (3 + σ)/(2 + σ) here)
    fixed = m.solve(method="penalty", sigma=0.1, max_iter=3000)
    sched = m.solve(method="penalty", sigma=1.0, sigma_decay=0.5, sigma_min=1e-3, max_iter=400)  # (x = 1.488)
    assert abs(fixed.values["x"] - 1.5) > abs(sched.values["x"] - 1.5)
    assert fixed.values["x"] == pytest.approx(3.1 / 2.1, abs=1e-4)


def test_trace_expm_is_the_notears_function_and_overflow_is_a_status():
    A = np.array([[0, 1.0, 0], [0, 0, 2.0], [0, 0, 0]])
    W = od.Variable((3, 3), name="W")
    h = od.trace_expm(W * W) - 3
    assert h.evaluate({W: A}) == pytest.approx(0.0, abs=1e-12)           # a DAG
    assert h.evaluate({W: A + A.T}) > 1.0                                 # a cycle
    from optdsl.solvers.dag import data
    B = data.simulate_dag(5, 5, "ER", seed=3)
    X = data.simulate_linear_sem(data.simulate_parameter(B, seed=3), 1000, seed=3)
    m = od.Model("h")
    Wv = m.variable((5, 5), name="W", value=np.full((5, 5), 30.0))      # exp(W*W) overflows at the start
    m.minimize(od.sem_loss(Wv, X))
    m.subject_to(od.trace_expm(Wv * Wv) - 5 == 0, name="h")             # written by hand
    res = m.solve(solver="alsketch", max_iter=300)                       # NaN/inf: a status, never a traceback
    assert res.status == Status.NUMERICAL_ERROR and "'h'" in res.message
    # from W = 0 the run stays finite; h's gradient vanishes with h, and alsketch must not call that infeasible
    # (40 iterations reach the same end-of-run least-violation check as 300, in a tenth of the time)
    Wv.value = np.zeros((5, 5))
    assert m.solve(solver="alsketch", max_iter=40).status != Status.INFEASIBLE
