"""IPOPT's iteration log as the Result's history (objective, inf_pr, inf_du per iteration, under the keys the
plot reads), checked against IPOPT's own statistics and the returned point; maximize models in the user's sign."""
import casadi as ca
import numpy as np
import pytest

import optdsl as od
from optdsl.plotting import STATIONARITY_KEYS, VIOLATION_KEYS, _series


def _hs71():
    m = od.Model("hs71")
    x = m.variable(4, lb=1, ub=5, name="x", value=[1, 5, 5, 1])
    m.minimize(x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2])
    m.subject_to(od.sum_squares(x) == 40, name="sphere")
    m.subject_to(x[0] * x[1] * x[2] * x[3] >= 25, name="product")
    return m


def test_history_is_ipopts_iteration_log():
    res = _hs71().solve(solver="ipopt")
    assert res.status.is_success
    h = res.history
    assert len(h) == res.iterations + 1 and [r["iteration"] for r in h] == list(range(len(h)))  # 0: the start
    # the same run written directly in CasADi logs the same numbers
    x = ca.SX.sym("x", 4)
    s = ca.nlpsol("s", "ipopt", {"x": x, "f": x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2],
                                 "g": ca.vertcat(ca.sumsqr(x) - 40, 25 - x[0] * x[1] * x[2] * x[3])},
                  {"print_time": False, "ipopt.print_level": 0, "ipopt.sb": "yes", "ipopt.tol": 1e-8})
    s(x0=[1, 5, 5, 1], lbx=1, ubx=5, lbg=[0, -np.inf], ubg=[0, 0])
    log = s.stats()["iterations"]
    np.testing.assert_allclose([r["objective"] for r in h], log["obj"], rtol=1e-12)
    np.testing.assert_allclose([r["inf_pr"] for r in h], log["inf_pr"], rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose([r["inf_du"] for r in h], log["inf_du"], rtol=1e-9, atol=1e-14)
    assert h[0]["objective"] == pytest.approx(16.109692919198878)     # f at the start point (1, 5, 5, 1)
    # the returned point is IPOPT's last iterate clipped into the bounds (IPOPT relaxes them by 1e-8 while iterating)
    assert h[-1]["objective"] == pytest.approx(res.objective, rel=1e-6)
    assert h[0]["inf_pr"] > 1 and h[-1]["inf_pr"] < 1e-8                # sphere row: |1+25+25+1-40| = 12 at start


def test_plot_reads_the_ipopt_history(tmp_path):
    res = _hs71().solve(solver="ipopt")
    key_v, its_v, viol = _series(res.history, VIOLATION_KEYS)
    key_s, its_s, stat = _series(res.history, STATIONARITY_KEYS)
    assert (key_v, key_s) == ("inf_pr", "inf_du") and len(viol) == len(stat) == res.iterations + 1
    assert viol[0] / viol[-1] > 1e8 and stat[0] / stat[-1] > 1e6
    fig = res.plot(path=str(tmp_path / "ipopt.png"))
    top, mid, bottom = fig.axes
    assert len(top.get_lines()[0].get_ydata()) == res.iterations + 1
    assert np.allclose(mid.get_lines()[0].get_ydata(), viol) and np.allclose(bottom.get_lines()[0].get_ydata(), stat)
    assert (tmp_path / "ipopt.png").stat().st_size > 10_000


def test_maximize_history_is_in_the_users_sign():
    m = od.Model()
    x = m.variable(2, name="x", value=[0.5, 0.5])
    m.maximize(x[0] * x[1])
    m.subject_to(od.sum_squares(x) == 2, name="circle")
    res = m.solve(solver="ipopt")
    assert res.chain == ["maximize_to_minimize", "ipopt"] and res.objective == pytest.approx(1.0, rel=1e-8)
    assert res.history[0]["objective"] == pytest.approx(0.25) and res.history[-1]["objective"] == pytest.approx(1.0)
