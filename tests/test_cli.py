"""The CLI end to end: exit codes, readable errors (never a traceback), JSON output, flags."""
import json
import textwrap

import pytest

from optdsl.cli import main
from optdsl.result import Result

HS71 = """
import optdsl as od
def build():
    m = od.Model("hs71")
    x = m.variable(4, lb=1, ub=5, name="x", value=[1, 5, 5, 1])
    m.minimize(x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2])
    m.subject_to(od.sum_squares(x) == 40, name="sphere")
    m.subject_to(x[0] * x[1] * x[2] * x[3] >= 25, name="product")
    return m
"""

PARAM_LS = """
import numpy as np, optdsl as od
m = od.Model("shift")
x = m.variable(3, name="x")
c = m.parameter(value=np.zeros(3), name="c")
m.minimize(od.sum_squares(x - c))
model = m
"""


def _script(tmp_path, text, name="p.py"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def test_solve_hs71_prints_summary_and_writes_json(tmp_path, capsys):
    path = _script(tmp_path, HS71)
    out_json = tmp_path / "r.json"
    assert main(["solve", path, "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "LOCALLY_OPTIMAL" in out and "17.014017" in out and "sphere" in out and "product" in out
    res = Result.from_json(str(out_json))
    assert res.objective == pytest.approx(17.0140172891563, rel=1e-7)
    assert res.duals["sphere"].shape == ()


def test_json_dash_writes_the_result_alone_on_stdout_and_the_report_on_stderr(tmp_path, capsys, monkeypatch):
    path = _script(tmp_path, HS71)
    monkeypatch.chdir(tmp_path)
    assert main(["solve", path, "--json", "-"]) == 0
    captured = capsys.readouterr()
    res = Result.from_dict(json.loads(captured.out))            # stdout is the JSON and nothing else
    assert res.objective == pytest.approx(17.0140172891563, rel=1e-7) and res.duals["sphere"].shape == ()
    assert "LOCALLY_OPTIMAL" in captured.err and "sphere" in captured.err
    assert not (tmp_path / "-").exists()                        # not a file named "-"
    assert main(["solve", path, "--json", "-", "-q"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["status"] == "LOCALLY_OPTIMAL" and captured.err.startswith("LOCALLY_OPTIMAL")


def test_backend_option_flags_reach_the_backend(tmp_path, capsys):
    path = _script(tmp_path, HS71)
    assert main(["solve", path, "--solver", "nlp", "--method", "trust-constr", "-q"]) == 0
    assert "objective=17.01401" in capsys.readouterr().out


def test_param_flag_sets_parameter(tmp_path, capsys):
    path = _script(tmp_path, PARAM_LS)
    out_json = tmp_path / "r.json"
    assert main(["solve", path, "--param", "c=[1, 2, 3]", "--json", str(out_json), "-q"]) == 0
    vals = json.loads(out_json.read_text())["values"]["x"]["data"]
    assert vals == pytest.approx([1, 2, 3], abs=1e-6)


@pytest.mark.parametrize("text,needle", [
    ("x = 1\n", "defines no model"),
    ("import optdsl as od\na = od.Model('a')\nb = od.Model('b')\n", "several models (a, b)"),
    ("raise RuntimeError('boom')\n", "raised RuntimeError: boom (line 1"),
])
def test_script_errors_are_one_line_with_exit_2(tmp_path, capsys, text, needle):
    assert main(["solve", _script(tmp_path, text)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_usage_errors_exit_2(tmp_path, capsys):
    path = _script(tmp_path, HS71)
    assert main(["solve", path, "--solver", "nosuch"]) == 2
    assert "known solvers" in capsys.readouterr().err
    assert main(["solve", path, "--solver", "cvxpy"]) == 2
    assert "not convex" in capsys.readouterr().err  # why cvxpy cannot take HS71
    assert main(["solve", path, "--param", "zz=1"]) == 2
    assert "no parameter 'zz'" in capsys.readouterr().err
    assert main(["solve", str(tmp_path / "missing.py")]) == 2


def test_infeasible_exits_1(tmp_path, capsys):
    path = _script(tmp_path, """
        import optdsl as od
        m = od.Model("inf")
        x = m.variable(2, name="x")
        m.minimize(x.sum())
        m.subject_to(x >= 1, name="lo")
        m.subject_to(x.sum() <= 0, name="hi")
        model = m
    """)
    assert main(["solve", path]) == 1
    assert "INFEASIBLE" in capsys.readouterr().out


def test_inspect_and_solvers(tmp_path, capsys):
    assert main(["inspect", _script(tmp_path, HS71)]) == 0
    out = capsys.readouterr().out
    assert "sphere" in out and "\\begin{array}" in out and "chosen: ipopt" in out
    assert main(["solvers"]) == 0
    out = capsys.readouterr().out
    assert "cvxpy" in out and "nlp" in out and "lbfgs" in out


SIZED = """
import optdsl as od
def build(n=2, target=1.0):
    m = od.Model("sized")
    x = m.variable(n, name="x")
    m.minimize(od.sum_squares(x - target))
    return m
"""


def test_build_flag_passes_keyword_arguments(tmp_path, capsys):
    path = _script(tmp_path, SIZED)
    out_json = tmp_path / "r.json"
    assert main(["solve", path, "--build", "n=5", "--build", "target=2.5", "--json", str(out_json), "-q"]) == 0
    vals = json.loads(out_json.read_text())["values"]["x"]["data"]
    assert vals == pytest.approx([2.5] * 5, abs=1e-6)
    assert main(["solve", path, "--build", "size=5"]) == 2
    assert "build(size=5) failed" in capsys.readouterr().err
    assert main(["solve", _script(tmp_path, PARAM_LS, "q.py"), "--build", "n=5"]) == 2
    assert "has no build() function" in capsys.readouterr().err
    assert main(["solve", path, "--build", "n"]) == 2
    assert "expected NAME=VALUE" in capsys.readouterr().err
