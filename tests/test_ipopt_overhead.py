"""What `m.solve()` no longer recomputes on the ipopt path, checked against the computation it replaced:
certificates evaluated on the CasADi graph vs the torch lowering (`optdsl.certificates`), the DCP verdict of the
equality shortcut vs the full cvxpy analysis, and the lazily worded rejection reasons."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import optdsl as od
from optdsl import certificates
from optdsl.graph import _dcp, analyze

ROOT = Path(__file__).resolve().parent.parent / "problems"


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"overhead_{path.parent.name}_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


HS = {p.stem: _load(p) for p in sorted((ROOT / "hs").glob("hs*.py"))}
CHAIN = _load(ROOT / "hanging_chain.py")


@pytest.mark.parametrize("build", [HS["hs071"].build, HS["hs077"].build, HS["hs035"].build, lambda: CHAIN.build(20)],
                         ids=["hs071", "hs077", "hs035", "chain20"])
def test_certificates_from_the_casadi_graph_match_the_torch_lowering(build):
    m = build()
    res = m.solve(solver="ipopt")
    assert res.chain == ["ipopt"] and res.status.is_success, res.message
    problem = m.to_problem()
    values = {v: res.values[v.name] for v in m.variables}
    viol = certificates.violations(problem, values)
    assert res.certificates["max_violation"] == pytest.approx(max(viol.values()), abs=1e-12)
    st = certificates.stationarity(problem, values, res.duals)
    assert st is not None and st < 1e-6
    assert res.certificates["kkt_stationarity"] == pytest.approx(st, rel=1e-6, abs=1e-12)
    assert "at_point" not in res.extras   # consumed by the result, not shown to the user


def test_certificates_are_recomputed_on_the_users_model_when_a_pass_rewrote_it():
    """maximize -> minimize: the backend's graph is not the user's problem; the torch path is used."""
    m = od.Model()
    x = m.variable(2, name="x", value=[0.5, 0.5])
    m.maximize(x[0] * x[1])
    m.subject_to(od.sum_squares(x) == 2, name="circle")
    res = m.solve(solver="ipopt")
    assert res.chain == ["maximize_to_minimize", "ipopt"] and res.status.is_success
    assert res.objective == pytest.approx(1.0, rel=1e-8)
    st = certificates.stationarity(m.to_problem(), {v: res.values[v.name] for v in m.variables}, res.duals)
    assert res.certificates["kkt_stationarity"] == pytest.approx(st, abs=1e-12) and st < 1e-7


GALLERY = ["chebyshev_center", "constrained_logistic", "feasibility", "hanging_chain", "infeasible_lp", "lasso",
           "least_squares_param", "lp_production", "markowitz_maximize", "maxcut_sdp", "maxent_entropy",
           "poisson_control", "qp_portfolio", "rosenbrock_disk", "socp_robust_ls", "soft_constraints",
           "sparse_inverse_covariance", "unbounded_lp"]


@pytest.mark.parametrize("name", sorted(HS) + GALLERY)
def test_dcp_shortcut_gives_the_full_verdict(name):
    """The verdict found without cvxpy (non-affine equality, product of two variable-dependent factors, ...)
    is the one the cvxpy analysis gives, on convex and nonconvex gallery models alike."""
    mod = HS[name] if name in HS else _load(ROOT / f"{name}.py")
    problem = mod.build().to_problem()
    assert (_dcp(problem, culprit=False) is None) == (_dcp(problem) is None)


def test_dcp_shortcut_cases_agree_with_cvxpy():
    m = od.Model()
    x = m.variable(3, name="x", value=1.0)
    cases = {"product": od.sum(x) * x[0], "quotient": 1 / (x[0] + 2), "sin": od.sin(x[1]),
             "convex": od.sum_squares(x) + 2 * x[0], "param": m.parameter(value=2.0, name="a") * x[0]}
    for name, e in cases.items():
        m.minimize(e)
        problem = m.to_problem()
        assert (_dcp(problem, culprit=False) is None) == (_dcp(problem) is None) == (name in ("convex", "param")), name


def test_convexity_reason_is_worded_on_request_and_names_the_term():
    m = HS["hs071"].build()
    assert "convex" not in analyze(m.to_problem()).properties
    note = analyze(m.to_problem()).notes["convex"]
    assert "sphere" in note or "objective" in note
    text = m.explain()
    assert "chosen: ipopt" in text and "needs a convex (DCP) model" in text and "sub-expression" in text


@pytest.mark.parametrize("name,solver", [("hs071", None), ("hs051", None), ("hs035", "alsketch"), ("hs006", "nlp"),
                                         ("hs048", "cvxpy")])
def test_a_solved_model_is_freed_when_dropped_without_the_cycle_collector(name, solver):
    """No reference cycle through a model (variables hold their model weakly; cached walks omit the node itself;
    dispatch's recursive walk and the tags' lazy DCP note leave none): dropping a solved model frees it at once,
    where each one used to wait for a cyclic garbage-collector pass (0.5 ms a solve of a small model)."""
    import gc
    import weakref
    m = HS[name].build()
    m.solve(solver)
    m.solve(solver)              # a re-solve too (cached plan and compiled form)
    m.explain()
    ref = weakref.ref(m)
    gc.disable()
    try:
        del m
        assert ref() is None
    finally:
        gc.enable()


def test_a_variable_outliving_its_model_is_refused_by_another_model():
    x = od.Model("gone").variable(2, name="x")   # the model is dropped at once: x.model is None now
    m = od.Model("other")
    with pytest.raises(od.ModelError, match="belongs to no model"):
        m.minimize(od.sum_squares(x))


def test_buffered_ipopt_call_matches_the_ordinary_call_and_keeps_ctrl_c_an_interrupt():
    """`_call_buffered` (CasADi's buffer API) gives the ordinary call's outputs and statistics; an exception set
    during the solve (Ctrl-C: CasADi's buffer call reports it as SystemError) reaches the caller as itself."""
    import casadi as ca

    from optdsl.backends.ipopt_backend import _call_buffered
    x = ca.SX.sym("x", 2)
    solver = ca.nlpsol("t", "ipopt", {"x": x, "f": (x[0] - 1) ** 2 + (x[1] - 2) ** 2, "g": x[0] + x[1]},
                       {"print_time": False, "ipopt.print_level": 0, "ipopt.sb": "yes"})
    args = {"x0": np.zeros(2), "lbx": np.full(2, -np.inf), "ubx": np.full(2, np.inf), "lbg": np.array([-np.inf]),
            "ubg": np.array([2.0])}
    out, stats = _call_buffered(solver, args)
    ref = solver(**{k: v.tolist() for k, v in args.items()})
    for name in ("x", "f", "g", "lam_g", "lam_x"):
        assert out[name] == pytest.approx(np.array(ref[name].full()).ravel(), abs=1e-12)
    assert out["x"] == pytest.approx([0.5, 1.5], abs=1e-7) and stats["return_status"] == "Solve_Succeeded"

    class Interrupted:   # a solver whose buffered call reports a Ctrl-C the way CasADi's does
        def __getattr__(self, name):
            return getattr(solver, name)

        def buffer(self):
            def trigger():
                try:
                    raise KeyboardInterrupt
                except KeyboardInterrupt as e:
                    raise SystemError("<built-in function _function_buffer_eval> returned a result with an "
                                      "exception set") from e
            return solver.buffer()[0], trigger
    with pytest.raises(KeyboardInterrupt):
        _call_buffered(Interrupted(), args)
