"""Signed and shaped parameters: checked on every assignment, passed to cvxpy so DCP sign rules use them,
and re-solves after a value change reuse the compiled chain."""
import cvxpy as cp
import numpy as np
import pytest

import optdsl as od

RNG = np.random.default_rng(3)
A = RNG.standard_normal((12, 5))
B = RNG.standard_normal(12)


def _lasso(**param_kw):
    m = od.Model("lasso")
    w = m.variable(5, name="w")
    lam = m.parameter(value=0.1, name="lam", **param_kw)
    m.minimize(od.sum_squares(A @ w - B) + lam * od.norm1(w))
    return m, w, lam


def _lasso_cvxpy(lam):
    w = cp.Variable(5)
    prob = cp.Problem(cp.Minimize(cp.sum_squares(A @ w - B) + lam * cp.norm1(w)))
    prob.solve()
    return prob.value, w.value


def test_unsigned_parameter_times_convex_is_not_dcp():
    m, _, _ = _lasso()
    assert "convex" not in m.tags()
    assert "not convex" in m.explain().lower() or "convex" in m.explain().lower()


def test_nonneg_parameter_makes_lasso_convex_and_resolves_without_recompiling():
    m, w, lam = _lasso(nonneg=True)
    assert "convex" in m.tags()
    res = m.solve()
    assert res.solver == "cvxpy"
    ref, w_ref = _lasso_cvxpy(0.1)
    assert res.objective == pytest.approx(ref, rel=1e-6)
    compiled = {k: v for k, v in m._cache.items() if isinstance(k, tuple) and k[0] == "compiled"}
    form = m.plan().problem.payload["cvxpy"]

    lam.value = 5.0
    res2 = m.solve()
    ref2, w_ref2 = _lasso_cvxpy(5.0)
    assert res2.objective == pytest.approx(ref2, rel=1e-6)
    np.testing.assert_allclose(res2.values["w"], w_ref2, atol=1e-5)
    assert np.sum(np.abs(res2.values["w"])) < np.sum(np.abs(res.values["w"]))  # more shrinkage
    # the same compiled chain: same cvxpy problem object, same compiled entry
    assert m.plan().problem.payload["cvxpy"] is form
    for k, v in compiled.items():
        assert m._cache[k] is v
    assert form.lowering.parameters[lam].is_nonneg() and float(form.lowering.parameters[lam].value) == 5.0


def test_nonpos_parameter_sign_rule():
    m = od.Model()
    x = m.variable(3, name="x")
    c = m.parameter(value=-2.0, nonpos=True, name="c")
    m.minimize(od.sum_squares(x - 1) - c * od.norm(x))  # -c >= 0 times a convex norm
    assert "convex" in m.tags()
    res = m.solve()
    xc = cp.Variable(3)
    ref = cp.Problem(cp.Minimize(cp.sum_squares(xc - 1) + 2.0 * cp.norm(xc)))
    ref.solve()
    assert res.objective == pytest.approx(ref.value, rel=1e-6)


def test_psd_parameter_in_quad_form_is_convex():
    P0 = np.array([[2.0, 0.5], [0.5, 1.0]])
    m = od.Model()
    x = m.variable(2, name="x")
    P = m.parameter((2, 2), value=P0, PSD=True, name="P")
    m.minimize(od.quad_form(x, P) - x[0])
    assert "convex" in m.tags()
    res = m.solve()
    np.testing.assert_allclose(res.values["x"], np.linalg.solve(2 * P0, [1.0, 0.0]), atol=1e-6)
    P.value = np.array([[1.0, 0.0], [0.0, 3.0]])
    res = m.solve()
    np.testing.assert_allclose(res.values["x"], [0.5, 0.0], atol=1e-6)


def test_plain_parameter_in_quad_form_is_not_convex():
    m = od.Model()
    x = m.variable(2, name="x")
    P = m.parameter((2, 2), value=np.eye(2), name="P")
    m.minimize(od.quad_form(x, P))
    assert "convex" not in m.tags()


@pytest.mark.parametrize("kw, value, message", [
    ({"nonneg": True}, -0.5, r"parameter 'p' is declared nonneg but the new value has a negative entry"),
    ({"nonpos": True}, np.array([-1.0, 2.0]), r"parameter 'p' is declared nonpos but the new value has a positive"),
    ({"symmetric": True}, np.array([[1.0, 2.0], [0.0, 1.0]]), r"parameter 'p' is declared symmetric but .* not symmetric"),
    ({"PSD": True}, np.array([[1.0, 2.0], [2.0, 1.0]]), r"parameter 'p' is declared PSD but .* negative eigenvalue"),
])
def test_assignment_is_validated_and_names_the_parameter(kw, value, message):
    m = od.Model()
    shape = np.shape(value)
    ok = np.eye(2) if shape == (2, 2) else np.zeros(shape)
    p = m.parameter(shape, value=ok, name="p", **kw)
    with pytest.raises(od.ModelError, match=message):
        p.value = value
    np.testing.assert_array_equal(p.value, ok)  # a refused value leaves the old one in place
    with pytest.raises(od.ModelError, match=message):
        od.Model().parameter(shape, value=value, name="p", **kw)


def test_contradictory_or_misshaped_declarations():
    m = od.Model()
    with pytest.raises(od.ModelError, match="both nonneg and nonpos"):
        m.parameter(value=0.0, nonneg=True, nonpos=True, name="a")
    with pytest.raises(od.ShapeError, match="'b' is declared PSD but its shape \\(3,\\) is not square"):
        m.parameter(3, PSD=True, name="b")


def test_symmetric_parameter_reaches_cvxpy():
    from optdsl.lower.cvxpy import CvxpyLowering
    m = od.Model()
    S = m.parameter((2, 2), value=np.array([[1.0, 0.3], [0.3, 2.0]]), symmetric=True, name="S")
    low = CvxpyLowering()
    low.lower(S * 1.0)
    assert low.parameters[S].is_symmetric()


@pytest.mark.parametrize("kw, message", [
    ({"complex": True}, r"m.parameter\('q', complex=...\): complex parameters are not supported in optdsl"),
    ({"integer": True}, r"integer-valued parameters are not supported"),
    ({"frobnicate": 1}, r"unknown keyword 'frobnicate'"),
])
def test_unsupported_parameter_keywords_say_the_feature_is_missing(kw, message):
    with pytest.raises(od.ModelError, match=message):
        od.Model().parameter(3, name="q", **kw)
