"""Ctrl-C inside cvxpy: the conic solvers hand back no intermediate point, so the result is INTERRUPTED with no
values -- not a traceback, and not the previous solve's point passed off as this one's."""
import textwrap

import cvxpy as cp
import numpy as np
import pytest

import optdsl as od
from optdsl import PrimalStatus
from optdsl import TerminationStatus as Status
from optdsl.cli import main

LASSO = """
import numpy as np, optdsl as od
rng = np.random.default_rng(0)
A, b = rng.standard_normal((20, 5)), rng.standard_normal(20)
m = od.Model("lasso")
x = m.variable(5, name="x")
m.minimize(od.sum_squares(A @ x - b) + 0.1 * od.norm1(x))
m.subject_to(od.sum(x) <= 1, name="budget")
model = m
"""


def _lasso():
    scope: dict = {}
    exec(textwrap.dedent(LASSO), scope)  # noqa: S102 - the test's own model text, shared with the CLI case
    return scope["m"]


def _ctrl_c(self, *args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_inside_cvxpy_is_interrupted_with_no_values(monkeypatch):
    m = _lasso()
    first = m.solve(solver="cvxpy")
    assert first.status == Status.OPTIMAL and first.duals["budget"].size == 1
    monkeypatch.setattr(cp.Problem, "solve", _ctrl_c)
    res = m.solve(solver="cvxpy")
    assert res.status == Status.INTERRUPTED and "no intermediate point" in res.message
    assert res.values == {} and res.duals == {} and res.objective is None
    assert res.primal_status == PrimalStatus.NO_SOLUTION
    assert not res.status.is_success
    monkeypatch.undo()
    again = m.solve(solver="cvxpy")                       # the compiled problem is still usable afterwards
    assert again.status == Status.OPTIMAL and again.objective == pytest.approx(first.objective, rel=1e-6)
    np.testing.assert_allclose(again.values["x"], first.values["x"], atol=1e-6)


def test_cli_ctrl_c_inside_cvxpy_prints_interrupted_and_exits_1(tmp_path, monkeypatch, capsys):
    script = tmp_path / "lasso.py"
    script.write_text(textwrap.dedent(LASSO))
    monkeypatch.setattr(cp.Problem, "solve", _ctrl_c)
    assert main(["solve", str(script), "--solver", "cvxpy", "-q"]) == 1
    assert capsys.readouterr().out.strip() == "INTERRUPTED objective=-"       # no objective claimed
    assert main(["solve", str(script), "--solver", "cvxpy"]) == 1
    cap = capsys.readouterr()
    assert "INTERRUPTED" in cap.out and "NO_SOLUTION" in cap.out and "inside the cvxpy solver" in cap.out
    assert cap.err == ""                                                      # no traceback
