"""Matrix variables (symmetric / PSD / diag) and semidefinite constraints, solved as cvxpy SDPs."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import optdsl as od

ROOT = Path(__file__).resolve().parent.parent / "problems"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"gallery_{name}", ROOT / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def sic():
    return _load("sparse_inverse_covariance")


@pytest.fixture(scope="module")
def maxcut():
    return _load("maxcut_sdp")


def test_sparse_inverse_covariance_matches_cvxpy_and_resolves_in_alpha(sic):
    m = sic.build()
    res = m.solve()
    assert res.status.name == "OPTIMAL" and res.solver == "cvxpy"
    obj, X = sic.reference()
    assert res.objective == pytest.approx(obj, rel=1e-5)
    np.testing.assert_allclose(res.values["X"], X, atol=1e-3)
    assert np.min(np.linalg.eigvalsh(res.values["X"])) > 0
    form = m.plan().problem.payload["cvxpy"]
    alpha = m.parameters[0]
    alpha.value = 0.3
    res2 = m.solve()
    assert m.plan().problem.payload["cvxpy"] is form  # the compiled chain is reused
    obj2, X2 = sic.reference(0.3)
    assert res2.objective == pytest.approx(obj2, rel=1e-5)
    # a larger penalty gives a sparser precision estimate
    assert np.sum(np.abs(res2.values["X"]) < 1e-4) > np.sum(np.abs(res.values["X"]) < 1e-4)


def test_maxcut_relaxation_bounds_the_cut_and_its_dual_certifies_it(maxcut):
    m = maxcut.build()
    res = m.solve()
    obj, _ = maxcut.reference()
    assert res.objective == pytest.approx(obj, rel=1e-5)
    assert res.objective >= maxcut.max_cut_brute_force() - 1e-6
    Y, Lam, nu = res.values["Y"], res.duals["psd"], res.duals["unit"]
    assert Lam.shape == Y.shape and nu.shape == (maxcut.N_NODES,)
    scale = np.abs(maxcut.LAPLACIAN).max()
    assert np.min(np.linalg.eigvalsh(Lam)) >= -1e-6 * scale          # dual feasibility: Λ PSD
    assert abs(np.trace(Lam @ Y)) <= 1e-5 * scale * maxcut.N_NODES    # complementary slackness
    # stationarity of L = -tr(L Y)/4 + ν·(diag Y - 1) - <Λ, Y>:  Λ = Diag(ν) - L/4
    np.testing.assert_allclose(Lam, np.diag(nu) - maxcut.LAPLACIAN / 4, atol=1e-5 * scale)
    assert res.certificates["max_violation"] <= 1e-6


def test_nearest_psd_matrix_is_the_eigenvalue_clipped_projection():
    A = np.array([[1.0, 2.0, 0.0], [2.0, -1.0, 0.5], [0.0, 0.5, 0.3]])
    m = od.Model("nearest_psd")
    X = m.variable((3, 3), PSD=True, name="X")
    m.minimize(od.norm(X - A))  # Frobenius
    res = m.solve()
    w, V = np.linalg.eigh(A)
    np.testing.assert_allclose(res.values["X"], V @ np.diag(np.maximum(w, 0)) @ V.T, atol=1e-5)


def test_psd_constraint_spellings_agree():
    A = np.array([[2.0, 1.0], [1.0, -3.0]])
    answers = []
    for spell in (lambda X: X >> A, lambda X: A << X, lambda X: od.psd(X - A), lambda X: (X - A) >> 0):
        m = od.Model()
        X = m.variable((2, 2), symmetric=True, name="X")
        m.minimize(od.trace(X))
        m.subject_to(spell(X), name="lmi")
        m.subject_to(X >> 0, name="pos")
        res = m.solve()
        answers.append(res.objective)
        assert np.min(np.linalg.eigvalsh(res.values["X"] - A)) >= -1e-6
    # min tr X s.t. X >= A, X >= 0: X = A_+ (negative eigenvalues clipped), tr X = sum of positive eigenvalues
    assert answers == pytest.approx([np.sum(np.maximum(np.linalg.eigvalsh(A), 0))] * 4, rel=1e-5, abs=1e-6)


def test_diag_variable_stays_diagonal():
    s = np.array([0.5, 2.0, 4.0])
    m = od.Model()
    D = m.variable((3, 3), diag=True, name="D")
    m.minimize(od.trace(np.diag(s) @ D) - od.log_det(D))
    res = m.solve()
    # conic solvers stop at ~1e-9 objective gaps, i.e. ~1e-5 in the point (the objective is quadratic there)
    np.testing.assert_allclose(res.values["D"], np.diag(1 / s), atol=1e-4)
    assert np.all(res.values["D"][~np.eye(3, dtype=bool)] == 0)


def test_violation_of_a_psd_constraint_is_its_most_negative_eigenvalue():
    m = od.Model()
    X = m.variable((2, 2), name="X", value=np.array([[1.0, 0.0], [0.0, -2.0]]))
    c = m.subject_to(X >> 0, name="lmi")
    assert c.kind == "psd" and str(c) == "X >> 0"
    assert c.violation() == pytest.approx(2.0)


def test_other_backends_refuse_semidefinite_models_with_the_reason():
    m = od.Model()
    X = m.variable((2, 2), name="X")
    m.minimize(od.sum_squares(X))
    m.subject_to(X >> np.eye(2), name="lmi")
    with pytest.raises(od.NotSolvableError, match="(?s)cannot handle psd.*solved as SDPs through cvxpy"):
        m.solve(solver="ipopt")
    assert "psd" in m.explain()
    S = od.Model()
    Y = S.variable((2, 2), symmetric=True, name="Y")
    S.minimize(od.sum_squares(Y - 1))
    with pytest.raises(od.NotSolvableError, match="matrix_structure"):
        S.solve(solver="lbfgs")


@pytest.mark.parametrize("build, error, message", [
    (lambda m: m.variable(3, symmetric=True, name="v"), od.ShapeError, "'v' is declared symmetric but its shape"),
    (lambda m: m.variable((2, 2), PSD=True, diag=True, name="v"), od.ModelError, "choose one of PSD, diag"),
    (lambda m: m.variable((2, 3), name="v") >> 0, od.ShapeError, "needs a square matrix"),
    (lambda m: m.variable((2, 2), hermitian=True, name="v"), od.ModelError, "Hermitian variables are not supported"),
])
def test_bad_matrix_declarations(build, error, message):
    with pytest.raises(error, match=message):
        build(od.Model())


def test_nonaffine_psd_constraint_is_not_convex():
    m = od.Model()
    X = m.variable((2, 2), name="X")
    m.minimize(od.trace(X))
    m.subject_to(od.exp(X) >> 0, name="bad")
    assert "convex" not in m.tags()
    with pytest.raises(od.NotSolvableError):
        m.solve()
