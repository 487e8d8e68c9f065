"""Re-solves through the ``ipopt`` backend: the secant start along a parameter sweep (taken only when it is the
better start, answers unchanged), its refusals, the KKT residual that judges it, and the buffered ``nlp_grad``."""
import casadi as ca
import numpy as np
import pytest

import optdsl as od
from optdsl import TerminationStatus as Status
from optdsl.backends.ipopt_backend import IpoptForm
from optdsl.backends.secant_start import SecantStart
from test_ipopt_backend import _param_chain

SUCCESS = (Status.LOCALLY_OPTIMAL, Status.OPTIMAL)


def _sweep(extrapolate, values, N=40):
    m, b = _param_chain(N)
    m.solve(solver="ipopt", extrapolate=extrapolate)
    out = []
    for v in values:
        b.value = v
        r = m.solve(solver="ipopt", extrapolate=extrapolate)
        assert r.status in SUCCESS, r.message
        out.append(r)
    return out


def test_a_sweep_starts_from_the_extrapolation_and_takes_fewer_iterations_to_the_same_answer():
    values = [0.05, 0.10, 0.15, 0.20, 0.25]
    plain, ex = _sweep(False, values), _sweep(True, values)
    assert [r.extras["start"] for r in plain] == ["warm"] * 5
    # nothing to extrapolate from before two re-solves (the first solve is at b = 0, the next at 0.05)
    assert [r.extras["start"] for r in ex] == ["warm", "extrapolated", "extrapolated", "extrapolated", "extrapolated"]
    assert sum(r.iterations for r in ex[1:]) < sum(r.iterations for r in plain[1:])
    for a, b in zip(plain, ex):
        assert b.objective == pytest.approx(a.objective, rel=1e-8)
        np.testing.assert_allclose(b.values["y"], a.values["y"], atol=1e-6)
        assert b.certificates["kkt_stationarity"] < 1e-7 and b.certificates["max_violation"] < 1e-8
    # and a cold solve of a fresh model agrees at the sweep's end
    cold_m, cold_b = _param_chain(40)
    cold_b.value = values[-1]
    assert cold_m.solve(solver="ipopt").objective == pytest.approx(ex[-1].objective, rel=1e-8)


def test_back_and_forth_starts_from_the_earlier_solution():
    plain, back = (_sweep(ex, [0.10, 0.05, 0.10, 0.05]) for ex in (False, True))   # (from b = 0)
    # 0 -> 0.10 -> 0.05 interpolates halfway; then each value returns to the one before the last
    assert [r.extras["start"] for r in back] == ["warm", "extrapolated", "extrapolated", "extrapolated"]
    assert [r.iterations for r in back[2:]] == [0, 0]     # that solution is already optimal
    assert min(r.iterations for r in plain[2:]) > 0
    for a, b in zip(plain, back):
        assert b.objective == pytest.approx(a.objective, rel=1e-8)


def test_no_extrapolation_after_values_are_set_or_after_a_failure():
    m, b = _param_chain(40)
    for v in (0.0, 0.05, 0.10):
        b.value = v
        m.solve(solver="ipopt")
    y = next(v for v in m.variables if v.name == "y")
    y.value = y.value * 1.001   # the user's start is kept
    b.value = 0.15
    assert m.solve(solver="ipopt").extras["start"] == "warm"
    b.value = 0.20   # the last two solutions (0.10 from before, 0.15) continue: extrapolated again
    assert m.solve(solver="ipopt").extras["start"] == "extrapolated"
    b.value = 0.25
    stopped = m.solve(solver="ipopt", max_iter=1)   # off the solution path: forgotten
    assert stopped.status == Status.ITERATION_LIMIT
    b.value = 0.30
    assert m.solve(solver="ipopt").extras["start"] == "warm"


def test_a_bent_path_keeps_the_plain_warm_start():
    # x*(p) = p - p²: from p = 0 and 0.5 the secant predicts 0.75 at p = 1.5, where x* = -0.75 and the last
    # solution (0.25) has the smaller residual, 2 against 3
    m = od.Model("bent")
    x = m.variable(name="x", value=0.0)
    p = m.parameter(value=0.0, name="p")
    m.minimize(od.square(x - (p - p * p)))
    for v in (0.0, 0.5):
        p.value = v
        m.solve(solver="ipopt")
    p.value = 1.5
    r = m.solve(solver="ipopt")
    assert r.extras["start"] == "warm" and r.status in SUCCESS
    assert float(r.values["x"]) == pytest.approx(-0.75, abs=1e-8)


@pytest.mark.parametrize("p_new, expected", [
    (np.array([3.0, 3.0]), 1.0),            # one step ahead on the line
    (np.array([2.5, 2.5]), 0.5),
    (np.array([4.0, 4.0]), 2.0),            # MAX_THETA steps
    (np.array([4.5, 4.5]), None),           # beyond
    (np.array([1.5, 1.5]), -0.5),           # between the two: interpolated
    (np.array([1.0, 1.0]), -1.0),           # back to the first: its solution
    (np.array([-1.0, -1.0]), -3.0),         # MAX_THETA steps beyond the first
    (np.array([-1.5, -1.5]), None),
    (np.array([2.0, 2.0]), None),           # the last parameter itself (the plain warm start is its solution)
    (np.array([3.0, 3.1]), None),           # off the line
])
def test_secant_start_proposes_only_on_the_line_near_the_two_solutions(p_new, expected):
    s = SecantStart()
    x0, x1 = np.array([0.0, 1.0]), np.array([1.0, 3.0])
    s.record(np.array([1.0, 1.0]), x0, np.array([-1.0, 0.0]), np.array([2.0]))
    assert s.propose(p_new, x1) is None      # one solution: nothing to extrapolate
    s.record(np.array([2.0, 2.0]), x1, np.array([-2.0, 0.0]), np.array([4.0]))
    guess = s.propose(p_new, x1)
    if expected is None:
        assert guess is None
    else:
        np.testing.assert_allclose(guess[0], x1 + expected * (x1 - x0))
        np.testing.assert_allclose(guess[1], [-2.0 - expected, 0.0])
        np.testing.assert_allclose(guess[2], [4.0 + 2.0 * expected])
    assert s.propose(np.array([3.0, 3.0]), x1 + 1e-12) is None     # the start is not the last solution
    s.forget()
    assert s.propose(np.array([3.0, 3.0]), x1) is None


def _bounded_model():
    """min (x0 - 2)² + (x1 + 1)² + x2² s.t. x0 + x2 >= 1, x0 <= 1.5, x1 >= 0: at the optimum (1.5, 0, 0) x0's
    upper bound (multiplier 1) and x1's lower bound (multiplier 2) are active, the row is not."""
    m = od.Model("bounded")
    x = m.variable(3, name="x", lb=np.array([-5.0, 0.0, -5.0]), ub=np.array([1.5, 5.0, 5.0]))
    m.minimize(od.square(x[0] - 2) + od.square(x[1] + 1) + od.square(x[2]))
    m.subject_to(x[0] + x[2] >= 1, name="row")
    return m


def test_kkt_residual_is_zero_at_a_solution_and_measures_each_part_away_from_it():
    m = _bounded_model()
    r = m.solve(solver="ipopt")
    assert r.status in SUCCESS
    np.testing.assert_allclose(r.values["x"], [1.5, 0.0, 0.0], atol=1e-7)
    form = m._cache[("compiled", "ipopt", "cpu", "torch.float64")]
    solver = next(iter(form.solvers.values()))
    lbx, ubx = form.flat.bounds()
    args = {"p": form.parameter_values(), "lbx": lbx, "ubx": ubx, "lam_x0": form.last["lam_x"]}
    x, lx, lg = form.flat.x0_numpy(), form.last["lam_x"], form.last["lam_g"]
    assert lx[0] > 0 and lx[1] < 0          # CasADi's signs: upper bound of x0, lower bound of x1
    assert form.kkt_residual(solver, x, lx, lg, args) < 1e-7
    # stationarity: ∂/∂x2 of the objective is 2 x2
    assert form.kkt_residual(solver, x + np.array([0, 0, 0.25]), lx, lg, args) == pytest.approx(0.5, abs=1e-6)
    # violation of the row x0 + x2 >= 1 (as 1 - x0 - x2 <= 0), and stationarity of x0 moved with it
    assert form.kkt_residual(solver, np.array([0.5, 0.0, 0.0]), lx, lg, args) == pytest.approx(3.0 - lx[0], abs=1e-6)
    # complementarity on a bound: x1's multiplier with x1 off its bound by 0.1 (stationarity moves by 0.2 too)
    res = form.kkt_residual(solver, np.array([1.5, 0.1, 0.0]), lx, lg, args)
    assert res == pytest.approx(max(0.2, abs(lx[1]) * 0.1), abs=1e-6)
    # complementarity on the row: a multiplier on an inactive row (1 - 1.5 = -0.5 <= 0)
    assert form.kkt_residual(solver, x, lx, lg + np.array([0.3]), args) == pytest.approx(0.3, abs=1e-6)


def test_admissible_clips_into_the_bounds_and_drops_multipliers_of_the_wrong_sign():
    m = _bounded_model()
    m.solve(solver="ipopt")
    form = m._cache[("compiled", "ipopt", "cpu", "torch.float64")]
    lbx, ubx = form.flat.bounds()
    args = {"lbx": lbx, "ubx": ubx, "lam_x0": np.array([2.0, -1.0, 0.0])}
    x, lx, lg = form.admissible((np.array([2.0, -1.0, 0.5]), np.array([1.0, 0.5, 0.3]), np.array([-0.2])), args)
    np.testing.assert_allclose(x, [1.5, 0.0, 0.5])
    np.testing.assert_allclose(lx, [1.0, 0.0, 0.0])     # x1's flipped sign and x2's (inactive) dropped
    np.testing.assert_allclose(lg, [0.0])               # an inequality multiplier is >= 0


class _SparseSolver:
    """Stands in for a built solver whose ``nlp_grad`` returns structurally sparse outputs."""

    def __init__(self):
        x, p, lf, lg = ca.SX.sym("x", 3), ca.SX.sym("p", 0), ca.SX.sym("lam_f"), ca.SX.sym("lam_g", 1)
        f = lf * x[0] ** 2
        g = x[2] * 3.0
        grad = ca.SX(3, 1)
        grad[0] = 2 * lf * x[0]
        grad[2] = 3.0 * lg
        self.fn = ca.Function("nlp_grad", [x, p, lf, lg], [f, g, grad, ca.SX(0, 1)],
                              ["x", "p", "lam_f", "lam_g"], ["f", "g", "grad_gamma_x", "grad_gamma_p"])

    def get_function(self, name):
        return self.fn


def test_buffered_nlp_grad_scatters_sparse_outputs_and_returns_fresh_arrays():
    form = IpoptForm.__new__(IpoptForm)
    form._grad_fns = {}
    solver = _SparseSolver()
    assert not solver.fn.sparsity_out(2).is_dense()
    f, g, grad = form._nlp_grad(solver)(np.array([1.0, 7.0, 2.0]), np.zeros(0), np.array([0.5]))
    assert f.tolist() == [1.0] and g.tolist() == [6.0]
    np.testing.assert_allclose(grad, [2.0, 0.0, 1.5])   # the structurally absent entry is 0
    f2, _, grad2 = form._nlp_grad(solver)(np.array([3.0, 0.0, 0.0]), np.zeros(0), np.array([1.0]))
    np.testing.assert_allclose(grad2, [6.0, 0.0, 3.0])
    np.testing.assert_allclose(grad, [2.0, 0.0, 1.5])   # the first call's arrays are not overwritten
    assert f2.tolist() == [9.0]


def test_a_sweep_across_active_set_changes_gives_the_warm_start_answers():
    # the row `cap` becomes active near p = 0.5 and the upper bound of x1 at p = 0.5 too: the extrapolated
    # multipliers then have the wrong support, and the residual check and IPOPT must still land on the same points
    def sweep(extrapolate):
        m = od.Model("active_sets")
        x = m.variable(2, name="x", lb=0.0, ub=1.0)
        p = m.parameter(value=0.0, name="p")
        m.minimize(od.square(x[0] - p) + od.square(x[1] - 2 * p) + 0.1 * od.square(x[0] * x[1]))
        m.subject_to(x[0] + x[1] <= 1.5, name="cap")
        out = []
        for v in np.arange(0.0, 1.25, 0.1):
            p.value = v
            r = m.solve(solver="ipopt", extrapolate=extrapolate)
            assert r.status in SUCCESS, r.message
            assert r.certificates["kkt_stationarity"] < 1e-6 and r.certificates["max_violation"] < 1e-8
            out.append(r)
        return out

    ex, warm = sweep(True), sweep(False)
    assert sum(r.extras["start"] == "extrapolated" for r in ex) >= 8
    for a, b in zip(ex, warm):
        np.testing.assert_allclose(a.values["x"], b.values["x"], atol=1e-6)
        assert a.objective == pytest.approx(b.objective, abs=1e-8)
        np.testing.assert_allclose(a.duals["cap"], b.duals["cap"], atol=1e-5)
    np.testing.assert_allclose(ex[-1].values["x"], [0.5, 1.0], atol=1e-7)   # both at their caps


def test_warm_re_solves_skip_only_the_forced_refinement_step_and_user_options_override_it():
    values = [0.05, 0.10, 0.15, 0.20]
    ours = _sweep(True, values)
    m, b = _param_chain(40)
    forced = {"ipopt.min_refinement_steps": 1}
    m.solve(solver="ipopt", **forced)
    theirs = []
    for v in values:
        b.value = v
        theirs.append(m.solve(solver="ipopt", **forced))
    keys = [dict(k[0]) for k in m._cache[("compiled", "ipopt", "cpu", "torch.float64")].solvers]
    assert [k["min_refinement_steps"] for k in keys] == ["1", "1"]   # the cold solver and the warm one: the user's
    # refinement is decided by each solve's residual: the same iterates with or without the forced step
    assert [r.iterations for r in ours] == [r.iterations for r in theirs]
    for a, c in zip(ours, theirs):
        assert a.objective == pytest.approx(c.objective, rel=1e-12)
        np.testing.assert_allclose(a.values["y"], c.values["y"], atol=1e-9)
