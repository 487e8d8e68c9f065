"""Loop-built models: scalar constraints of one form are lowered as one vector constraint (expr.batching),
with the same answers, duals by each row's own name, and one cvxpy constraint / one CasADi vector per form."""
import numpy as np
import pytest

import optdsl as od
from optdsl.expr.batching import batch_constraints

N = 12


def chain(loop: bool, N: int = N) -> od.Model:
    """Hanging chain with links of length <= L (convex: a cvxpy model)."""
    L = 1.5 / N
    m = od.Model("chain")
    x = m.variable(N + 1, name="x")
    y = m.variable(N + 1, name="y")
    m.minimize(y.sum())
    m.subject_to(x[0] == 0, name="x0")
    m.subject_to(y[0] == 0, name="y0")
    m.subject_to(x[N] == 1, name="xN")
    m.subject_to(y[N] == 0, name="yN")
    if loop:
        for i in range(N):
            m.subject_to((x[i + 1] - x[i]) ** 2 + (y[i + 1] - y[i]) ** 2 <= L ** 2, name=f"link{i}")
    else:
        m.subject_to((x[1:] - x[:-1]) ** 2 + (y[1:] - y[:-1]) ** 2 <= L ** 2, name="links")
    return m


def race(loop: bool, N: int = N) -> od.Model:
    """CasADi's race car (min time, forward Euler here), a nonconvex model for IPOPT."""
    m = od.Model("race")
    pos = m.variable(N + 1, name="pos", value=np.linspace(0, 1, N + 1))
    speed = m.variable(N + 1, name="speed", value=np.ones(N + 1))
    U = m.variable(N, lb=0, ub=1, name="U", value=np.full(N, 0.5))
    T = m.variable(lb=0.1, name="T", value=1.0)
    m.minimize(T)
    dt = T / N
    if loop:
        for k in range(N):
            m.subject_to(pos[k + 1] == pos[k] + dt * speed[k], name=f"pos_step{k}")
            m.subject_to(speed[k + 1] == speed[k] + dt * (U[k] - speed[k]), name=f"speed_step{k}")
        for k in range(N + 1):
            m.subject_to(speed[k] <= 1 - od.sin(2 * np.pi * pos[k]) / 2, name=f"track{k}")
    else:
        m.subject_to(pos[1:] == pos[:-1] + dt * speed[:-1], name="pos_step")
        m.subject_to(speed[1:] == speed[:-1] + dt * (U - speed[:-1]), name="speed_step")
        m.subject_to(speed <= 1 - od.sin(2 * np.pi * pos) / 2, name="track")
    m.subject_to(pos[0] == 0, name="pos0")
    m.subject_to(speed[0] == 0, name="speed0")
    m.subject_to(pos[N] == 1, name="finish")
    return m


def test_loop_rows_group_into_one_batch_with_the_same_values():
    m = chain(True)
    rng = np.random.default_rng(0)
    values = {v: rng.standard_normal(v.shape) for v in m.variables}
    batches = batch_constraints(m.to_problem().constraints)
    sizes = sorted(len(b.items) for b in batches)
    assert sizes == [1, 1, 1, 1, N]  # the four end conditions have distinct forms (different variables)
    big = next(b for b in batches if b.batched)
    np.testing.assert_allclose(big.expr.evaluate(values), [float(c.expr.evaluate(values)) for c in big.items])
    assert [c.name for c in big.items] == [f"link{i}" for i in range(N)]


def test_loop_built_convex_model_matches_the_vectorised_one_through_cvxpy():
    loop, vec = chain(True), chain(False)
    # by name: dispatch sends this small twice-differentiable convex model to ipopt (CvxpyBackend.size_cost)
    rl, rv = loop.solve(solver="cvxpy"), vec.solve(solver="cvxpy")
    assert rl.solver == rv.solver == "cvxpy"
    assert rl.objective == pytest.approx(rv.objective, rel=1e-7)
    np.testing.assert_allclose([rl.duals[f"link{i}"] for i in range(N)], rv.duals["links"], atol=1e-6)
    # one cvxpy row block per form: 4 end conditions + 1 batch of N links
    assert len(loop.plan("cvxpy").problem.payload["cvxpy"].problem.constraints) == 5
    assert rl.certificates["max_violation"] <= 1e-7


def test_loop_built_nonconvex_model_matches_the_vectorised_one_through_ipopt():
    pytest.importorskip("casadi")
    loop, vec = race(True), race(False)
    rl, rv = loop.solve(solver="ipopt"), vec.solve(solver="ipopt")
    assert rl.status.name == rv.status.name == "LOCALLY_OPTIMAL"
    assert rl.objective == pytest.approx(rv.objective, rel=1e-8)
    assert rl.iterations == rv.iterations  # the same NLP, row for row
    for name in ("pos_step", "speed_step"):
        np.testing.assert_allclose([rl.duals[f"{name}{k}"] for k in range(N)], rv.duals[name], atol=1e-7)
    np.testing.assert_allclose([rl.duals[f"track{k}"] for k in range(N + 1)], rv.duals["track"], atol=1e-7)
    assert rl.certificates["kkt_stationarity"] <= 1e-6


def test_differing_scalar_constants_become_a_vector():
    m = od.Model()
    x = m.variable(5, name="x")
    b = [0.5, 1.0, -1.0, 2.0, 0.0]
    for i in range(5):
        m.subject_to(3.0 * x[i] <= b[i], name=f"cap{i}")
    m.maximize(x.sum())
    res = m.solve()
    np.testing.assert_allclose(res.values["x"], np.array(b) / 3, atol=1e-7)
    np.testing.assert_allclose([res.duals[f"cap{i}"] for i in range(5)], np.full(5, 1 / 3), atol=1e-7)
    assert len(m.plan().problem.payload["cvxpy"].problem.constraints) == 1


def test_rows_that_are_not_elementwise_stay_single_and_stay_correct():
    m = od.Model()
    x, y = m.variable(6, name="x"), m.variable(6, name="y")
    for i in range(6):  # a norm of a stack is not elementwise in the varying entries
        m.subject_to(od.norm(od.stack([x[i], y[i]])) <= 1.0 + i, name=f"disc{i}")
    m.maximize(x.sum() + y.sum())
    batches = batch_constraints(m.to_problem().constraints)
    assert all(not b.batched for b in batches)
    res = m.solve()
    r = (1.0 + np.arange(6)) / np.sqrt(2)
    np.testing.assert_allclose(res.values["x"], r, atol=1e-6)


def test_a_row_reading_a_shared_vector_subexpression_batches():
    m = od.Model()
    x = m.variable(4, name="x")
    total = od.sum(x)  # the same subexpression in every row (not varying)
    for i in range(4):
        m.subject_to(x[i] - 0.1 * total >= 0.05 * i, name=f"share{i}")
    m.minimize(od.sum_squares(x))
    batches = batch_constraints(m.to_problem().constraints)
    assert [len(b.items) for b in batches] == [4]
    res = m.solve()
    xv = res.values["x"]
    assert np.all(xv - 0.1 * xv.sum() >= 0.05 * np.arange(4) - 1e-7)


def test_loop_built_rows_evaluate_as_one_vector_in_torch_backends():
    from optdsl.backends.flatten import FlatProblem
    loop, vec = race(True), race(False)
    fl, fv = FlatProblem(loop.to_problem()), FlatProblem(vec.to_problem())
    exprs, gather = fl._row_plan(fl.eq_items)
    assert len(exprs) == 5 and gather is not None  # pos, speed batches + 3 boundary rows
    x = fl.x0()
    # the loop model's rows are the vectorised model's rows, interleaved (pos_step0, speed_step0, ...)
    e_loop, e_vec = fl.eq(x), fv.eq(fv.x0())
    np.testing.assert_allclose(e_loop[:2 * N:2].numpy(), e_vec[:N].numpy(), atol=1e-14)
    np.testing.assert_allclose(e_loop[1:2 * N:2].numpy(), e_vec[N:2 * N].numpy(), atol=1e-14)
    rl, rv = loop.solve(solver="nlp"), vec.solve(solver="nlp")
    assert rl.objective == pytest.approx(rv.objective, rel=1e-6)
    np.testing.assert_allclose([rl.duals[f"track{k}"] for k in range(N + 1)], rv.duals["track"], atol=1e-5)


@pytest.mark.parametrize("solver", [None, "ipopt"])
def test_a_loop_built_sum_deeper_than_pythons_recursion_limit_solves(solver):
    """s = s + (x[i] - t_i)² over 1100 terms is an expression 1100 deep: the DCP rules, the affinity check and
    the CasADi lowering walk it without recursion (it used to end in RecursionError)."""
    n = 1100
    m = od.Model("deep")
    x = m.variable(n, name="x")
    t = np.linspace(0.0, 1.0, n)
    s = 0
    for i in range(n):
        s = s + (x[i] - t[i]) ** 2
    m.minimize(s)
    m.subject_to(x.sum() == n, name="total")          # moves every x[i] up by (n - Σt)/n
    res = m.solve(solver)
    shift = (n - t.sum()) / n
    assert res.status.is_success
    assert np.allclose(x.value, t + shift, atol=1e-5)
    assert res.objective == pytest.approx(n * shift ** 2, rel=1e-5)
    assert res.duals["total"] == pytest.approx(-2 * shift, rel=1e-4)
