"""Uncertainty sets: validation, support functions vs enumeration, maximisers, projections."""

import cvxpy as cp
import numpy as np
import pytest

from optdsl.solvers.robust import Box, Budget, Ellipsoid, Polyhedron

RNG = np.random.default_rng(1)
P3 = RNG.standard_normal((3, 3))
SETS = {
    "box": Box(np.array([0.5, -1.0, 2.0]), P=P3),
    "budget": Budget(np.array([0.5, -1.0, 2.0]), P=P3, gamma=1.5),
    "polyhedron": Polyhedron(np.vstack([np.eye(3), -np.eye(3), [[1, 1, 1]]]), np.r_[np.ones(3), np.ones(3), 1.2]),
}


@pytest.mark.parametrize("name", sorted(SETS))
def test_support_equals_vertex_enumeration_and_cvxpy(name):
    U = SETS[name]
    V = U.vertices()
    for v in np.random.default_rng(2).standard_normal((5, 3)):
        brute = float(np.max(V @ v))
        assert U.support_value(v) == pytest.approx(brute, abs=1e-8)
        u = U.worst_case(v)
        assert U.contains(u, 1e-7) and v @ u == pytest.approx(brute, abs=1e-8)
        expr, cons = U.support(v)  # with dual variables for budget / polyhedron: minimise them out
        pr = cp.Problem(cp.Minimize(expr), cons)
        pr.solve(solver="CLARABEL")
        assert pr.value == pytest.approx(brute, abs=1e-6)


def test_ellipsoid_support_closed_form_and_samples():
    c, P = np.array([1.0, 0.0, -2.0]), P3
    U = Ellipsoid(c, P, rho=0.7)
    v = np.array([0.3, -1.0, 2.0])
    exact = c @ v + 0.7 * np.linalg.norm(P.T @ v)
    assert U.support_value(v) == pytest.approx(exact, rel=1e-12)
    S = U.sample(20000, seed=3)
    assert all(U.contains(s, 1e-9) for s in S[:200])
    assert (S @ v).max() <= exact + 1e-12 and (S @ v).max() > exact - 0.05


def test_vertex_counts():
    assert Box(np.zeros(4), radius=1.0).vertices().shape == (16, 4)
    assert Budget(np.zeros(4), gamma=2).vertices().shape == (6 * 4, 4)       # C(4,2) supports x 2^2 signs
    assert Budget(np.zeros(3), gamma=1.5).vertices().shape == (24, 3)         # 3 x 2 x 4
    np.testing.assert_allclose(Budget(np.zeros(3), gamma=5).vertices(), Box(np.zeros(3)).vertices())
    tri = Polyhedron([[1, 0], [0, 1], [-1, -1]], [1, 1, 0])
    np.testing.assert_allclose(tri.vertices(), [[-1, 1], [1, -1], [1, 1]])
    with pytest.raises(ValueError, match="max_count"):
        Box(np.zeros(20)).vertices(max_count=1000)


def test_budget_projection_is_euclidean_projection():
    U = Budget(np.zeros(5), gamma=1.7)
    for z in np.random.default_rng(4).standard_normal((5, 5)) * 2:
        p = U.project_z(z[None])[0]
        w = cp.Variable(5)
        cp.Problem(cp.Minimize(cp.sum_squares(w - z)), [cp.abs(w) <= 1, cp.norm1(w) <= 1.7]).solve(solver="CLARABEL")
        np.testing.assert_allclose(p, w.value, atol=1e-5)


def test_budget_interpolates_between_nominal_and_box():
    v = np.array([3.0, -1.0, 0.5])
    assert Budget(np.zeros(3), gamma=0).support_value(v) == 0.0
    assert Budget(np.zeros(3), gamma=1).support_value(v) == pytest.approx(3.0)
    assert Budget(np.zeros(3), gamma=2.5).support_value(v) == pytest.approx(3 + 1 + 0.25)
    assert Budget(np.zeros(3), gamma=3).support_value(v) == pytest.approx(Box(np.zeros(3)).support_value(v))


@pytest.mark.parametrize("make, match", [
    (lambda: Box(np.zeros(2), radius=[-1, 1]), "empty"),
    (lambda: Box(np.zeros(2), radius=[np.inf, 1]), "unbounded"),
    (lambda: Box(np.zeros(2), P=np.ones((3, 2))), r"2 rows"),
    (lambda: Box(np.zeros((2, 2)), radius=np.ones(3)), "radius"),   # a matrix centre is fine; sizes must agree
    (lambda: Box([np.nan, 0.0]), "NaN"),
    (lambda: Ellipsoid(np.zeros(2), rho=-1), "empty"),
    (lambda: Ellipsoid(np.zeros(2), rho=np.inf), "unbounded"),
    (lambda: Budget(np.zeros(2), gamma=-0.5), "empty"),
    (lambda: Polyhedron([[1.0], [-1.0]], [0.0, -1.0]), "empty"),
    (lambda: Polyhedron([[1.0, 0.0], [0.0, 1.0]], [1.0, 1.0]), "unbounded"),
    (lambda: Polyhedron(np.eye(2), [1.0, 1.0, 1.0]), r"shape \(2,\)"),
])
def test_bad_sets_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_inputs_not_mutated_and_wrong_dims():
    c, r = np.array([1.0, 2.0]), np.array([0.5, 0.5])
    U = Box(c, radius=r)
    U.center[0] = 99.0
    assert c[0] == 1.0 and r[0] == 0.5
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        U.support_value(np.ones(3))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        U.support(cp.Variable(3))


def test_contains_with_rectangular_P():
    # u = z1 + z2 with |z_i| ≤ 1: the set is [-2, 2]; the min-norm z of u = 1.8 is (0.9, 0.9), of 2.5 infeasible
    U = Box([0.0], P=[[1.0, 1.0]])
    assert U.contains([1.8]) and U.contains([-2.0]) and not U.contains([2.5])
    B = Budget([0.0], P=[[1.0, 1.0, 1.0]], gamma=1.5)   # σ = 1.5: the set is [-1.5, 1.5]
    assert B.contains([1.5]) and not B.contains([1.6])
    assert B.support_value([1.0]) == pytest.approx(1.5)
    # P = [[1, 2]] and u = 2.5: min-norm z = (0.5, 1.0) is on the box already; u = 2.9 needs z = (0.9, 1.0)
    U2 = Box([0.0], P=[[1.0, 2.0]])
    assert U2.contains([2.9]) and not U2.contains([3.1])
