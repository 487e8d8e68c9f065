"""The ``ipopt`` backend (IPOPT through the CasADi lowering): the HS set and the smooth gallery with duals by name
and KKT certificates, the hanging chain against IPOPT driven directly through CasADi, duals against cvxpy on a
convex QP, statuses (infeasible, unbounded, limits, interrupt), dispatch, options, and re-solves that reuse
the built solver."""
import importlib.util
import inspect
from pathlib import Path

import casadi as ca
import numpy as np
import pytest
import scipy.sparse as sp

import optdsl as od
from optdsl import PrimalStatus
from optdsl import TerminationStatus as Status
from optdsl.dispatch import make_plan
from optdsl.lower.casadi import CasadiLowering, NotRepresentable, unlowerable

ROOT = Path(__file__).resolve().parent.parent / "problems"


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"ipopt_gallery_{path.parent.name}_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


HS = {p.stem: _load(p) for p in sorted((ROOT / "hs").glob("hs*.py"))}
CHAIN = _load(ROOT / "hanging_chain.py")
SUCCESS = (Status.LOCALLY_OPTIMAL, Status.OPTIMAL)


def _check_kkt(res, model):
    """Every constraint (and every bound) has a multiplier under its name; the model's KKT residual is small."""
    for name in model.constraints:
        assert name in res.duals, name
        assert np.shape(res.duals[name]) == model.constraint(name).shape
    for v in model.variables:
        for which in ("lb", "ub"):
            if getattr(v, which) is not None:
                z = res.duals[f"{v.name}.{which}"]
                assert z.shape == v.shape and np.all(z >= 0)
    for name, c in model.constraints.items():
        if c.sense == "<=":
            assert np.all(np.asarray(res.duals[name]) >= 0), name     # mu >= 0 for g(x) <= 0
    scale = 1 + max(float(np.max(np.abs(a), initial=0)) for a in res.values.values())
    assert res.certificates["kkt_stationarity"] <= 1e-6 * scale
    assert res.certificates["max_violation"] <= 1e-7 * scale


# --- the HS set and the gallery ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(HS))
def test_hs_problem_reaches_the_published_optimum_with_duals_by_name(name):
    mod = HS[name]
    m = mod.build()
    res = m.solve(solver="ipopt")
    assert res.status in SUCCESS, res.message
    assert res.primal_status == PrimalStatus.FEASIBLE_POINT
    exp = mod.EXPECTED
    assert res.objective == pytest.approx(exp["objective"], rel=exp.get("rtol", 0), abs=exp.get("atol", 1e-12))
    _check_kkt(res, m)


def _gallery():
    out = {}
    for p in sorted(ROOT.glob("*.py")):
        mod = _load(p)
        if hasattr(mod, "build") and hasattr(mod, "EXPECTED") and not any(
                q.default is q.empty for q in inspect.signature(mod.build).parameters.values()):
            out[p.stem] = mod
    return out


GALLERY = _gallery()


@pytest.mark.parametrize("name", sorted(GALLERY))
def test_gallery_model_accepted_by_ipopt_reaches_its_answer(name):
    mod = GALLERY[name]
    m = mod.build()
    try:
        make_plan(m.to_problem(), "ipopt")
    except od.NotSolvableError as e:
        assert "ipopt" in str(e)
        pytest.skip(f"ipopt does not accept {name}")
    res = m.solve(solver="ipopt")
    exp = mod.EXPECTED
    if exp.get("status") in ("INFEASIBLE", "UNBOUNDED"):
        assert res.status.name == exp["status"], res.message
        return
    assert res.status in SUCCESS, res.message
    assert res.primal_status == PrimalStatus.FEASIBLE_POINT
    rtol = exp.get("rtol", 0.0)
    assert res.objective == pytest.approx(exp["objective"], rel=max(rtol, 1e-7), abs=exp.get("atol", 1e-8))
    for vname, val in exp.get("values", {}).items():
        np.testing.assert_allclose(res.values[vname], np.reshape(val, np.shape(res.values[vname])),
                                   atol=exp.get("atol_values", 1e-4))
    assert res.certificates["max_violation"] <= 1e-6
    kkt = res.certificates.get("kkt_stationarity")
    if kkt is not None:
        assert kkt <= 1e-5 * (1 + abs(exp["objective"]))


def test_convex_qp_duals_equal_cvxpys_by_name():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((6, 4))
    P = A.T @ A + np.eye(4)
    q = rng.standard_normal(4)
    m = od.Model("qp")
    x = m.variable(4, lb=-0.3, ub=[0.5, 0.5, 0.5, np.inf], name="x")
    m.minimize(0.5 * od.quad_form(x, P) + q @ x)
    m.subject_to(x.sum() == 0.4, name="budget")
    m.subject_to(x[0] - x[1] <= 0.1, name="spread")
    m.subject_to(od.square(x[2]) + od.square(x[3]) <= 0.2, name="disk")
    ours = m.solve(solver="ipopt", tol=1e-10)
    ref = m.solve(solver="cvxpy")
    assert ours.status == Status.OPTIMAL and ref.status == Status.OPTIMAL  # convex: IPOPT's point is global
    assert ours.objective == pytest.approx(ref.objective, rel=1e-7)
    np.testing.assert_allclose(ours.values["x"], ref.values["x"], atol=1e-6)
    for name in ("budget", "spread", "disk", "x.lb"):
        np.testing.assert_allclose(np.reshape(ours.duals[name], -1), np.reshape(ref.duals[name], -1), atol=1e-5)
    # cvxpy reports the finite upper bounds only (a 3-vector); IPOPT's multiplier of the infinite one is 0
    np.testing.assert_allclose(ours.duals["x.ub"][:3], np.reshape(ref.duals["x.ub"], -1), atol=1e-5)
    assert ours.duals["x.ub"][3] == 0
    assert np.max(np.abs(ref.duals["x.lb"])) > 0.01 or np.max(np.abs(ref.duals["spread"])) > 0.01  # something binds


def test_hs071_multiplier_of_the_sphere_constraint():
    res = HS["hs071"].build().solve(solver="ipopt")
    # published multiplier (IPOPT documentation's HS071 example; alsketch and SLSQP agree to 1e-6)
    assert float(res.duals["sphere"]) == pytest.approx(0.16146856, rel=1e-5)
    assert res.duals["x.lb"][0] == pytest.approx(1.08787121, rel=1e-5)


# --- the hanging chain against CasADi + IPOPT directly -----------------------------------------------------

@pytest.mark.parametrize("N", [50, 500])
def test_hanging_chain_matches_ipopt_called_directly(N):
    f_ref, x_ref, y_ref = CHAIN.reference(N, tol=1e-10)
    m = CHAIN.build(N)
    res = m.solve(solver="ipopt", tol=1e-10)
    assert res.status == Status.LOCALLY_OPTIMAL, res.message
    assert res.objective == pytest.approx(f_ref, rel=1e-9)
    np.testing.assert_allclose(res.values["x"], x_ref, atol=1e-6)
    np.testing.assert_allclose(res.values["y"], y_ref, atol=1e-6)
    assert res.duals["links"].shape == (N,) and res.duals["ends_y"].shape == (2,)
    _check_kkt(res, m)
    # the solver-free check: the discrete chain tends to the catenary, O(1/N^2)
    assert abs(res.objective - CHAIN.catenary_energy()) <= 0.5 / N ** 2
    if N == 50:
        assert res.objective == pytest.approx(CHAIN.EXPECTED["objective"], rel=1e-9)


def test_hanging_chain_is_the_default_choice_and_explain_says_why():
    m = CHAIN.build(20)
    text = m.explain()
    assert "chosen: ipopt" in text
    assert "not alsketch: accepts via alsketch but costs" in text
    assert m.solve().solver == "ipopt"


# --- statuses ----------------------------------------------------------------------------------------------

def test_infeasible_model_ends_infeasible_and_names_the_constraint():
    m = od.Model("impossible")
    x = m.variable(2, name="x")
    m.minimize(x.sum())
    m.subject_to(od.square(x[0]) + 1 == 0, name="imposs")
    m.subject_to(x[1] >= 0, name="pos")
    res = m.solve(solver="ipopt")
    assert res.status == Status.INFEASIBLE and res.primal_status == PrimalStatus.NO_SOLUTION
    assert "'imposs'" in res.message


def test_infeasible_lp_from_the_gallery():
    res = _load(ROOT / "infeasible_lp.py").build().solve(solver="ipopt")
    assert res.status == Status.INFEASIBLE


def test_unbounded_models_end_unbounded():
    m = od.Model("unbounded")
    x = m.variable(2, name="x", value=[0.0, 1.0])
    m.minimize(x[0] - x[1] ** 2)            # nonconvex, unbounded below along x1
    m.subject_to(x[0] >= -1, name="lo")
    assert m.solve(solver="ipopt").status == Status.UNBOUNDED
    assert _load(ROOT / "unbounded_lp.py").build().solve(solver="ipopt").status == Status.UNBOUNDED


def test_divergence_at_an_infeasible_point_is_not_called_unbounded():
    m = od.Model("diverges")
    x = m.variable(2, name="x")
    m.minimize(x.sum())
    m.subject_to(od.square(x[0]) + 1 == 0, name="imposs")
    res = m.solve(solver="ipopt")
    assert res.status == Status.NUMERICAL_ERROR and "Diverging_Iterates" in res.message


def _outside_the_domain(case):
    """A model whose start point lies on the edge of a function's domain, and the culprit's expected wording."""
    m = od.Model(case)
    if case == "objective":
        x = m.variable(2, name="x", value=[0.0, 1.0])
        m.minimize(od.log(x[0]) + x[1] ** 2)
        return m, "the objective is -inf"
    if case == "row":
        x = m.variable(2, name="x", value=[0.0, 1.0])
        m.minimize(od.sum_squares(x))
        m.subject_to(od.log(x[0]) + x[1] <= 3, name="logc")
        return m, "constraint 'logc' is -inf"
    if case == "objective derivative":
        y = m.variable(3, name="y", value=[1.0, 1.0, 0.0])
        m.minimize(od.sqrt(y[2]) + od.sum_squares(y))
        return m, "the objective's derivative in y[2] is inf"
    Y = m.variable((2, 2), name="Y", value=np.ones((2, 2)))
    m.minimize(od.sum_squares(Y))
    m.subject_to(od.sqrt(Y[1, 0] - 1) <= 3, name="rt")
    return m, "the derivative of constraint 'rt' in Y[1, 0] is inf"


@pytest.mark.parametrize("case", ["objective", "row", "objective derivative", "constraint derivative"])
def test_nan_or_inf_at_the_start_is_a_numerical_error_naming_the_term(case, capfd):
    m, culprit = _outside_the_domain(case)
    res = m.solve(solver="ipopt")
    assert res.status == Status.NUMERICAL_ERROR and res.primal_status.value == "UNKNOWN"   # (no claim on the point)
    assert res.message.startswith("IPOPT: Invalid_Number_Detected") and f"at the start point {culprit}:" in res.message
    assert "value=" in res.message and "\n" not in res.message
    assert "WARNING" not in capfd.readouterr().err      # CasADi's own evaluation warnings are off


def test_iteration_limit_and_interrupt():
    res = HS["hs071"].build().solve(solver="ipopt", max_iter=2)
    assert res.status == Status.ITERATION_LIMIT and res.iterations == 2
    seen = []
    res = HS["hs071"].build().solve(solver="ipopt", callback=lambda info: seen.append(info["objective"]) or len(seen) < 3)
    assert res.status == Status.INTERRUPTED and len(seen) == 3
    assert set(res.values) == {"x"}


# --- rejection and dispatch ---------------------------------------------------------------------------------

def _fn_model():
    import torch
    m = od.Model("fn")
    x = m.variable(3, name="x", value=[0.5, 0.5, 0.5])
    net_loss = od.fn(lambda t: torch.sum((t - 1.0) ** 2), name="net_loss")
    m.minimize(net_loss(x))
    m.subject_to(x.sum() == 1, name="budget")
    return m


def test_od_fn_model_is_rejected_by_ipopt_with_the_term_named_and_solved_by_alsketch_and_nlp():
    m = _fn_model()
    assert "not ipopt: cannot lower to CasADi: the objective: od.fn(net_loss)" in m.explain()
    with pytest.raises(od.NotSolvableError, match=r"od\.fn\(net_loss\)"):
        m.solve(solver="ipopt")
    for solver in (None, "alsketch", "nlp"):
        res = _fn_model().solve(solver=solver)
        assert res.solver in ("alsketch", "nlp") and res.status in SUCCESS, res.message
        np.testing.assert_allclose(res.values["x"], np.full(3, 1 / 3), atol=1e-6)


def test_dispatch_keeps_dcp_models_on_cvxpy_and_unconstrained_ones_on_lbfgs():
    # small twice-differentiable DCP models go to ipopt (CvxpyBackend.size_cost); larger ones stay with cvxpy
    assert make_plan(HS["hs028"].build().to_problem()).backend.name == "ipopt"
    assert make_plan(_load(ROOT / "constrained_logistic.py").build().to_problem()).backend.name == "cvxpy"
    m = od.Model("rosen")
    x = m.variable(2, name="x")
    m.minimize(100 * od.square(x[1] - od.square(x[0])) + od.square(1 - x[0]))
    assert make_plan(m.to_problem()).backend.name == "lbfgs"
    res = m.solve(solver="ipopt")            # still usable on unconstrained models
    assert res.status == Status.LOCALLY_OPTIMAL and res.objective < 1e-12
    assert make_plan(HS["hs071"].build().to_problem()).backend.name == "ipopt"


def test_unlowerable_names_rank_3_terms():
    m = od.Model("r3")
    X = m.variable((3, 2), name="X")
    assert "CasADi arrays are 2-D at most" in unlowerable(od.stack([X, X]))
    assert unlowerable(X @ X.T) is None


# --- options and re-solves ----------------------------------------------------------------------------------

def test_ipopt_options_pass_through_and_unknown_ones_are_named():
    r1 = HS["hs071"].build().solve(solver="ipopt", ipopt_options="max_iter=3; mu_strategy=adaptive")
    assert r1.status == Status.ITERATION_LIMIT and r1.iterations == 3
    r2 = HS["hs071"].build().solve(solver="ipopt", **{"ipopt.max_iter": 4})
    assert r2.status == Status.ITERATION_LIMIT and r2.iterations == 4
    with pytest.raises(ValueError, match="bogus_option"):
        HS["hs071"].build().solve(solver="ipopt", ipopt_options="bogus_option=1")
    with pytest.raises(ValueError, match="name=value"):
        HS["hs071"].build().solve(solver="ipopt", ipopt_options="tol")


@pytest.mark.parametrize("options,message", [
    ({"tol": -1.0}, "option tol = -1 is not valid: 0 < tol <= +inf (default 1e-08)"),
    ({"max_iter": -3}, "option max_iter = -3 is not valid: 0 <= max_iter <= +inf (default 3000)"),
    ({"ipopt_options": "mu_strategy=weird"}, "option mu_strategy = weird is not valid: one of monotone, adaptive"),
    ({"ipopt.tol": "abc"}, "option tol = 'abc' has the wrong type for IPOPT"),
])
def test_a_refused_option_value_is_a_one_line_error_and_nothing_reaches_stdout(options, message, capfd):
    with pytest.raises(ValueError) as err:
        HS["hs071"].build().solve(solver="ipopt", **options)
    assert str(err.value) == f"solver 'ipopt': {message}"
    assert capfd.readouterr().out == ""      # IPOPT's explanation was printed on fd 1: captured, not leaked
    # the same model solves with valid options afterwards (stdout restored, nothing half-built cached)
    assert HS["hs071"].build().solve(solver="ipopt", tol=1e-9).status == Status.LOCALLY_OPTIMAL


def _param_chain(N=30):
    """The hanging chain with the right end's height a parameter."""
    return CHAIN.build_parametric(N)


def test_parameter_resolve_reuses_the_built_solver_and_warm_starts():
    m, b = _param_chain()
    first = m.solve(solver="ipopt")
    assert first.status == Status.LOCALLY_OPTIMAL and first.extras["builds"] == 1
    compiled = m._cache[("compiled", "ipopt", "cpu", "torch.float64")]
    warm = []
    for value in (0.1, 0.2, 0.3):
        b.value = value
        r = m.solve(solver="ipopt")
        assert r.status == Status.LOCALLY_OPTIMAL
        assert r.values["y"][-1] == pytest.approx(value, abs=1e-9)
        warm.append(r)
    assert m._cache[("compiled", "ipopt", "cpu", "torch.float64")] is compiled
    # one cold solver and one warm-start solver, whatever the number of re-solves
    assert compiled.builds == 2 and warm[-1].extras["builds"] == 2
    # the same answer as a fresh model solved cold at b = 0.3, in fewer iterations
    cold_m, cold_b = _param_chain()
    cold_b.value = 0.3
    cold = cold_m.solve(solver="ipopt")
    assert warm[-1].objective == pytest.approx(cold.objective, rel=1e-9)
    assert warm[-1].iterations < cold.iterations


# --- the lowering itself --------------------------------------------------------------------------------------

def test_lowering_agrees_with_torch_on_every_atom_and_shape():
    rng = np.random.default_rng(0)
    m = od.Model("atoms")
    x = m.variable(4, name="x")
    Y = m.variable((3, 4), name="Y")
    s = m.variable(name="s")
    P = m.parameter(value=rng.standard_normal((3, 4)), name="P")
    q = m.parameter(value=1.3, name="q")
    A = rng.standard_normal((3, 4))
    S = sp.random(5, 4, density=0.4, random_state=1, format="csr")
    vals = {x: rng.standard_normal(4) + 2, Y: rng.standard_normal((3, 4)), s: np.array(0.7)}
    exprs = [x + 1, Y * x, Y + P, (Y * x).sum(axis=0), Y.sum(axis=1), Y.mean(axis=0), Y.mean(),
             od.logsumexp(Y, axis=1), od.logsumexp(Y, axis=0), od.logsumexp(x), Y.T, Y.reshape(4, 3), Y.reshape(12),
             x.reshape(2, 2), Y[1], Y[:, 2], Y[1:, ::2], Y[[0, 2], [1, 3]], x[[3, 0]], Y[2, 3],
             od.stack([x, x * 2]), od.stack([x, x * 2], axis=1), od.stack([s, s * s, q]), od.concatenate([Y, P]),
             od.concatenate([Y, P], axis=1), od.concatenate([x, x]), od.exp(x), od.log(x), od.sqrt(x), od.square(Y),
             od.sin(x), od.cos(x), od.sigmoid(Y), od.abs(Y), od.relu(Y), od.maximum(Y, x), od.minimum(x, 1),
             od.max(Y), od.min(Y, axis=1), od.max(Y, axis=0), od.norm(x), od.norm(Y), od.norm1(Y), od.norm_inf(x),
             od.sum_squares(Y), od.quad_form(x, A.T @ A), A @ x, x @ A.T, x @ x, Y @ Y.T, od.matmul(S, x), A @ Y.T, x ** 3,
             x ** 0.5, x ** 2.5, x / s, s / x, q * x, -Y, x[np.array([3, 2, 1, 0])]]
    low = CasadiLowering([x, Y, s], [0, 4, 16], 17, [P, q])
    z = np.concatenate([vals[v].ravel() for v in (x, Y, s)])
    memo = {}
    for e in exprs:
        out = np.asarray(ca.Function("f", [low.x, low.p], [low.lower(e, memo)])(z, low.parameter_values()))
        ref = np.asarray(e.evaluate(vals))
        got = out.reshape(ref.shape) if ref.ndim < 2 else out
        assert got.shape == ref.shape, str(e)
        np.testing.assert_allclose(got, ref, atol=1e-12, err_msg=str(e))
    with pytest.raises(NotRepresentable, match=r"od\.fn\(net\)"):
        low.lower(od.fn(lambda t: t.sum(), name="net")(x))


@pytest.mark.slow
def test_hanging_chain_at_ten_thousand_links_solves():
    # MUMPS's automatic ordering stalls on this KKT matrix; the backend switches to METIS from 4500 variables
    m = CHAIN.build(10000)
    res = m.solve()
    assert res.solver == "ipopt" and res.status == Status.LOCALLY_OPTIMAL, res.message
    assert res.iterations <= 30
    assert abs(res.objective - CHAIN.catenary_energy()) <= 0.5 / 10000 ** 2
    _check_kkt(res, m)


def test_a_large_chain_takes_the_metis_ordering():
    # N = 2500 (5002 variables): 15 iterations either way, but MUMPS's automatic ordering spends ~15 s on
    # delayed pivots where METIS takes 0.2 s; the iteration count is what the test can check
    m = CHAIN.build(2500)
    res = m.solve(solver="ipopt")
    assert res.status == Status.LOCALLY_OPTIMAL and res.iterations <= 20, res.message
    assert abs(res.objective - CHAIN.catenary_energy()) <= 0.5 / 2500 ** 2
    assert m.solve(solver="ipopt", ipopt_options={"mumps_pivot_order": 4}).status == Status.LOCALLY_OPTIMAL
