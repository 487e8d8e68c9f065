"""Projections onto boxes, simplices, balls, affine sets: optimality conditions and cvxpy agreement."""
import math

import cvxpy as cp
import numpy as np
import pytest
import torch

from optdsl.solvers.halpern import Affine, Ball, Box, Product, Simplex


def _cvx_proj(z, cons):
    u = cp.Variable(z.size)
    cp.Problem(cp.Minimize(cp.sum_squares(u - z)), cons(u)).solve(solver=cp.CLARABEL)
    return u.value


@pytest.mark.parametrize("radius", [1.0, 2.5])
def test_simplex_matches_cvxpy(radius):
    rng = np.random.default_rng(1)
    for _ in range(5):
        z = rng.standard_normal(12) * 2
        p = Simplex(radius)(torch.tensor(z)).numpy()
        ref = _cvx_proj(z, lambda u: [u >= 0, cp.sum(u) == radius])
        assert np.abs(p - ref).max() < 1e-5            # cvxpy's own accuracy
        assert abs(p.sum() - radius) < 1e-12 and p.min() >= 0
        # exact KKT: p = (z − θ)₊ with a single θ
        theta = (z - p)[p > 0]
        assert np.ptp(theta) < 1e-12 and (z[p == 0] <= theta[0] + 1e-12).all()


def test_simplex_input_already_inside_and_not_mutated():
    z = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    z_copy = z.clone()
    assert torch.allclose(Simplex()(z), z, atol=1e-15)
    assert torch.equal(z, z_copy)


def test_box_ball_affine():
    rng = np.random.default_rng(2)
    z = torch.tensor(rng.standard_normal(6) * 3)
    lo, hi = -torch.ones(6, dtype=torch.float64), torch.tensor([1, 2, 3, 4, 5, 6.0], dtype=torch.float64)
    assert torch.equal(Box(lo, hi)(z), torch.clamp(z, lo, hi))
    pb = Ball(1.5, center=torch.ones(6, dtype=torch.float64))(z)
    assert abs(float((pb - 1).norm()) - 1.5) < 1e-12
    assert torch.allclose(pb - 1, (z - 1) * 1.5 / (z - 1).norm())
    A, b = rng.standard_normal((2, 6)), rng.standard_normal(2)
    pa = Affine(A, b)(z).numpy()
    ref = _cvx_proj(z.numpy(), lambda u: [A @ u == b])
    assert np.abs(pa - ref).max() < 1e-5 and np.abs(A @ pa - b).max() < 1e-10


def test_rank_deficient_affine_and_support():
    A = np.array([[1.0, 1.0, 0.0], [2.0, 2.0, 0.0]])   # rank 1, consistent b
    S = Affine(A, np.array([1.0, 2.0]))
    p = S(torch.tensor([3.0, 0.0, 7.0], dtype=torch.float64))
    assert torch.allclose(p, torch.tensor([2.0, -1.0, 7.0], dtype=torch.float64))
    assert S.support(torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)) == pytest.approx(1.0)
    assert math.isinf(S.support(torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)))


def test_support_functions():
    g = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    assert Simplex(2.0).support(g) == pytest.approx(2.0)
    assert Box(-1, 1).support(g) == pytest.approx(3.5)
    assert Ball(2.0).support(g) == pytest.approx(2 * float(g.norm()))
    assert math.isinf(Box(0, math.inf).support(g))


def test_product_splits_blocks():
    P = Product([Simplex(), Box(0, 1)], [3, 2])
    out = P(torch.tensor([1.0, 1.0, 1.0, -3.0, 5.0], dtype=torch.float64))
    assert torch.allclose(out, torch.tensor([1 / 3, 1 / 3, 1 / 3, 0.0, 1.0], dtype=torch.float64))


def test_bad_set_arguments():
    with pytest.raises(ValueError, match="radius"):
        Simplex(-1)
    with pytest.raises(ValueError, match="lo <= hi"):
        Box(1, 0)
    with pytest.raises(ValueError, match="b must have shape"):
        Affine(np.eye(3), np.ones(2))
    with pytest.raises(ValueError, match="sizes"):
        Product([Simplex()], [2, 3])
