"""Size-aware dispatch: a large smooth equality-constrained QP goes to ipopt instead of the DCP route (measured
faster and more accurate there, see CvxpyBackend.size_cost), explain() says why; a small one stays with cvxpy.
And the ipopt graph kind follows how the model is written (vector ops: MX; scalar ops: SX), same answers."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import optdsl as od

ROOT = Path(__file__).resolve().parent.parent / "problems"


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"size_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


PC = _load(ROOT / "poisson_control.py")
CHAIN = _load(ROOT / "hanging_chain.py")
HS071 = _load(ROOT / "hs" / "hs071.py")


def test_small_poisson_control_stays_on_the_dcp_route():
    m = PC.build(12)
    assert m.plan().chain == ["convex_to_cvxpy", "cvxpy"]
    assert "+1.00" not in m.explain()


def test_large_poisson_control_goes_to_ipopt_and_matches_the_kkt_solve():
    N = 64                                    # n = 2 N^2 = 8192 variables
    m = PC.build(N)
    assert m.plan().chain == ["ipopt"]
    text = m.explain()
    assert "not cvxpy: accepts via convex_to_cvxpy -> cvxpy but costs 2.50 (+1.00: a smooth equality-constrained " \
           "model with 8192 variables" in text
    res = m.solve()
    assert res.status.name == "OPTIMAL" and res.primal_status.name == "FEASIBLE_POINT"   # convex: a global optimum
    f, Y, U, lam = PC.reference(N)
    assert res.objective == pytest.approx(f, rel=1e-9)
    np.testing.assert_allclose(res.values["y"], Y, atol=1e-8)
    np.testing.assert_allclose(res.values["u"], U, atol=1e-6)
    np.testing.assert_allclose(res.duals["state"], lam, atol=1e-8 * (1 + np.abs(lam).max()))   # by name, same sign
    assert res.certificates["max_violation"] < 1e-9 and res.certificates["kkt_stationarity"] < 1e-9


def test_graph_kind_follows_how_the_model_is_written_with_the_same_answer():
    from optdsl.backends.ipopt_backend import IpoptForm
    chain = CHAIN.build(50)
    assert IpoptForm(chain.to_problem()).auto_kind() == "MX"         # a few vector ops of 50 entries
    assert IpoptForm(HS071.build().to_problem()).auto_kind() == "SX"  # scalar ops
    m = od.Model()
    x = m.variable(30, name="x")
    m.minimize(od.quad_form(x, np.eye(30) + np.ones((30, 30))) + od.sum(x))   # a dense 30x30 factor: MX
    m.subject_to(x[0] + x[1] == 1, name="c")
    assert IpoptForm(m.to_problem()).auto_kind() == "MX"
    sx, mx = m.solve(solver="ipopt", graph="SX").objective, m.solve(solver="ipopt", graph="MX").objective
    assert sx == pytest.approx(mx, rel=1e-10)
    auto = chain.solve()
    sx = CHAIN.build(50).solve(solver="ipopt", graph="SX")
    assert auto.status.is_success and sx.status.is_success
    assert auto.objective == pytest.approx(CHAIN.EXPECTED["objective"], rel=1e-8)
    assert auto.objective == pytest.approx(sx.objective, rel=1e-10) and auto.iterations == sx.iterations


# --- small twice-differentiable convex models: ipopt (CvxpyBackend.size_cost, measured in bench_nlp --only-convex)

HS049 = _load(ROOT / "hs" / "hs049.py")
PORTFOLIO = _load(ROOT / "qp_portfolio.py")
LOGISTIC = _load(ROOT / "constrained_logistic.py")


def test_small_smooth_convex_models_go_to_ipopt_optimal_and_agree_with_cvxpy():
    m = HS049.build()                         # convex, sixth powers: IPOPT is also the more accurate here
    assert m.plan().chain == ["ipopt"]
    assert "not cvxpy: accepts via convex_to_cvxpy -> cvxpy but costs 1.90 (+0.40: a small convex model, twice " \
           "differentiable everywhere (5 variables" in m.explain()
    res, ref = m.solve(), HS049.build().solve(solver="cvxpy")
    assert res.status.name == "OPTIMAL"       # a KKT point of a DCP-convex model is a global optimum
    assert res.certificates["kkt_stationarity"] < 1e-6 < ref.certificates["kkt_stationarity"]
    assert res.objective == pytest.approx(ref.objective, abs=1e-8)
    p = PORTFOLIO.build()
    res = p.solve()
    assert res.solver == "ipopt" and res.status.name == "OPTIMAL"
    assert res.objective == pytest.approx(PORTFOLIO.EXPECTED["objective"], rel=1e-9)           # closed form
    np.testing.assert_allclose(res.values["x"], PORTFOLIO.EXPECTED["values"]["x"], atol=1e-8)
    np.testing.assert_allclose(res.duals["budget"], PORTFOLIO.build().solve(solver="cvxpy").duals["budget"],
                               atol=1e-7)    # same sign convention


def _dense_qp(n):
    rng = np.random.default_rng(1)
    G = rng.standard_normal((n, n))
    m = od.Model()
    x = m.variable(n, name="x")
    m.minimize(od.quad_form(x, G @ G.T / n + 0.1 * np.eye(n)) + rng.standard_normal(n) @ x)
    m.subject_to(x.sum() == 1, name="budget")
    return m


def _small(objective, constraint):
    m = od.Model()
    x = m.variable(3, lb=0.1, name="x")
    m.minimize(objective(x))
    m.subject_to(constraint(x), name="c")
    return m


@pytest.mark.parametrize("case", ["lasso", "lp", "log", "cube", "dense_qp", "logistic_data"])
def test_nonsmooth_lp_domain_and_larger_convex_models_stay_with_cvxpy(case):
    build = {
        "lasso": lambda: _small(lambda x: od.sum_squares(x - 1) + od.norm(x, 1), lambda x: x.sum() <= 2),
        "lp": lambda: _small(lambda x: 2.0 * x.sum(), lambda x: 3.0 * x[0] + x[1] >= 1),  # products with constants
        "log": lambda: _small(lambda x: -od.log(x).sum(), lambda x: x.sum() <= 2),      # domain kept by cvxpy
        "cube": lambda: _small(lambda x: (x ** 3).sum(), lambda x: x.sum() >= 1),       # convex on x >= 0 only
        "dense_qp": lambda: _dense_qp(20),                                              # 400 dense entries
        "logistic_data": LOGISTIC.build,                                                # a 200x6 data matrix
    }[case]
    assert build().plan().backend.name == "cvxpy"
