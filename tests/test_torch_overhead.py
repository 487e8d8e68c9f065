"""Per-solve overhead of the torch backends, checked by counts (never wall-clock): each point is evaluated once
for values and at most once more for the Hessian, Jacobian rows come from one batched reverse pass, compiled
expressions (tapes) agree with the lowering walk, CasADi-compiled derivatives agree with autograd, and the best
point of a run is judged only when asked for."""
import importlib.util
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import optdsl as od
from optdsl.backends.casadi_derivatives import CasadiDerivatives
from optdsl.backends.flatten import BestPoint, FlatProblem
from optdsl.errors import ModelError
from optdsl.lower.torch import Tape, TorchLowering
from optdsl.solvers import alsketch
from optdsl.solvers.autodiff import rows_of
from optdsl.solvers.testing import hock_schittkowski as hs

ROOT = Path(__file__).resolve().parent.parent


def _gallery(name):
    spec = importlib.util.spec_from_file_location(f"t_{name}", ROOT / "problems" / "hs" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _counting(fn, calls):
    def wrapped(x):
        calls[x.detach().numpy().tobytes()] += 1
        return fn(x)
    return wrapped


@pytest.mark.parametrize("num", [35, 71])
def test_alsketch_evaluates_each_point_once_for_values_and_once_for_the_hessian(num):
    """The accepted trial point and a new barrier subproblem reuse the values already computed: f is called
    at most twice per distinct point (values, Hessian), the constraints likewise (one forward pass gives c and J)."""
    p = hs.get(num)
    f_calls, eq_calls, in_calls = Counter(), Counter(), Counter()
    kw = {}
    if p.eq:
        kw["eq"] = _counting(p.eq, eq_calls)
    if p.ineq:
        kw["ineq"] = _counting(p.ineq, in_calls)
    out = alsketch.minimize(_counting(p.f, f_calls), torch.tensor(p.x0, dtype=torch.float64), lb=p.lb, ub=p.ub,
                            linear_solver="direct", **kw)
    assert out.status.name == "LOCALLY_OPTIMAL"
    assert hs.relative_error(out.objective, p.f_star) <= 1e-6
    assert max(f_calls.values()) <= 2
    # constraints: one call per point for values + Jacobian, one for the Hessian (+1 for the shape probe at x0)
    for calls in (eq_calls, in_calls):
        assert not calls or max(calls.values()) <= 3
    n = len(p.x0)
    assert sum(f_calls.values()) == out.counts["f"] + out.counts["hvp"] // n
    assert out.counts["f"] <= 2 * out.iterations + 2  # ~ one value evaluation per Newton step (+ backtracks)


def test_rows_of_batched_equals_per_row_and_keeps_finite_rows_finite():
    x = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    y = torch.stack([x[0] * x[1], torch.sin(x[2]) + x[0] ** 3, (x * x).sum(), x[1] * 0 + 1.0])
    batched = rows_of(y, x)
    loop = rows_of(y, x, batched=False)
    assert torch.equal(batched, loop)
    expected = torch.tensor([[-1.2, 0.3, 0.0], [3 * 0.09, 0.0, float(np.cos(2.0))], [0.6, -2.4, 4.0], [0, 0, 0]],
                            dtype=torch.float64)
    assert torch.allclose(batched, expected)
    # a row with an infinite derivative: the batched pass is redone row by row, so the result is exactly what
    # separate reverse passes give
    z = torch.tensor([0.0, 1.0], dtype=torch.float64, requires_grad=True)
    w = torch.stack([torch.sqrt(z[0]) + 2 * z[1], 3 * z[1]])
    J = rows_of(w, z)
    assert torch.isinf(J[0, 0]) and J[0, 1] == 2.0 and J[1, 1] == 3.0
    torch.testing.assert_close(J, rows_of(w, z, batched=False), equal_nan=True, rtol=0, atol=0)


def test_tape_agrees_with_the_lowering_walk_and_rereads_parameters():
    m = od.Model("tape")
    x = m.variable(3, name="x")
    Y = m.variable((2, 2), name="Y")
    a = m.parameter(value=2.0, name="a")
    shared = od.square(x[0] - x[1])
    exprs = [a * shared + od.exp(x[2]) * Y[0, 1], shared - Y.sum() + np.array([1.0, 2.0]) @ Y[:, 0], Y]
    variables, offsets = [x, Y], [0, 3]
    low = TorchLowering()
    tape = Tape(low, exprs, {id(v): o for v, o in zip(variables, offsets)})
    z = torch.tensor([0.5, -1.0, 0.2, 1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    env = {x: z[:3], Y: z[3:].reshape(2, 2)}
    for value in (2.0, -3.5):  # a new parameter value is seen without rebuilding the tape
        a.value = value
        got = tape(z)
        want = [low.evaluate(e, env) for e in exprs]
        for g, w in zip(got, want):
            assert torch.equal(g, w)
    assert tape.leaf_output  # Y itself is an output: FlatProblem copies it before handing it out


@pytest.mark.parametrize("name", ["hs035", "hs071", "hs078"])
def test_compiled_derivatives_agree_with_autograd(name):
    mod = _gallery(name)
    flat = FlatProblem(mod.build().plan("alsketch").problem)
    d = CasadiDerivatives.of(flat)
    assert d is not None
    x = flat.x0() + 0.1
    lam = torch.linspace(0.5, 1.5, d.m, dtype=torch.float64)
    s = np.array([10.0 ** -k for k in range(d.m)])  # row scaling, as ScaledRows applies it
    oracle = d.oracle(3.0, s[:len(flat.eq(x))], s[len(flat.eq(x)):])
    f, g, c, J = oracle.eval(x)

    def rows(v):
        return torch.cat([flat.eq(v), flat.ineq(v)]) * torch.as_tensor(s)
    xg = x.clone().requires_grad_(True)
    assert float(f) == pytest.approx(3.0 * float(flat.f(x)), rel=1e-14)
    assert torch.allclose(g, torch.autograd.grad(3.0 * flat.f(xg), xg)[0], rtol=1e-12, atol=1e-12)
    assert torch.allclose(c, rows(x), rtol=1e-14, atol=1e-14)
    assert torch.allclose(J, torch.autograd.functional.jacobian(rows, x), rtol=1e-12, atol=1e-12)
    H = torch.autograd.functional.hessian(lambda v: 3.0 * flat.f(v) + (lam * rows(v)).sum(), x)
    assert torch.allclose(oracle.hess(x, lam), H, rtol=1e-12, atol=1e-12)


def test_compiled_derivatives_with_structural_zeros_and_reused_buffers():
    """The objective reads x0 only and the rows are affine (structurally sparse gradient and Jacobian): the
    buffered outputs are dense and in the right layout, and results already returned are not overwritten by the
    next call (the oracle reuses its buffers)."""
    m = od.Model("sparse_grad")
    x = m.variable(3, name="x")
    m.minimize((x[0] - 1) ** 2)
    m.subject_to(x[1] + 2 * x[2] == 3, name="row")
    m.subject_to(x[2] ** 2 >= 0.25, name="curved")
    flat = FlatProblem(m.plan("alsketch").problem)
    oracle = CasadiDerivatives.of(flat).oracle()
    x1 = torch.tensor([0.3, -0.7, 2.0], dtype=torch.float64)
    f1, g1, c1, J1 = oracle.eval(x1)
    H1 = oracle.hess(x1, torch.tensor([0.5, 2.0], dtype=torch.float64))
    kept = [t.clone() for t in (g1, c1, J1, H1)]
    oracle.eval(torch.tensor([5.0, 6.0, 7.0], dtype=torch.float64))
    oracle.hess(torch.tensor([5.0, 6.0, 7.0], dtype=torch.float64), torch.ones(2, dtype=torch.float64))
    for before, after in zip(kept, (g1, c1, J1, H1)):
        assert torch.equal(before, after)
    rows = lambda v: torch.cat([flat.eq(v), flat.ineq(v)])  # noqa: E731
    assert float(f1) == pytest.approx(0.49, abs=1e-15)
    assert torch.allclose(g1, torch.tensor([-1.4, 0.0, 0.0], dtype=torch.float64), atol=1e-15)
    assert torch.allclose(c1, rows(x1), atol=1e-15)
    assert torch.allclose(J1, torch.autograd.functional.jacobian(rows, x1), atol=1e-15)
    H = torch.autograd.functional.hessian(lambda v: flat.f(v) + (torch.tensor([0.5, 2.0], dtype=torch.float64)
                                                                   * rows(v)).sum(), x1)
    assert torch.allclose(H1, H, atol=1e-15)


@pytest.mark.parametrize("solver", ["alsketch", "nlp"])
@pytest.mark.parametrize("name", ["hs035", "hs071"])
def test_compiled_and_autograd_derivatives_reach_the_same_point(name, solver):
    mod = _gallery(name)
    rc = mod.build().solve(solver=solver, derivatives="casadi")
    ra = mod.build().solve(solver=solver, derivatives="autograd")
    assert rc.status == ra.status and rc.status.name == "LOCALLY_OPTIMAL"
    assert rc.objective == pytest.approx(mod.EXPECTED["objective"], rel=1e-6)
    assert rc.objective == pytest.approx(ra.objective, rel=1e-10, abs=1e-12)
    for k in rc.values:
        assert np.allclose(rc.values[k], ra.values[k], rtol=1e-7, atol=1e-8)
    for k in rc.duals:
        assert np.allclose(rc.duals[k], ra.duals[k], rtol=1e-6, atol=1e-7)


def test_od_fn_model_keeps_autograd_and_casadi_request_names_the_term():
    m = od.Model("net")
    x = m.variable(2, name="x", value=[1.0, 1.0])
    m.minimize(od.fn(lambda t: torch.sum((t - 2.0) ** 2), name="net")(x))
    m.subject_to(x[0] + x[1] == 1, name="c")
    with pytest.raises(ModelError, match=r"od\.fn\(net\)"):
        m.solve(solver="alsketch", derivatives="casadi")
    r = m.solve(solver="alsketch")
    assert r.status.name == "OPTIMAL" or r.status.name == "LOCALLY_OPTIMAL"
    assert r.objective == pytest.approx(4.5, rel=1e-8)  # x = (0.5, 0.5)
    assert np.allclose(r.values["x"], [0.5, 0.5], atol=1e-7)


def test_best_point_is_judged_only_when_read():
    m = od.Model("best")
    x = m.variable(2, name="x")
    m.minimize(od.sum_squares(x - 1))
    m.subject_to(x[0] + x[1] <= 1, name="half")
    flat = FlatProblem(m.to_problem())
    calls = []

    def f(v):
        calls.append(1)
        return flat.f(v)
    best = BestPoint(flat, f)
    cb = best.wrap(None)
    for pt in ([2.0, 2.0], [0.5, 0.5], [0.2, 0.1], [0.6, 0.6]):  # infeasible, feasible (f=.5), feasible, infeasible
        cb({"x": torch.tensor(pt, dtype=torch.float64)})
    assert not calls and best.seen == 4  # nothing evaluated per iteration
    assert torch.equal(best.x, torch.tensor([0.5, 0.5], dtype=torch.float64))
    assert best.key == (0, pytest.approx(0.5)) and len(calls) == 4


def test_lbfgs_compiled_and_autograd_derivatives_agree_on_rosenbrock():
    def build():
        m = od.Model("rosenbrock4")
        x = m.variable(4, name="x", value=[-1.2, 1.0, -1.2, 1.0])
        m.minimize(sum(100 * od.square(x[i + 1] - od.square(x[i])) + od.square(1 - x[i]) for i in range(3)))
        return m
    rc = build().solve(solver="lbfgs", derivatives="casadi")
    ra = build().solve(solver="lbfgs", derivatives="autograd")
    assert rc.status == ra.status and rc.status.name == "LOCALLY_OPTIMAL"
    assert np.allclose(rc.values["x"], 1.0, atol=1e-6)  # the minimizer (1, 1, 1, 1)
    assert np.allclose(rc.values["x"], ra.values["x"], atol=1e-9)
    assert abs(rc.iterations - ra.iterations) <= 2


def test_compiled_derivatives_read_parameters_at_each_solve():
    """min (x - a)² + (y - 2)² s.t. x + y = 1 has x* = (a - 1)/2: a new value of a is seen by the kept functions."""
    m = od.Model("param")
    x = m.variable(name="x", value=0.0)
    y = m.variable(name="y", value=0.0)
    a = m.parameter(value=1.0, name="a")
    m.minimize(od.square(x - a) + od.square(y - 2))
    m.subject_to(x + y == 1, name="sum")
    for value in (1.0, 5.0, -3.0):
        a.value = value
        r = m.solve(solver="alsketch")
        # stationarity 2(x - a) = 2(y - 2) with x + y = 1:  x = (1 + a - 2)/2
        assert r.status.name in ("OPTIMAL", "LOCALLY_OPTIMAL")
        assert float(r.values["x"]) == pytest.approx((value - 1.0) / 2, abs=1e-7)
    flat = m._cache[("compiled", "alsketch", "cpu", "torch.float64")]
    assert CasadiDerivatives.of(flat) is not None  # the compiled functions were kept and reused


def test_vector_written_model_keeps_autograd():
    rng = np.random.default_rng(0)
    A, b = rng.standard_normal((400, 10)), rng.standard_normal(400)
    m = od.Model("ls")
    w = m.variable(10, name="w")
    m.minimize(od.sum_squares(A @ w - b))
    m.subject_to(od.sum(w) == 1, name="budget")
    flat = FlatProblem(m.to_problem())
    d, why = CasadiDerivatives.why_not(flat)
    assert d is None and "vectors" in why
    r = m.solve(solver="alsketch")  # derivatives="auto": autograd here, same answer as the closed form
    K = np.block([[2 * A.T @ A, np.ones((10, 1))], [np.ones((1, 10)), np.zeros((1, 1))]])
    w_star = np.linalg.solve(K, np.concatenate([2 * A.T @ b, [1.0]]))[:10]
    assert np.allclose(r.values["w"], w_star, atol=1e-6)
