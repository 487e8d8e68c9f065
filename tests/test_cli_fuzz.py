"""The CLI fuzzed with malformed invocations and files (issue 16): never a traceback, exit code 2 for every
user error, one readable line (argparse's own usage errors print their usage line plus one error line; a model
no backend can take lists each backend's reason on indented lines under it).

Every case runs in-process through ``optdsl.cli.main``, so the table stays fast.
"""
import json
import textwrap

import pytest
import torch

from optdsl.cli import main

QP = """
import numpy as np, optdsl as od
def build(N=3):
    m = od.Model("qp")
    x = m.variable(N, lb=-5, name="x")
    m.minimize(od.sum_squares(x - np.arange(N)))
    m.subject_to(x.sum() <= 1, name="budget")
    return m
"""

LINSYS = """
import numpy as np, optdsl as od
m = od.Model("linsys")
x = m.variable(4, name="x")
m.subject_to((4 * np.eye(4) - np.eye(4, k=1) - np.eye(4, k=-1)) @ x == np.ones(4), name="sys")
model = m
"""

FINETUNE = """
import torch, optdsl as od
torch.manual_seed(0)
net = torch.nn.Linear(3, 2).double()
X = torch.randn(16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
y = torch.randint(0, 2, (16,), generator=torch.Generator().manual_seed(1))
m = od.Model("ft")
m.module(net, name="net")
m.minimize(od.mean(lambda b: torch.nn.functional.cross_entropy(net(b[0]), b[1]), over=(X, y), batch=8))
model = m
"""


def _model(body):
    return "import numpy as np, optdsl as od\nm = od.Model('bad')\n" + textwrap.dedent(body) + "\nmodel = m\n"


# name -> file contents (str or bytes) written into the case's folder
FILES = {
    "qp.py": QP,
    "linsys.py": LINSYS,
    "ft.py": FINETUNE,
    "empty.py": "",
    "syntax.py": "def build(:\n",
    "raises.py": "x = 1 / 0\n",
    "exits.py": "import sys\nsys.exit(3)\n",
    "build_raises.py": "def build():\n    raise RuntimeError('no [bold]data[/bold] here')\n",
    "build_exits.py": "def build():\n    raise SystemExit(1)\n",
    "build_int.py": "def build():\n    return 42\n",
    "multiline.py": "raise RuntimeError('first line\\nsecond line\\n  third')\n",
    "build_recurses.py": "def build():\n    return build()\n",
    "two_models.py": "import optdsl as od\na = od.Model('a')\nb = od.Model('b')\n",
    "latin1.py": "x = 'caf\xe9'\n".encode("latin-1"),
    "garbage.py": bytes(range(256)),
    "nothing.py": "import optdsl as od\nmodel = od.Model('nothing')\n",
    "shape_str.py": _model("x = m.variable('12')"),
    "eq_none.py": _model("x = m.variable(3)\nm.subject_to(x == None)"),
    "strict_lt.py": _model("x = m.variable(3)\nm.subject_to(x < 1)"),
    "complex.py": _model("x = m.variable(2)\nm.minimize(od.sum_squares(x - np.array([1j, 2])))"),
    "lb_inf.py": _model("x = m.variable(2, lb=np.inf)"),
    "nan_start.py": _model("x = m.variable(2, value=[0, np.nan])"),
    "size0.py": _model("x = m.variable(0)"),
    "dup_name.py": _model("x = m.variable(2)\nm.subject_to(x <= 1, name='[/]')\nm.subject_to(x >= 0, name='[/]')"),
    "markup_msg.py": "raise ValueError('[/] and [bold]cap[/bold]')\n",
    "nonconvex.py": _model("x = m.variable(2, name='x')\nm.maximize(od.sum_squares(x))\nm.subject_to(x <= 1)"),
    "tuner_corrupt.json": '{"omegas": [1.0, 1.5',
    "tuner_list.json": "[1, 2, 3]",
    "tuner_shape.json": json.dumps({"omegas": [1.0], "tuner": {"kind": "young"}, "rounds": [], "config": {}}),
    "tuner_bytes.json": b"\xff\xfe\x00garbage",
    "ck_garbage.pt": b"PK\x03\x04 not really a zip",
    "ck_json.pt": '{"step": 3}',
}

# (id, argv with {d} for the case folder, substring the error must hold or None); every case must exit 2
CASES = [
    ("no-such-file", ["solve", "{d}/missing.py"], "no such file"),
    ("a-folder", ["solve", "{d}"], "is a directory: give the Python script"),
    ("empty-file", ["solve", "{d}/empty.py"], "defines no model"),
    ("syntax-error", ["solve", "{d}/syntax.py"], "SyntaxError"),
    ("raises-on-load", ["solve", "{d}/raises.py"], "ZeroDivisionError"),
    ("sys-exit-on-load", ["solve", "{d}/exits.py"], "sys.exit()"),
    ("build-raises", ["solve", "{d}/build_raises.py"], "RuntimeError: no [bold]data[/bold] here"),
    ("build-exits", ["solve", "{d}/build_exits.py"], "called sys.exit()"),
    ("build-returns-int", ["solve", "{d}/build_int.py"], "returned int"),
    ("multi-line-message", ["solve", "{d}/multiline.py"], "first line second line third"),
    ("build-recurses", ["solve", "{d}/build_recurses.py"], "RecursionError"),
    ("two-models", ["solve", "{d}/two_models.py"], "several models"),
    ("latin1-file", ["solve", "{d}/latin1.py"], "latin1.py"),
    ("binary-file", ["solve", "{d}/garbage.py"], "garbage.py"),
    ("no-objective", ["solve", "{d}/nothing.py"], "no objective"),
    ("shape-string", ["solve", "{d}/shape_str.py"], "got '12'"),
    ("compare-none", ["solve", "{d}/eq_none.py"], "with None"),
    ("strict-less", ["solve", "{d}/strict_lt.py"], "use <="),
    ("complex-data", ["solve", "{d}/complex.py"], "complex data"),
    ("lb-plus-inf", ["solve", "{d}/lb_inf.py"], "+inf"),
    ("nan-warm-start", ["solve", "{d}/nan_start.py"], "NaN"),
    ("size-zero", ["solve", "{d}/size0.py"], "no entries"),
    ("duplicate-markup-name", ["solve", "{d}/dup_name.py"], "[/]"),
    ("markup-in-message", ["solve", "{d}/markup_msg.py"], "[/] and [bold]cap[/bold]"),
    ("inspect-markup-message", ["inspect", "{d}/markup_msg.py"], "[bold]cap[/bold]"),
    ("inspect-missing", ["inspect", "{d}/missing.py"], "no such file"),
    ("build-N-0-on-a-QP", ["solve", "{d}/qp.py", "--build", "N=0"], "no entries"),
    ("build-not-literal", ["solve", "{d}/qp.py", "--build", "N=abc"], "not a Python literal"),
    ("build-no-equals", ["solve", "{d}/qp.py", "--build", "N"], "NAME=VALUE"),
    ("build-unknown-keyword", ["solve", "{d}/qp.py", "--build", "M=3"], "unexpected keyword"),
    ("build-string-size", ["solve", "{d}/qp.py", "--build", "N='x'"], "build(N='x') failed"),
    ("build-without-build", ["solve", "{d}/linsys.py", "--build", "N=3"], "no build()"),
    ("param-unknown", ["solve", "{d}/qp.py", "--param", "c=1"], "no parameter"),
    ("param-no-equals", ["solve", "{d}/qp.py", "--param", "c"], "NAME=VALUE"),
    ("device-banana", ["solve", "{d}/qp.py", "--device", "banana"], "unknown device 'banana'"),
    ("device-meta", ["solve", "{d}/qp.py", "--device", "meta"], "cannot run a solve"),
    ("solver-unknown", ["solve", "{d}/qp.py", "--solver", "nosuch"], "nosuch"),
    ("solver-cannot-take-model", ["solve", "{d}/qp.py", "--solver", "sor"], "sor"),
    ("nonconvex-on-cvxpy", ["solve", "{d}/nonconvex.py", "--solver", "cvxpy"], "cvxpy"),
    ("max-iter-negative", ["solve", "{d}/qp.py", "--solver", "nlp", "--max-iter", "-5"], "max_iter"),
    ("cvxpy-solver-unknown", ["solve", "{d}/qp.py", "--solver", "cvxpy", "--cvxpy-solver", "NOPE"], "NOPE"),
    ("option-of-another-backend", ["solve", "{d}/qp.py", "--solver", "cvxpy", "--omega", "1.2"], "omega"),
    ("json-missing-folder", ["solve", "{d}/qp.py", "--solver", "cvxpy", "--json", "{d}/no/r.json"],
     "cannot write {d}/no/r.json"),
    ("json-is-a-folder", ["solve", "{d}/qp.py", "--solver", "cvxpy", "--json", "{d}"], "is a folder"),
    ("json-markup-path", ["solve", "{d}/qp.py", "--solver", "cvxpy", "--json", "{d}/[/]/r.json"], "[/]/r.json"),
    ("omega-out-of-range", ["solve", "{d}/linsys.py", "--solver", "sor", "--omega", "2.5"], "(0, 2)"),
    ("omega-not-a-number", ["solve", "{d}/linsys.py", "--solver", "sor", "--omega", "abc"], "omega"),
    ("tuner-file-corrupt", ["solve", "{d}/linsys.py", "--solver", "sor", "--tuner-file", "{d}/tuner_corrupt.json"],
     "tuner_corrupt.json is not valid JSON"),
    ("tuner-file-a-list", ["solve", "{d}/linsys.py", "--solver", "sor", "--tuner-file", "{d}/tuner_list.json"],
     "tuner_list.json: holds a JSON list"),
    ("tuner-file-wrong-structure", ["solve", "{d}/linsys.py", "--solver", "sor", "--tuner-file",
                                    "{d}/tuner_shape.json"], "tuner_shape.json: field 'tuner'"),
    ("tuner-file-bytes", ["solve", "{d}/linsys.py", "--solver", "sor", "--tuner-file", "{d}/tuner_bytes.json"],
     "tuner_bytes.json"),
    ("tuner-file-in-missing-folder", ["solve", "{d}/linsys.py", "--solver", "sor", "--tuner-file",
                                      "{d}/no/t.json"], "{d}/no/t.json"),
    ("resume-missing", ["solve", "{d}/ft.py", "--max-iter", "4", "--resume-from", "{d}/nope.pt"], "no such file"),
    ("resume-garbage", ["solve", "{d}/ft.py", "--max-iter", "4", "--resume-from", "{d}/ck_garbage.pt"],
     "ck_garbage.pt is corrupt"),
    ("resume-json", ["solve", "{d}/ft.py", "--max-iter", "4", "--resume-from", "{d}/ck_json.pt"], "ck_json.pt"),
    ("resume-malicious", ["solve", "{d}/ft.py", "--max-iter", "4", "--resume-from", "{d}/evil.pt"], "refusing"),
    ("resume-truncated", ["solve", "{d}/ft.py", "--max-iter", "4", "--resume-from", "{d}/half.pt"], "half.pt"),
    ("resume-fewer-steps", ["solve", "{d}/ft.py", "--max-iter", "2", "--resume-from", "{d}/ck.pt"],
     "at step 4, past the 2 steps"),
    ("resume-other-seed", ["solve", "{d}/ft.py", "--max-iter", "6", "--seed", "5", "--resume-from", "{d}/ck.pt"],
     "seed=0, this run has seed=5"),
    ("resume-other-lr", ["solve", "{d}/ft.py", "--max-iter", "6", "--lr", "0.5", "--resume-from", "{d}/ck.pt"],
     "lr="),
    ("checkpoint-missing-folder", ["solve", "{d}/ft.py", "--max-iter", "4", "--checkpoint-every", "2",
                                   "--checkpoint-path", "{d}/no/ck.pt"], "does not exist"),
    ("bench-unknown", ["bench", "nosuch"], "no benchmark 'nosuch'"),
    ("bool-option-maybe", ["solve", "{d}/qp.py", "--solver", "cvxpy", "--solver-verbose", "maybe"], "expected bool"),
]

# argparse rejects these itself (SystemExit 2 with its usage line)
USAGE_CASES = [
    ("no-arguments", []),
    ("unknown-command", ["frobnicate"]),
    ("solve-without-file", ["solve"]),
    ("unknown-flag", ["solve", "{d}/qp.py", "--no-such-flag"]),
    ("max-iter-not-int", ["solve", "{d}/qp.py", "--max-iter", "abc"]),
    ("dtype-float16", ["solve", "{d}/qp.py", "--dtype", "float16"]),
    ("tol-not-float", ["solve", "{d}/qp.py", "--tol", "tight"]),
    ("quiet-and-verbose", ["solve", "{d}/qp.py", "-q", "-v"]),
]


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        import pathlib
        return (pathlib.Path.touch, (pathlib.Path(self.target),))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    for name, content in FILES.items():
        (d / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    torch.save({"payload": _Payload(str(d / "pwned"))}, str(d / "evil.pt"))
    assert main(["solve", str(d / "ft.py"), "--max-iter", "4", "--checkpoint-every", "2",
                 "--checkpoint-path", str(d / "ck.pt"), "-q"]) in (0, 1)
    raw = (d / "ck.pt").read_bytes()
    (d / "half.pt").write_bytes(raw[: len(raw) // 2])
    (d / "[").mkdir()   # "{d}/[/]/r.json" names a missing folder "]" inside "["
    return d


def _fill(argv, d):
    return [a.replace("{d}", str(d)) for a in argv]


def test_the_table_is_large_enough():
    assert len(CASES) + len(USAGE_CASES) >= 50


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_user_error_is_one_line_and_exit_2(folder, capsys, case):
    _, argv, expect = case
    rc = main(_fill(argv, folder))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert rc == 2, (out, err)
    lines = err.strip().splitlines()
    # one line; a "cannot take this model" error lists each backend's reason on indented lines below it
    assert lines[0].startswith("error: ") and all(line.startswith("  ") for line in lines[1:]), err
    if expect:
        assert expect.replace("{d}", str(folder)) in lines[0], lines[0]
    assert not (folder / "pwned").exists()            # the malicious checkpoint never ran


@pytest.mark.parametrize("case", USAGE_CASES, ids=[c[0] for c in USAGE_CASES])
def test_usage_error_exits_2_without_traceback(folder, capsys, case):
    with pytest.raises(SystemExit) as info:
        main(_fill(case[1], folder))
    out, err = capsys.readouterr()
    assert info.value.code == 2 and "Traceback" not in out + err and "error:" in err
