"""NumPy interop: numpy functions and ufuncs on expressions build expressions (or say what to write),
arrays on the left of @ and *, two-sided constraints with od.between, and clear errors for cvxpy mixes
and unsupported keywords."""
import cvxpy as cp
import numpy as np
import pytest
import scipy.sparse as sp

import optdsl as od

XV = np.array([0.5, -1.0, 2.0])
MV = np.array([[1.0, -2.0, 0.5], [0.3, 0.8, -1.5]])


@pytest.fixture
def xs():
    m = od.Model()
    return m, m.variable(3, name="x", value=XV), m.variable((2, 3), name="X", value=MV)


@pytest.mark.parametrize("build, numeric", [
    (lambda x, X: np.sum(x), lambda x, X: np.sum(x)),
    (lambda x, X: np.sum(X, axis=1), lambda x, X: np.sum(X, axis=1)),
    (lambda x, X: np.mean(X, axis=0), lambda x, X: np.mean(X, axis=0)),
    (lambda x, X: np.max(x), lambda x, X: np.max(x)),
    (lambda x, X: np.min(X, axis=1), lambda x, X: np.min(X, axis=1)),
    (lambda x, X: np.maximum(x, 0), lambda x, X: np.maximum(x, 0)),
    (lambda x, X: np.minimum(1.0, x), lambda x, X: np.minimum(1.0, x)),
    (lambda x, X: np.exp(x), lambda x, X: np.exp(x)),
    (lambda x, X: np.log(np.abs(x)), lambda x, X: np.log(np.abs(x))),
    (lambda x, X: np.sqrt(np.square(x) + 1), lambda x, X: np.sqrt(np.square(x) + 1)),
    (lambda x, X: np.abs(X), lambda x, X: np.abs(X)),
    (lambda x, X: np.sin(x) + np.cos(x), lambda x, X: np.sin(x) + np.cos(x)),
    (lambda x, X: np.log1p(np.exp(x)), lambda x, X: np.log1p(np.exp(x))),
    (lambda x, X: np.power(x, 2), lambda x, X: np.power(x, 2)),
    (lambda x, X: np.linalg.norm(x), lambda x, X: np.linalg.norm(x)),
    (lambda x, X: np.linalg.norm(X), lambda x, X: np.linalg.norm(X)),
    (lambda x, X: np.linalg.norm(X, axis=1), lambda x, X: np.linalg.norm(X, axis=1)),
    (lambda x, X: np.linalg.norm(x, 1), lambda x, X: np.linalg.norm(x, 1)),
    (lambda x, X: np.dot(MV, x), lambda x, X: np.dot(MV, x)),
    (lambda x, X: np.transpose(X), lambda x, X: np.transpose(X)),
    (lambda x, X: np.reshape(X, (3, 2)), lambda x, X: np.reshape(X, (3, 2))),
    (lambda x, X: np.stack([x, 2 * x]), lambda x, X: np.stack([x, 2 * x])),
    (lambda x, X: np.concatenate([x, x]), lambda x, X: np.concatenate([x, x])),
    (lambda x, X: np.diff(X), lambda x, X: np.diff(X)),
    (lambda x, X: np.cumsum(x), lambda x, X: np.cumsum(x)),
    (lambda x, X: np.clip(x, -0.5, 1.0), lambda x, X: np.clip(x, -0.5, 1.0)),
    (lambda x, X: np.trace(X @ X.T), lambda x, X: np.trace(X @ X.T)),
    (lambda x, X: np.diag(x), lambda x, X: np.diag(x)),
    (lambda x, X: np.add.reduce(x), lambda x, X: np.add.reduce(x)),
])
def test_numpy_on_expressions_builds_expressions(xs, build, numeric):
    _, x, X = xs
    e = build(x, X)
    assert isinstance(e, od.Expr)
    np.testing.assert_allclose(e.value, numeric(XV, MV), rtol=1e-12)


def test_arrays_on_the_left(xs):
    m, x, X = xs
    A = np.arange(6.0).reshape(2, 3)
    for e, want in [(A @ x, A @ XV), (np.ones(3) * x, XV), (np.float64(2.0) * x, 2 * XV), (A - X, A - MV),
                    (np.ones(3) / (x + 3), 1 / (XV + 3)), (sp.csr_matrix(A) @ x, A @ XV)]:
        assert isinstance(e, od.Expr)
        np.testing.assert_allclose(e.value, want)
    c = np.zeros(3) <= x
    assert isinstance(c, od.Constraint) and c.kind == "ineq"
    np.testing.assert_allclose(c.violation(), np.maximum(-XV, 0))
    c = np.ones(3) == x
    assert isinstance(c, od.Constraint) and c.kind == "eq"


@pytest.mark.parametrize("build, message", [
    (lambda x: np.tanh(x), r"numpy.tanh is not supported on optdsl expressions: write od.fn\(torch.tanh\)"),
    (lambda x: np.prod(x), r"numpy.prod .* od.geo_mean"),
    (lambda x: np.less(x, 1), r"numpy.less .*strict inequalities are not supported"),
    (lambda x: np.exp(x, out=np.zeros(3)), r"numpy.exp on optdsl expressions takes no keyword arguments \(out\)"),
    (lambda x: np.sum(x, keepdims=True), r"numpy.sum on optdsl expressions does not take keepdims"),
    (lambda x: np.linalg.det(od.diag(x)), r"numpy.det .* od.log_det"),
    (lambda x: np.arctan2(x, 1.0), r"numpy.arctan2 .* no od.\* counterpart"),
])
def test_unsupported_numpy_names_say_what_to_write(xs, build, message):
    _, x, _ = xs
    with pytest.raises(od.ModelError, match=message):
        build(x)


def test_chained_comparison_points_to_between(xs):
    _, x, _ = xs
    with pytest.raises(od.ModelError, match=r"od.between\(lo, x, hi\)"):
        0 <= x <= 1  # noqa: B015 - the expression is the test


def test_between_is_one_named_constraint_with_two_sided_duals():
    m = od.Model()
    x = m.variable(3, name="x")
    c = m.subject_to(od.between(0, x, np.array([1.0, 2.0, 3.0])), name="box")
    m.minimize(od.sum_squares(x - np.array([-1.0, 1.0, 5.0])))
    assert str(c) == "0 <= x <= [1., 2., 3.]" and list(m.constraints) == ["box"]
    res = m.solve()
    np.testing.assert_allclose(res.values["x"], [0.0, 1.0, 3.0], atol=1e-7)
    # KKT: 2 (x - t) - lower + upper = 0 -> lower = [2, 0, 0], upper = [0, 0, 4]
    np.testing.assert_allclose(res.duals["box"], [[2.0, 0.0, 0.0], [0.0, 0.0, 4.0]], atol=1e-6)
    assert "0 \\le x \\le" in m.to_latex()


def test_between_with_expressions_and_broadcasting():
    m = od.Model()
    x = m.variable(2, name="x")
    m.maximize(od.sum(x))
    m.subject_to(od.between(-1.0, x[0] + x[1], 1.5), name="band")  # scalar middle
    m.subject_to(od.between(0, x, 1), name="unit")
    res = m.solve()
    assert res.objective == pytest.approx(1.5, abs=1e-7)
    with pytest.raises(od.ModelError, match="lo > hi at 1 entries"):
        od.between(np.array([0.0, 2.0]), x, 1.0)
    with pytest.raises(od.ShapeError, match="do not broadcast"):
        od.between(np.zeros(3), x, 1.0)


def test_cvxpy_objects_mixed_in_give_a_clear_error(xs):
    _, x, _ = xs
    z = cp.Variable(3)
    with pytest.raises(od.ModelError, match=r"cvxpy object .*quad_over_lin.*od\.quad_over_lin"):
        od.sum(x) + cp.quad_over_lin(z, 1.0)
    with pytest.raises(od.ModelError, match=r"cvxpy object .*declare it with m.variable"):
        x + z
    with pytest.raises(od.ModelError, match="cannot be mixed into a cvxpy expression"):
        z + x
    with pytest.raises(od.ModelError, match="cannot be mixed into a cvxpy expression"):
        cp.sum(z) + od.sum(x)


def test_a_list_of_expressions_points_to_stack(xs):
    _, x, _ = xs
    with pytest.raises(od.ModelError, match="od.stack"):
        od.sum(np.array([x[0], x[1]]))
    np.testing.assert_allclose(od.stack([x[0], x[1]]).value, XV[:2])


@pytest.mark.parametrize("kw, message", [
    ({"complex": True}, r"m.variable\('v', complex=...\): complex variables are not supported in optdsl"),
    ({"nonneg": True}, r"unknown keyword 'nonneg'; optdsl variables have no such feature"),
    ({"hermitian": True}, r"Hermitian variables are not supported"),
])
def test_unsupported_variable_keywords_say_the_feature_is_missing(kw, message):
    with pytest.raises(od.ModelError, match=message):
        od.Model().variable(3, name="v", **kw)
