"""ZO estimators: seeded noise, in-place restore, two-point, CGE, forward gradient, rank, sparse masks."""
import math

import pytest
import torch

from optdsl.solvers.oracles import zo_noise as N
from optdsl.solvers.oracles.zo_coordinate import coordinate
from optdsl.solvers.oracles.zo_forward import forward_gradient
from optdsl.solvers.oracles.zo_rank import rank_direction
from optdsl.solvers.oracles.zo_sparse import magnitude_masks, magnitude_thresholds
from optdsl.solvers.oracles.zo_twopoint import ZOEvalError, direction, perturb_, two_point

@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: threading only adds contention on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)



def quad(d=20, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(d, d, generator=g, dtype=dtype)
    Q = A @ A.T / d + torch.eye(d, dtype=dtype)
    b = torch.randn(d, generator=g, dtype=dtype)
    return Q, b, (lambda x: 0.5 * x @ Q @ x - b @ x), (lambda x: Q @ x - b)


def test_noise_is_regenerable_and_well_formed():
    t = torch.empty(1000, dtype=torch.float32)
    z1, z2 = N.noise_like(t, 123, "gaussian"), N.noise_like(t, 123, "gaussian")
    assert torch.equal(z1, z2) and not torch.equal(z1, N.noise_like(t, 124, "gaussian"))
    r = N.noise_like(t, 5, "rademacher")
    assert set(r.unique().tolist()) == {-1.0, 1.0}
    # the fast Rademacher add path equals p + alpha * z
    p = torch.randn(1000)
    assert torch.allclose(N.add_noise_(p.clone(), 5, "rademacher", 0.3), p + 0.3 * r, atol=1e-7)
    assert N.derive_seed(1, 2) != N.derive_seed(2, 1) and N.derive_seed(1, 2) < 2 ** 63
    with pytest.raises(ValueError, match="noise kind"):
        N.noise_like(t, 0, "uniform")


@pytest.mark.parametrize("kind", ["gaussian", "rademacher"])
def test_in_place_perturb_restore_is_exact(kind):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(30, 20), torch.nn.Tanh(), torch.nn.Linear(20, 3))
    params = list(net.parameters())
    before = [p.detach().clone() for p in params]
    x = torch.randn(8, 30)
    seen = []
    est = two_point(lambda: float(net(x).square().mean().detach()), params, seed=7, eps=1e-3, q=3, kind=kind)
    for p, b in zip(params, before):  # fp32: a few ulp of the largest intermediate |θ| + ε|z| (|z| < 6)
        ulp = torch.finfo(torch.float32).eps * (b.abs() + 2 * 1e-3 * 6)
        assert bool(((p.detach() - b).abs() <= 4 * 3 * ulp).all())  # 4 ulp per query, q = 3
    # fp64, dyadic eps and values on a 2^-20 grid, so every addition is exact: restored bit for bit
    t = torch.round(torch.randn(1000, dtype=torch.float64) * 2 ** 20) / 2 ** 20
    t0 = t.clone()
    two_point(lambda: float(t.sum()), [t], seed=1, eps=2.0 ** -10, kind="rademacher", q=2)
    assert torch.equal(t, t0)
    # a failing objective still restores the parameters before the error propagates
    calls = []

    def bad():
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("simulator crashed")
        return 1.0
    with pytest.raises(ZOEvalError, match="simulator crashed"):
        two_point(bad, params, seed=3, eps=1e-3, where="iteration 5")
    for p, b in zip(params, before):
        assert torch.allclose(p.detach(), b, atol=1e-6)
    assert est.n_evals == 6 and len(est.seeds) == 3


def test_central_two_point_is_exact_along_z_for_quadratics():
    Q, b, f, grad = quad(50)
    x = torch.randn(50, dtype=torch.float64)
    est = two_point(lambda: f(x), [x], seed=11, eps=1e-3, q=4)
    for s, p in zip(est.seeds, est.projs):
        z = direction([x], s)[0]
        assert p == pytest.approx(float(z @ grad(x)), rel=1e-6)


def test_averaged_estimator_approaches_true_gradient():
    Q, b, f, grad = quad(20)
    x = torch.randn(20, dtype=torch.float64)
    g_true = grad(x)
    for kind in ("gaussian", "rademacher"):
        est = two_point(lambda: f(x), [x], seed=2, eps=1e-3, q=4000, kind=kind)
        g = est.dense([x], kind)[0]
        # relative error of the mean of N draws ~ sqrt(d / N) ≈ 0.07 here
        assert float((g - g_true).norm() / g_true.norm()) < 0.15
    fwd = two_point(lambda: f(x), [x], seed=2, eps=1e-4, q=4000, antithetic=False)
    assert fwd.n_evals == 4001
    assert float((fwd.dense([x])[0] - g_true).norm() / g_true.norm()) < 0.15


def test_coordinate_estimator_matches_autograd_and_counts():
    torch.manual_seed(0)
    W = torch.randn(5, 4, dtype=torch.float64)
    xd = torch.randn(10, 5, dtype=torch.float64)
    f = lambda v: torch.tanh(xd @ v.view(5, 4)).square().sum()  # noqa: E731
    x = torch.randn(20, dtype=torch.float64)
    x0 = x.clone()
    xa = x.clone().requires_grad_(True)
    f(xa).backward()
    g, n, _ = coordinate(f, x, mu=1e-6)
    assert torch.allclose(g, xa.grad, atol=1e-6) and n == 40 and torch.equal(x, x0)
    coords = torch.tensor([0, 3, 7])
    g2, n2, f0 = coordinate(f, x, mu=1e-6, coords=coords, central=False)
    assert n2 == 4 and torch.allclose(g2[coords], xa.grad[coords], atol=1e-4)
    mask = torch.ones(20, dtype=torch.bool)
    mask[coords] = False
    assert torch.equal(g2[mask], torch.zeros(17, dtype=torch.float64))
    gv, nv, _ = coordinate(lambda X: torch.tanh(xd @ X.view(-1, 5, 4)).square().sum((1, 2)), x, mu=1e-6,
                           vectorized=True, batch=7)
    assert torch.allclose(gv, xa.grad, atol=1e-6) and nv == 40
    with pytest.raises(ValueError, match="mu"):
        coordinate(f, x, mu=0.0)


def test_forward_gradient_is_exact_directional_derivative():
    Q, b, f, grad = quad(30)
    x = torch.randn(30, dtype=torch.float64)
    est = forward_gradient(f, [x], seed=4, q=3)
    for s, p in zip(est.seeds, est.projs):
        assert p == pytest.approx(float(direction([x], s)[0] @ grad(x)), rel=1e-10)
    assert est.f0 == pytest.approx(float(f(x)))


def test_rank_estimator_is_invariant_to_monotone_transforms():
    Q, b, f, grad = quad(10)
    x = torch.randn(10, dtype=torch.float64)
    g1, n, _ = rank_direction(x, seed=3, mu=0.1, m=5, f=f)
    g2, _, _ = rank_direction(x, seed=3, mu=0.1, m=5, f=lambda v: math.exp(float(f(v)) / 100))
    assert torch.equal(g1, g2) and n == 5
    # a ranking oracle giving the same order gives the same direction
    g3, _, _ = rank_direction(x, seed=3, mu=0.1, m=5, rank=lambda c: sorted(range(5), key=lambda i: float(f(c[i]))))
    assert torch.equal(g1, g3)
    # on average the direction correlates positively with the gradient
    avg = sum(rank_direction(x, seed=s, mu=0.05, m=4, f=f)[0] for s in range(400))
    assert float(torch.nn.functional.cosine_similarity(avg, grad(x), dim=0)) > 0.8
    with pytest.raises(ValueError, match="exactly one"):
        rank_direction(x, seed=0)


def test_sparse_masks_keep_fraction_and_pack_roundtrip():
    torch.manual_seed(0)
    ps = [torch.randn(37, 11), torch.randn(101)]
    thr = magnitude_thresholds(ps, keep=0.3)
    masks = magnitude_masks(ps, thr, packed=False)
    for p, m in zip(ps, masks):
        assert abs(int(m.sum()) - round(0.3 * p.numel())) <= 1
        assert float(p[m].abs().max()) <= float(p[~m].abs().min())
    packed = magnitude_masks(ps, thr)
    for (pk, shape), m in zip(packed, masks):
        assert torch.equal(N.unpack_mask(pk, shape), m) and pk.numel() == (m.numel() + 7) // 8
    # perturbing with the packed mask leaves large-magnitude entries untouched, and restores exactly
    before = [p.clone() for p in ps]
    perturb_(ps, 9, 0.01, masks=packed)
    for p, b, m in zip(ps, before, masks):
        assert torch.equal(p[~m], b[~m]) and not torch.equal(p[m], b[m])
    with pytest.raises(ValueError, match="keep"):
        magnitude_thresholds(ps, keep=0.0)


def test_bad_eps_and_q_are_rejected():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="eps"):
        two_point(lambda: 0.0, [x], seed=0, eps=0.0)
    with pytest.raises(ValueError, match="eps"):
        two_point(lambda: 0.0, [x], seed=0, eps=-1e-3)
    with pytest.raises(ValueError, match="q"):
        two_point(lambda: 0.0, [x], seed=0, q=0)
