"""Dispatch defaults: a plain m.solve() on models DCP analysis does not recognise reaches the answer cvxpy
finds when the model is written directly, never through the zeroth-order backend; rejections name the term."""
import cvxpy as cp
import numpy as np
import pytest

import optdsl as od
from optdsl import TerminationStatus as Status
from optdsl.graph import analyze

RNG = np.random.default_rng(0)
A = RNG.standard_normal((30, 10))
B = RNG.standard_normal(30)
Y = np.sign(RNG.standard_normal(30))


def _solve_default(m):
    chain = m.plan().chain
    assert "zo" not in chain, chain
    res = m.solve()
    assert res.status in (Status.OPTIMAL, Status.LOCALLY_OPTIMAL), res.message
    return res


def test_lasso_with_a_parameter_weight_matches_cvxpy():
    m = od.Model("lasso")
    x = m.variable(10, name="x")
    lam = m.parameter(name="lam", value=0.5)          # no declared sign: the term is not DCP as written
    m.minimize(od.sum_squares(A @ x - B) + lam * od.norm1(x))
    res = _solve_default(m)
    xc = cp.Variable(10)
    ref = cp.Problem(cp.Minimize(cp.sum_squares(A @ xc - B) + 0.5 * cp.norm1(xc)))
    ref.solve()
    assert res.objective == pytest.approx(ref.value, rel=1e-6)
    np.testing.assert_allclose(res.values["x"], xc.value, atol=1e-4)
    lam.value = 2.0                                     # same sign: the plan stands, the answer follows λ
    res2 = m.solve()
    ref2 = cp.Problem(cp.Minimize(cp.sum_squares(A @ xc - B) + 2.0 * cp.norm1(xc)))
    ref2.solve(solver="CLARABEL")
    assert res2.objective == pytest.approx(ref2.value, rel=1e-5)   # OSQP's default accuracy, warm-started


def test_a_parameter_turning_negative_is_replanned_and_the_error_names_the_term():
    m = od.Model("lasso_sign")
    x = m.variable(3, name="x")
    lam = m.parameter(name="lam", value=0.5)
    m.minimize(od.sum_squares(x - 1) + lam * od.norm1(x))
    assert m.solve().values["x"] == pytest.approx([0.75] * 3, abs=1e-6)   # soft-threshold of 1 at λ/2
    lam.value = -0.5                                   # -|x| is concave: the epigraph would be wrong
    with pytest.raises(od.NotSolvableError, match=r"norm\(x, 1\)"):
        m.solve()
    lam.value = 1.0
    assert m.solve().values["x"] == pytest.approx([0.5] * 3, abs=1e-6)


def test_logistic_regression_written_with_log_and_exp_matches_cvxpy():
    m = od.Model("logistic")
    x = m.variable(10, name="x")
    m.minimize(od.sum(od.log(1 + od.exp(-Y * (A @ x)))))
    res = _solve_default(m)
    xc = cp.Variable(10)
    ref = cp.Problem(cp.Minimize(cp.sum(cp.logistic(-cp.multiply(Y, A @ xc)))))
    ref.solve()
    assert res.objective == pytest.approx(ref.value, rel=1e-6)


def test_ridge_with_a_parameter_weight_matches_cvxpy_and_ends_optimal():
    m = od.Model("ridge")
    x = m.variable(10, name="x")
    lam = m.parameter(name="lam", value=0.5)
    m.minimize(od.sum_squares(A @ x - B) + lam * od.sum_squares(x))
    res = _solve_default(m)
    x_star = np.linalg.solve(A.T @ A + 0.5 * np.eye(10), A.T @ B)
    np.testing.assert_allclose(res.values["x"], x_star, atol=1e-6)


def test_l1_logistic_regression_matches_cvxpy():
    m = od.Model("l1_logistic")
    x = m.variable(10, name="x")
    lam = m.parameter(name="lam", value=1.0)
    m.minimize(od.sum(od.log(1 + od.exp(-Y * (A @ x)))) + lam * od.norm1(x))
    res = _solve_default(m)
    xc = cp.Variable(10)
    ref = cp.Problem(cp.Minimize(cp.sum(cp.logistic(-cp.multiply(Y, A @ xc))) + cp.norm1(xc)))
    ref.solve()
    assert res.objective == pytest.approx(ref.value, rel=1e-6)
    np.testing.assert_allclose(res.values["x"], xc.value, atol=1e-3)


def test_leveraged_portfolio_with_a_parameter_risk_weight_matches_cvxpy():
    n = 8
    rng = np.random.default_rng(1)
    mu = rng.uniform(0.0, 0.2, n)
    F = rng.standard_normal((n, n)) * 0.2
    S = F @ F.T + 0.01 * np.eye(n)
    m = od.Model("portfolio")
    w = m.variable(n, name="w")
    gamma = m.parameter(name="gamma", value=2.0)
    m.maximize(mu @ w - gamma * od.quad_form(w, S))
    m.subject_to(od.sum(w) == 1, name="budget")
    m.subject_to(od.norm1(w) <= 1.6, name="leverage")
    res = _solve_default(m)
    wc = cp.Variable(n)
    ref = cp.Problem(cp.Maximize(mu @ wc - 2 * cp.quad_form(wc, S)), [cp.sum(wc) == 1, cp.norm1(wc) <= 1.6])
    ref.solve()
    assert res.objective == pytest.approx(ref.value, rel=1e-5)
    np.testing.assert_allclose(res.values["w"], wc.value, atol=1e-3)
    assert np.abs(res.values["w"]).sum() <= 1.6 + 1e-6
    assert "budget" in res.duals and "leverage" in res.duals   # the user's rows; auxiliary rows are dropped


def test_zo_is_never_chosen_for_a_differentiable_model_but_runs_when_named():
    m = od.Model("smooth")
    x = m.variable(2, name="x")
    m.minimize(od.sum(od.sin(x)) + od.sum_squares(x))
    assert m.plan().backend.name != "zo"
    assert "chosen automatically only for models with blackbox or module" in m.explain()
    assert m.plan("zo").backend.name == "zo"                   # asked for by name: it runs
    bb = od.Model("bb")
    z = bb.variable(2, name="z")
    bb.minimize(od.blackbox(lambda a: float(np.sum((a - 1) ** 2)))(z))
    assert bb.plan().backend.name == "zo"


def test_nonsmooth_term_without_a_smooth_form_is_named_in_the_error():
    m = od.Model("stuck")
    x = m.variable(3, name="x")
    m.minimize(od.sum(od.sin(od.abs(x))))
    with pytest.raises(od.NotSolvableError, match=r"sin\(abs\(x\)\)"):
        m.solve()


def test_dcp_rejection_names_the_offending_subexpression():
    m = od.Model("dcp")
    x = m.variable(3, name="x")
    lam = m.parameter(name="lam", value=0.5)
    m.minimize(od.sum_squares(x - 1) + lam * od.norm1(x))
    note = analyze(m.to_problem()).notes["convex"]
    assert "'lam * norm(x, 1)'" in note and "unknown sign" in note
    r = od.Model("dcp_smooth")
    z = r.variable(3, name="z")
    mu = r.parameter(name="mu", value=0.5)
    r.minimize(od.sum_squares(z - 1) + mu * od.sum_squares(z))       # no epigraph makes this DCP
    with pytest.raises(od.NotSolvableError, match=r"'mu \* sum_squares\(z\)' is of unknown curvature"):
        r.solve(solver="cvxpy")
    m2 = od.Model("dcp2")
    y = m2.variable(3, name="y")
    m2.minimize(od.sum(y))
    m2.subject_to(od.sqrt(y[0]) + od.sum_squares(y) <= 1, name="mixed")
    note = analyze(m2.to_problem()).notes["convex"]
    assert "constraint 'mixed'" in note and "'sqrt(y[0])' is concave" in note


@pytest.mark.parametrize("P, convex", [(np.eye(2), True), (-np.eye(2), False), (np.diag([1.0, -1.0]), False),
                                       (np.array([[2.0, 3.0], [-1.0, 2.0]]), True)])   # xᵀPx = xᵀ sym(P) x
def test_quad_form_is_convex_only_for_a_psd_matrix(P, convex):
    m = od.Model("q")
    x = m.variable(2, lb=-1, ub=1, name="x")
    m.minimize(od.quad_form(x, P))
    assert ("convex" in m.tags()) == convex


def test_quad_form_with_a_negative_definite_matrix_is_not_reported_optimal_at_its_maximum():
    # min -‖x‖² on the box [-1, 1]²: x = 0 (the cold start) is the maximum; the minima are the corners (f = -2)
    m = od.Model("concave")
    x = m.variable(2, lb=-1, ub=1, name="x")
    m.minimize(od.quad_form(x, -np.eye(2)))
    for solver in ("nlp", "lbfgs", "alsketch"):
        x.value = None
        res = m.solve(solver=solver)
        assert res.status == Status.LOCALLY_OPTIMAL and res.objective == pytest.approx(-2.0, abs=1e-7), solver
        assert np.abs(res.values["x"]) == pytest.approx([1.0, 1.0])


# --- uncertainty sets take the uncertain quantity's shape ------------------------------------------------------

A0 = np.random.default_rng(2).uniform(0.5, 1.5, (6, 5))
C0 = np.random.default_rng(3).uniform(1.0, 2.0, 5)


def _robust_lp(within):
    """max cᵀx s.t. (A0 + ΔA) x ≤ 1 for every ΔA in the set, x ≥ 0; ΔA a 6×5 uncertain matrix."""
    m = od.Model("robust_lp")
    x = m.variable(5, lb=0, name="x")
    dA = m.uncertain((6, 5), within=within, name="dA")
    m.maximize(C0 @ x)
    m.subject_to((A0 + dA) @ x <= 1, name="capacity")
    return m, dA


def _reference(row_penalty):
    """The hand-derived counterpart: row i reads only row i of ΔA, so aᵢᵀx + σ(x) ≤ 1 with σ the support
    function of the set restricted to that row (x ≥ 0)."""
    xc = cp.Variable(5, nonneg=True)
    prob = cp.Problem(cp.Maximize(C0 @ xc), [A0 @ xc + row_penalty(xc) <= 1])
    prob.solve(solver="CLARABEL")
    return prob.value, xc.value


@pytest.mark.parametrize("within, penalty", [
    (od.Box(radius=0.1), lambda x: 0.1 * cp.norm1(x)),                       # |ΔA_ij| ≤ 0.1
    (od.Box(lo=-0.05, hi=0.15), lambda x: 0.15 * cp.sum(x)),                 # x ≥ 0: the upper bound binds
    (od.Ellipsoid(radius=0.1), lambda x: 0.1 * cp.norm(x, 2)),               # ‖vec ΔA‖₂ ≤ 0.1
    (od.Budget(gamma=2, radius=0.1), lambda x: 0.1 * cp.sum_largest(x, 2)),  # at most 2 entries move
])
def test_a_matrix_uncertain_quantity_with_scalar_set_parameters_matches_its_counterpart(within, penalty):
    m, dA = _robust_lp(within)
    assert dA.within.dim == 30 and dA.value.shape == (6, 5)
    res = m.solve()
    ref, x_ref = _reference(penalty)
    assert res.status == Status.OPTIMAL
    assert res.objective == pytest.approx(ref, rel=1e-6)
    np.testing.assert_allclose(res.values["x"], x_ref, atol=1e-5)


def test_set_defaults_center_zero_in_the_quantitys_shape_and_aliases():
    m = od.Model("sets")
    u = m.uncertain((2, 3), within=od.Box(radius=0.5), name="u")
    np.testing.assert_array_equal(u.value, np.zeros((2, 3)))
    np.testing.assert_allclose(u.within.P, 0.5 * np.eye(6))
    w = m.uncertain((2, 3), within=od.Box(lo=-1.0, hi=3.0), name="w")
    np.testing.assert_array_equal(w.value, np.ones((2, 3)))                  # centre (lo + hi)/2
    e = m.uncertain(4, within=od.Ellipsoid(radius=0.3), name="e")
    assert e.within.rho == 0.3 and e.within.dim == 4
    b = m.uncertain(3, within=od.Budget(gamma=1.5, radius=[0.1, 0.2, 0.3]), name="b")
    assert b.within.gamma == 1.5 and np.allclose(np.diag(b.within.P), [0.1, 0.2, 0.3])
    full = m.uncertain((2, 2), within=od.Box(center=np.ones((2, 2)), radius=0.1), name="full")
    np.testing.assert_array_equal(full.value, np.ones((2, 2)))
    with pytest.raises(od.ShapeError, match="uncertain 'bad'.*shape"):
        m.uncertain(5, within=od.Box(center=np.zeros(4)), name="bad")
    with pytest.raises(ValueError, match="another name for rho"):
        od.Ellipsoid(rho=1.0, radius=2.0)
