"""zo.minimize: convergence on quadratics and logistic regression, bounds, constraints, statuses."""

import pytest
import torch

from optdsl.solvers import zo
from optdsl.solvers.common import Status

@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: threading only adds contention on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)



def quad(d=20, cond=10.0):
    Q = torch.diag(torch.linspace(1.0, cond, d, dtype=torch.float64))
    U, _ = torch.linalg.qr(torch.randn(d, d, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
    Q = U @ Q @ U.T
    b = torch.ones(d, dtype=torch.float64)
    xs = torch.linalg.solve(Q, b)
    f = lambda x: 0.5 * x @ Q @ x - b @ x  # noqa: E731
    return f, xs, float(f(xs))


@pytest.mark.parametrize("estimator", ["gaussian", "rademacher", "coordinate", "forward"])
def test_zo_sgd_converges_on_strongly_convex_quadratic(estimator):
    f, xs, fs = quad()
    x0 = torch.zeros(20, dtype=torch.float64)
    f0 = float(f(x0))
    iters = 600 if estimator == "forward" else 1500   # jvp calls cost ~ms each: fewer, larger steps
    out = zo.minimize(f, x0, estimator=estimator, lr=1.0 / (10 * 22) * (2 if estimator == "forward" else 1),
                      max_iter=iters, seed=3)
    assert out.status == Status.ITERATION_LIMIT
    assert out.objective - fs < 1e-6 * (f0 - fs)          # gap reduced by > 10^6
    assert float((out.x - xs).norm()) < 1e-2
    assert out.counts["f" if estimator != "forward" else "jac"] >= iters
    assert torch.equal(x0, torch.zeros(20, dtype=torch.float64))  # input not mutated


@pytest.mark.parametrize("optimizer,lr,tol", [("momentum", 5e-4, 1e-6), ("adam", 1e-2, 1e-3),
                                              ("sign", 2e-3, 1e-2), ("conservative", 4e-3, 1e-6)])
def test_other_optimizers_converge(optimizer, lr, tol):
    f, xs, fs = quad()
    x0 = torch.zeros(20, dtype=torch.float64)
    out = zo.minimize(f, x0, lr=lr, optimizer=optimizer, max_iter=2000, seed=0,
                      schedule="cosine" if optimizer in ("sign", "adam") else "constant")
    assert out.objective - fs < tol * (float(f(x0)) - fs)


def test_rank_and_sparse_estimators_decrease_objective():
    f, xs, fs = quad()
    x0 = torch.zeros(20, dtype=torch.float64)
    gap0 = float(f(x0)) - fs
    r = zo.minimize(f, x0, estimator="rank", eps=1e-2, lr=0.01, rank_m=4, max_iter=1500, schedule="cosine")
    assert r.objective - fs < 1e-2 * gap0
    s = zo.minimize(f, torch.full((20,), 0.1, dtype=torch.float64), estimator="sparse", keep=0.5, lr=2e-3,
                    max_iter=3000)
    assert s.objective - fs < 0.25 * gap0


def test_logistic_regression_reaches_backprop_optimum():
    g = torch.Generator().manual_seed(0)
    n, d = 400, 8
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    w_true = torch.randn(d, generator=g, dtype=torch.float64)
    y = (torch.rand(n, generator=g, dtype=torch.float64) < torch.sigmoid(X @ w_true)).double()
    lam = 1e-2

    def f(w):
        return torch.nn.functional.binary_cross_entropy_with_logits(X @ w, y) + 0.5 * lam * w @ w
    w = torch.zeros(d, dtype=torch.float64)  # first-order optimum: Newton with autograd derivatives
    for _ in range(15):
        g_, H = torch.func.grad(f)(w), torch.func.hessian(f)(w)
        w = w - torch.linalg.solve(H, g_)
    assert float(torch.func.grad(f)(w).norm()) < 1e-12
    f_star = float(f(w))
    out = zo.minimize(lambda v: float(f(v)), torch.zeros(d, dtype=torch.float64), lr=0.5, max_iter=1500,
                      schedule="linear", seed=1)
    assert out.objective - f_star < 1e-4   # stated gap: 1e-4 in the regularised log-loss


def test_bounds_by_projection_give_clipped_solution():
    c = torch.tensor([-2.0, 0.5, 3.0], dtype=torch.float64)
    f = lambda x: float(((x - c) ** 2).sum())  # noqa: E731  (separable: box optimum = clip(c))
    # the gradient does not vanish at a constrained optimum, so the estimator noise does not either:
    # a decaying step size is needed (plain projected ZO-SGD with constant lr hovers around the optimum)
    out = zo.minimize(f, torch.zeros(3, dtype=torch.float64), lr=0.05, max_iter=3000, lb=-1.0, ub=1.0,
                      schedule="linear")
    assert torch.allclose(out.x, c.clamp(-1, 1), atol=2e-2)
    assert bool((out.x >= -1).all() and (out.x <= 1).all())
    with pytest.raises(ValueError, match="lb > ub"):
        zo.minimize(f, torch.zeros(3), lb=1.0, ub=0.0)


def test_augmented_lagrangian_handles_blackbox_constraints():
    a = torch.tensor([0.9, 0.1, -0.4], dtype=torch.float64)
    f = lambda x: float(((x - a) ** 2).sum())  # noqa: E731
    out = zo.minimize_constrained(f, torch.zeros(3, dtype=torch.float64), eq=lambda x: [x.sum() - 1.0],
                                  ineq=lambda x: [-x[2]], lr=0.2, inner_iter=400, outer=12)
    # KKT by hand: x3 = 0 active, x1 + x2 = 1 -> x = a12 + (1 - sum a12)/2 = (0.9, 0.1) + 0
    assert torch.allclose(out.x, torch.tensor([0.9, 0.1, 0.0], dtype=torch.float64), atol=5e-3)
    assert out.certificates["feasibility"] < 5e-3


def test_bad_objectives_give_statuses_with_iteration():
    f, _, _ = quad(5)

    def nan_at_3(x, calls=[0]):
        calls[0] += 1
        return float("nan") if calls[0] > 6 else float(f(x))
    out = zo.minimize(nan_at_3, torch.zeros(5, dtype=torch.float64), max_iter=10, lr=1e-3)  # no probe evals
    assert out.status == Status.NUMERICAL_ERROR and "iteration 3" in out.message
    assert out.x is not None and bool(torch.isfinite(out.x).all())

    def raises(x):
        raise ValueError("simulator diverged")
    out = zo.minimize(raises, torch.zeros(5), max_iter=10)
    assert out.status == Status.OTHER_ERROR and "iteration 0" in out.message and "simulator diverged" in out.message
    out = zo.minimize(lambda x: x * 2, torch.zeros(5), max_iter=10)
    assert out.status == Status.OTHER_ERROR and "shape (5,)" in out.message
    out = zo.minimize(lambda x: "a", torch.zeros(5), max_iter=10)
    assert out.status == Status.OTHER_ERROR and "expected a scalar" in out.message


def test_bad_arguments_raise_early():
    f, _, _ = quad(5)
    for kw, msg in [(dict(eps=0.0), "eps"), (dict(eps=-1.0), "eps"), (dict(q=0), "q"),
                    (dict(estimator="newton"), "estimator"), (dict(optimizer="lbfgs"), "optimizer"),
                    (dict(lr=-1.0), "lr"), (dict(schedule="cosine", max_iter=None), "max_iter"),
                    (dict(lb=torch.zeros(3)), "lb")]:
        with pytest.raises(ValueError, match=msg):
            zo.minimize(f, torch.zeros(5, dtype=torch.float64), **{"max_iter": 5, **kw})


def test_callback_stop_tol_and_history():
    f, xs, fs = quad(5)
    seen = []
    out = zo.minimize(f, torch.zeros(5, dtype=torch.float64), max_iter=100,
                      callback=lambda info: seen.append(info["objective"]) or info["iteration"] < 4)
    assert out.status == Status.INTERRUPTED and len(seen) == 5 and len(out.history) == 5
    assert {"objective", "grad_norm", "variance", "lr", "evals"} <= set(out.history[0])
    out = zo.minimize(f, torch.zeros(5, dtype=torch.float64), estimator="coordinate", lr=0.05, max_iter=5000,
                      tol=1e-6)
    assert out.status == Status.LOCALLY_OPTIMAL and out.iterations < 5000
    out = zo.minimize(f, torch.zeros(5, dtype=torch.float64), q=4, max_iter=3, lr=1e-3)
    assert out.history[-1]["variance"] > 0 and out.counts["f"] == 3 * 8 + 1
