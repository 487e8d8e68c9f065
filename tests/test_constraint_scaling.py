"""Gradient-based constraint scaling in the smooth backends (nlp, alsketch): a constraint multiplied by 10^±4
is the same constraint; the run reaches the same point, and the multipliers come back for the user's rows."""
import numpy as np
import pytest

import optdsl as od
from optdsl import TerminationStatus as Status
from optdsl.backends.flatten import FlatProblem

HS071_X = [1.0, 4.74299964, 3.82114998, 1.37940829]   # published optimum (problems/hs/hs071.py)


def hs071(product=1.0, sphere=1.0):
    """HS071 with its constraints multiplied by the given factors (same feasible set, same optimum)."""
    m = od.Model("hs071")
    x = m.variable(4, lb=1, ub=5, name="x", value=[1, 5, 5, 1])
    m.minimize(x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2])
    m.subject_to(product * (x[0] * x[1] * x[2] * x[3]) >= product * 25, name="product")
    m.subject_to(sphere * od.sum_squares(x) == sphere * 40, name="sphere")
    return m


def test_row_factors_are_powers_of_ten_that_bring_each_starting_row_gradient_into_the_band():
    m = hs071(product=1e4, sphere=1e-4)
    flat = FlatProblem(m.to_problem())
    s_eq, s_in = flat.row_scales()
    # cold start x0 = (2, 2, 2, 2): ∇(1e4·x1x2x3x4) has max 8e4 -> 1e-3 (80 <= 100); ∇(1e-4·|x|²) max 4e-4 -> 1e4
    assert s_in.tolist() == [1e-3] and s_eq.tolist() == [1e4]
    plain = FlatProblem(hs071().to_problem())   # gradients 8 and 4 at x0: inside the band, nothing scaled
    assert plain.row_scaled() is plain


@pytest.mark.parametrize("solver", ["nlp", "alsketch"])
def test_hs071_with_a_constraint_scaled_by_1e4_either_way_reaches_the_same_point_and_duals(solver):
    ref = hs071().solve(solver=solver)
    assert ref.status == Status.LOCALLY_OPTIMAL, ref.message
    np.testing.assert_allclose(ref.values["x"], HS071_X, atol=1e-6)
    for name in ("product", "sphere"):
        for factor in (1e4, 1e-4):
            res = hs071(**{name: factor}).solve(solver=solver)
            assert res.status == Status.LOCALLY_OPTIMAL, (name, factor, res.message)
            np.testing.assert_allclose(res.values["x"], ref.values["x"], atol=1e-6, err_msg=f"{name} x {factor}")
            # the multiplier of c·factor is the multiplier of c divided by the factor
            for other in ("product", "sphere"):
                expected = ref.duals[other] / (factor if other == name else 1.0)
                np.testing.assert_allclose(res.duals[other], expected, rtol=1e-5, err_msg=f"{name} x {factor}")
            # the certificates speak of the user's (scaled-by-factor) rows
            assert res.certificates["max_violation"] <= 1e-6 * (1 + 5)
            assert res.certificates["feasibility"] == pytest.approx(res.certificates["max_violation"], abs=1e-12)
            assert res.certificates["kkt_stationarity"] < 1e-5


def test_a_row_too_large_for_double_precision_is_not_called_optimal():
    """1e8·x1x2x3x4 ≥ 2.5e9: the scaled run meets its tolerance, the user's row is violated by ~1e-3 (rounding
    at that magnitude). The status says so, the point is kept; never INFEASIBLE."""
    res = hs071(product=1e8).solve(solver="nlp")
    np.testing.assert_allclose(res.values["x"], HS071_X, atol=1e-6)
    if res.certificates["max_violation"] > 1e-6:
        assert res.status == Status.SLOW_PROGRESS and "unscaled violation" in res.message
    else:
        assert res.status == Status.LOCALLY_OPTIMAL


def test_alsketch_sparse_mode_scales_the_constant_jacobians_too():
    """structured='on': the rows' sparse Jacobians are scaled with the rows; against cvxpy on the unscaled QP."""
    import cvxpy as cp
    rng = np.random.default_rng(1)
    n, me, mi = 30, 5, 8
    A, b = rng.standard_normal((me, n)), rng.standard_normal(me)
    G, h = rng.standard_normal((mi, n)), rng.uniform(0.5, 1.0, mi)
    c = rng.standard_normal(n)
    xc = cp.Variable(n)
    eq, ineq = A @ xc == b, G @ xc <= h
    cp.Problem(cp.Minimize(0.5 * cp.sum_squares(xc) + c @ xc), [eq, ineq]).solve()
    for fe, fi in ((1.0, 1.0), (1e4, 1e-4)):
        m = od.Model("qp")
        x = m.variable(n, name="x")
        m.minimize(0.5 * od.sum_squares(x) + c @ x)
        m.subject_to(fe * (A @ x) == fe * b, name="eq")
        m.subject_to(fi * (G @ x) <= fi * h, name="in")
        res = m.solve(solver="alsketch", structured="on")
        assert res.status.is_success, (fe, res.message)
        np.testing.assert_allclose(res.values["x"], xc.value, atol=1e-6)
        np.testing.assert_allclose(res.duals["eq"] * fe, eq.dual_value, atol=1e-6)
        np.testing.assert_allclose(res.duals["in"] * fi, ineq.dual_value, atol=1e-6)
