"""Sparse affine lowering and separable-objective Hessians (the model-level structured mode of alsketch)."""
import importlib.util
import pathlib

import numpy as np
import pytest
import torch

import optdsl as od
from optdsl.lower.sparse_affine import NotAffine, SparseAffineLowering
from optdsl.lower.sparse_hessian import NotSeparable, SparseHessian
from optdsl.lower.torch import TorchLowering

ROOT = pathlib.Path(__file__).resolve().parents[1]
rng = np.random.default_rng(0)
C, D, c = rng.normal(size=(4, 2)), rng.normal(size=(5, 3)), rng.normal(size=4)


@pytest.fixture(scope="module")
def space():
    m = od.Model()
    X, y, s = m.variable((3, 4), name="X"), m.variable(4, name="y"), m.variable(name="s")
    return (X, y, s), [0, 12, 16], 17


def _env(space, x):
    (X, y, s), _, _ = space
    return {X: x[:12].reshape(3, 4), y: x[12:16], s: x[16]}


AFFINE = {
    "X@C": lambda X, y, s: X @ C, "D@X": lambda X, y, s: D @ X, "X.T": lambda X, y, s: X.T,
    "slice": lambda X, y, s: X[1:, ::2], "X@c": lambda X, y, s: (X @ c) * 2 - 1,
    "sum-axis": lambda X, y, s: od.sum(X, axis=0) + y, "mean-axis": lambda X, y, s: od.mean(X, axis=1),
    "reshape": lambda X, y, s: X.reshape(12)[3:7] * c, "scalar*vec": lambda X, y, s: s * c + y / 3,
    "stack": lambda X, y, s: od.vstack([y, c * y]), "vec@C": lambda X, y, s: y @ C,
    "C.T@vec": lambda X, y, s: C.T @ y, "c@X.T": lambda X, y, s: c @ X.T, "sum": lambda X, y, s: -od.sum(X) + s,
    "D@X@C.T": lambda X, y, s: (D @ X @ C).T, "const-subtree": lambda X, y, s: (C @ C.T) @ y + np.exp(c),
}


@pytest.mark.parametrize("name", sorted(AFFINE))
def test_affine_lowering_matches_autograd(space, name):
    variables, offsets, n = space
    e = AFFINE[name](*variables)
    low, T = SparseAffineLowering(variables, offsets, n), TorchLowering()
    x = torch.tensor(rng.normal(size=n))
    a = low.lower(e)
    value = T.evaluate(e, _env(space, x)).numpy().reshape(-1)
    J = torch.autograd.functional.jacobian(lambda z: T.evaluate(e, _env(space, z)).reshape(-1), x).reshape(-1, n)
    assert a.A.shape == (e.size, n)
    np.testing.assert_allclose(a.A @ x.numpy() + a.b.reshape(-1), value, atol=1e-12)
    np.testing.assert_allclose(a.A.toarray(), J.numpy(), atol=1e-12)


def test_affine_lowering_rejects_products_of_variables(space):
    (X, y, s), offsets, n = space
    with pytest.raises(NotAffine, match="matmul of two variable-dependent"):
        SparseAffineLowering((X, y, s), offsets, n).lower(X @ y)
    with pytest.raises(NotAffine, match="exp"):
        SparseAffineLowering((X, y, s), offsets, n).lower(od.exp(y))


def test_separable_hessian_matches_autograd(space):
    (X, y, s), offsets, n = space
    f = (3 * od.sum_squares(X @ C - 1) + od.sum(od.exp(X @ c)) - 0.5 * od.mean(od.log(1 + od.exp(2 * y)))
         + od.quad_form(y, 2 * np.eye(4)) + 4 * s + od.sum_squares(od.sin(y)) / 2 + od.sum(y * od.exp(y)))
    T = TorchLowering()
    H = SparseHessian(f, (X, y, s), offsets, n, T)
    x = torch.tensor(rng.normal(size=n))
    ref = torch.autograd.functional.hessian(lambda z: T.evaluate(f, _env(space, z)), x)
    np.testing.assert_allclose(H(x.numpy()).toarray(), ref.numpy(), atol=1e-10)


@pytest.mark.parametrize("objective, reason", [
    (lambda X, y, s: od.sum(X @ y), "matmul.*not an entrywise"),
    (lambda X, y, s: od.sum(od.exp(y)) * s, "product of variable-dependent"),
    (lambda X, y, s: od.logsumexp(y), "not a separable"),
    (lambda X, y, s: od.sum(od.exp(y) * od.exp(X[0])), "two different"),
])
def test_non_separable_objectives_are_named(space, objective, reason):
    variables, offsets, n = space
    with pytest.raises(NotSeparable, match=reason):
        SparseHessian(objective(*variables), variables, offsets, n, TorchLowering())


def _poisson():
    spec = importlib.util.spec_from_file_location("poisson_control", ROOT / "problems" / "poisson_control.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_poisson_control_structured_mode_matches_sparse_reference():
    pc = _poisson()
    N = 60  # n = 7200 unknowns, m = 3600 rows: beyond the dense default, solved with sparse KKT matrices
    r = pc.build(N).solve(solver="alsketch")
    f, Y, U, lam = pc.reference(N)
    assert r.status == od.TerminationStatus.LOCALLY_OPTIMAL
    assert r.extras.get("structured") is True
    assert abs(r.objective - f) <= 1e-9 * abs(f)
    np.testing.assert_allclose(r.values["y"], Y, atol=1e-9)
    np.testing.assert_allclose(r.values["u"], U, atol=1e-9)
    np.testing.assert_allclose(r.duals["state"], lam, rtol=1e-6, atol=1e-9 * np.abs(lam).max())


def test_structured_and_dense_modes_agree_on_a_nonquadratic_model():
    # min Σ exp(x_i) + ½||x||² s.t. sparse A x = b: a separable nonquadratic objective with affine constraints
    n, m_ = 40, 10
    A = np.zeros((m_, n))
    for i in range(m_):
        A[i, 4 * i:4 * i + 4] = [1, -2, 1, 0.5]
    b = rng.normal(size=m_)
    results = {}
    for mode in ("on", "off"):
        model = od.Model()
        x = model.variable(n, name="x")
        model.minimize(od.sum(od.exp(x)) + 0.5 * od.sum_squares(x))
        model.subject_to(A @ x == b, name="rows")
        results[mode] = model.solve(solver="alsketch", structured=mode, tol=1e-10)
    on, off = results["on"], results["off"]
    assert on.status == off.status == od.TerminationStatus.LOCALLY_OPTIMAL
    assert on.extras.get("structured") is True
    np.testing.assert_allclose(on.values["x"], off.values["x"], atol=1e-8)
    np.testing.assert_allclose(on.duals["rows"], off.duals["rows"], atol=1e-8)
    assert on.certificates["kkt_stationarity"] <= 1e-8


def test_structured_mode_with_inequalities_and_bounds_matches_dense_mode():
    # a bounded, inequality-constrained separable model: the sparse path (slacks + barrier on sparse KKT
    # matrices) and the dense path reach the same point and duals
    n = 30
    A = np.zeros((5, n))
    for i in range(5):
        A[i, 6 * i:6 * i + 6] = 1.0
    target = np.linspace(-1, 2, n)
    results = {}
    for mode in ("on", "off"):
        model = od.Model()
        x = model.variable(n, lb=-0.5, ub=1.5, name="x")
        model.minimize(od.sum_squares(x - target) + 0.1 * od.sum(od.exp(x)))
        model.subject_to(A @ x <= 2.0, name="groups")
        model.subject_to(od.sum(x) == 5.0, name="total")
        results[mode] = model.solve(solver="alsketch", structured=mode, tol=1e-8)
    reference = model.solve(solver="cvxpy")
    on, off = results["on"], results["off"]
    assert on.status == off.status == od.TerminationStatus.LOCALLY_OPTIMAL
    assert on.extras.get("structured") is True
    assert on.objective == pytest.approx(reference.objective, rel=1e-7)
    np.testing.assert_allclose(on.values["x"], off.values["x"], atol=1e-6)
    np.testing.assert_allclose(on.duals["groups"], off.duals["groups"], atol=1e-5)
    np.testing.assert_allclose(on.duals["total"], off.duals["total"], atol=1e-5)
    assert on.objective == pytest.approx(off.objective, rel=1e-8)


def test_structured_on_names_what_is_in_the_way():
    model = od.Model()
    x = model.variable(3, name="x")
    model.minimize(od.sum_squares(x))
    model.subject_to(od.sum_squares(x) <= 1, name="disk")
    with pytest.raises(od.ModelError, match="constraint 'disk' is not affine"):
        model.solve(solver="alsketch", structured="on")
    model2 = od.Model()
    y = model2.variable(3, name="y")
    model2.minimize(od.logsumexp(y))
    model2.subject_to(od.sum(y) == 1, name="total")
    with pytest.raises(od.ModelError, match="objective"):
        model2.solve(solver="alsketch", structured="on")
    with pytest.raises(od.ModelError, match="hessian='bfgs'"):
        model2.solve(solver="alsketch", structured="on", hessian="bfgs")


# --- scipy.sparse constants -------------------------------------------------------------------------------

def _laplacian(M):
    import scipy.sparse as sp
    T = sp.diags([-np.ones(M - 1), 2 * np.ones(M), -np.ones(M - 1)], [-1, 0, 1])
    return (sp.kron(T, sp.identity(M)) + sp.kron(sp.identity(M), T)).tocsr()


def test_sparse_constant_lowers_like_its_dense_copy():
    L = _laplacian(4)
    m = od.Model()
    u = m.variable(16, name="u")
    e_sparse, e_dense = od.sum_squares(L @ u - 1), od.sum_squares(L.toarray() @ u - 1)
    T = TorchLowering()
    x = torch.tensor(rng.normal(size=16), requires_grad=True)
    vs, vd = T.evaluate(e_sparse, {u: x}), T.evaluate(e_dense, {u: x})
    gs, = torch.autograd.grad(vs, x)
    gd, = torch.autograd.grad(vd, x)
    assert float(vs) == pytest.approx(float(vd), rel=1e-13)
    np.testing.assert_allclose(gs.numpy(), gd.numpy(), atol=1e-12)
    a = SparseAffineLowering([u], [0], 16).lower(L @ u + 2)
    np.testing.assert_array_equal(a.A.toarray(), L.toarray())
    H = SparseHessian(e_sparse, [u], [0], 16, T)(x.detach().numpy())
    np.testing.assert_allclose(H.toarray(), 2 * (L.T @ L).toarray(), atol=1e-12)


def test_sparse_constant_solves_through_cvxpy_and_sor():
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla
    M = 40
    L = _laplacian(M)
    b = np.linspace(0, 1, M * M)
    m = od.Model("sparse_system")
    u = m.variable(M * M, name="u")
    m.subject_to(u + 0.5 * (L @ u) == b, name="step")
    exact = spla.spsolve((sp.identity(M * M) + 0.5 * L).tocsc(), b)
    r = m.solve(solver="sor", tol=1e-12)
    assert r.status == od.TerminationStatus.OPTIMAL
    np.testing.assert_allclose(r.values["u"], exact, atol=1e-9)
    ls = od.Model("sparse_ls")
    v = ls.variable(M * M, name="v")
    ls.minimize(od.sum_squares(L @ v - b))
    res = ls.solve(solver="cvxpy")
    np.testing.assert_allclose(res.values["v"], spla.spsolve(L.tocsc(), b), atol=1e-6)


def test_sparse_constant_misuse_is_a_clear_error():
    L = _laplacian(3)
    m = od.Model()
    u = m.variable(9, name="u")
    with pytest.raises(od.ModelError, match=r"sparse\(9, 9\) can only be the left operand of @.*right operand"):
        u @ L
    with pytest.raises(od.ModelError, match="used in 'add'"):
        L + u
    with pytest.raises(od.ModelError, match=r"of shape \(9, 9\) holds nan at index \(0, 0\): data must be finite"):
        od.Constant(L * np.nan)
