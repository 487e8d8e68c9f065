"""Nothing lost, nothing executed (issue 16): safe checkpoints, atomic files, locked tuner state, one-line
errors, strict JSON, lazy bounds, thread safety and the smaller input checks."""
import json
import math
import os
import pathlib
import resource
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import optdsl as od
from optdsl.solvers import zo
from optdsl.solvers.common import Status
from optdsl.solvers.io import FileWriteError, atomic_write
from optdsl.solvers.zo.checkpoint import CheckpointError

REPO = pathlib.Path(__file__).resolve().parents[1]


# --- checkpoints ---------------------------------------------------------------------------------------------

def _net(width=4, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, width), torch.nn.Tanh(), torch.nn.Linear(width, 2)).double()


_X = torch.randn(16, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
_Y = torch.randint(0, 2, (16,), generator=torch.Generator().manual_seed(1))


def _loss(m, idx):
    return F.cross_entropy(m(_X[idx]), _Y[idx])


def _batches(k):
    return torch.randint(0, 16, (8,), generator=torch.Generator().manual_seed(k))


def _run(path=None, resume=None, steps=6, net=None, **kw):
    kw = {"lr": 1e-2, "seed": 3, **kw}
    if path is not None:
        kw.update(checkpoint_every=3, checkpoint_path=str(path))
    return zo.fine_tune(net if net is not None else _net(), _loss, _batches, steps=steps,
                        resume_from=None if resume is None else str(resume), **kw)


class _Payload:
    """Unpickling this runs ``pathlib.Path(target).touch()``: what a crafted checkpoint would do."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.target),))


def test_a_malicious_checkpoint_does_not_run(tmp_path):
    target = tmp_path / "pwned"
    bad = tmp_path / "evil.pt"
    torch.save({"format": "optdsl.zo.fine_tune/1", "step": 0, "payload": _Payload(str(target))}, str(bad))
    with pytest.raises(CheckpointError, match="refusing") as info:
        _run(resume=bad)
    assert not target.exists()                       # the payload never ran
    assert "evil.pt" in str(info.value) and "\n" not in str(info.value)
    torch.load(str(bad), weights_only=False)         # sanity: the file really is armed
    assert target.exists()


def test_checkpoint_holds_names_shapes_seed_settings_and_only_plain_data(tmp_path):
    ck = tmp_path / "ck.pt"
    _run(ck)
    data = torch.load(str(ck), weights_only=True)     # loads under the safe unpickler
    assert data["step"] == 6 and data["seed"] == 3
    assert data["parameters"] == {"0.weight": [4, 3], "0.bias": [4], "2.weight": [2, 4], "2.bias": [2]}
    assert data["settings"]["lr"] == 1e-2 and data["settings"]["estimator"] == "gaussian"
    json.dumps({k: v for k, v in data.items() if k not in ("params", "stepper")}, allow_nan=True)
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]     # no temporary left behind


def test_resume_equals_an_uninterrupted_run(tmp_path):
    ck = tmp_path / "ck.pt"
    a = _net()
    _run(net=a, steps=6)
    b = _net()
    _run(ck, net=b, steps=3)
    c = _net(seed=7)
    out = _run(resume=ck, net=c, steps=6)
    assert out.iterations == 6
    for p, q in zip(a.parameters(), c.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("change,field", [
    (dict(seed=4), "seed=3"), (dict(lr=2e-2), "lr=0.01"), (dict(q=2), "q=1"),
    (dict(optimizer="adam"), "optimizer='sgd'"), (dict(net=_net(width=5)), "'0.weight' has shape [5, 3]"),
])
def test_a_mismatched_checkpoint_names_the_field(tmp_path, change, field):
    ck = tmp_path / "ck.pt"
    _run(ck)
    with pytest.raises(CheckpointError) as info:
        _run(resume=ck, **change)
    msg = str(info.value)
    assert "\n" not in msg and "ck.pt" in msg
    assert field.replace("[5, 3]", "[4, 3] in the checkpoint, [5, 3]") in msg or field in msg


def test_a_module_with_other_parameters_is_refused(tmp_path):
    ck = tmp_path / "ck.pt"
    _run(ck)
    other = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)).double()   # '1.*' not '2.*'
    with pytest.raises(CheckpointError, match=r"not in the checkpoint: 1\.bias, 1\.weight"):
        _run(resume=ck, net=other)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "json", "list", "no_format"])
def test_a_damaged_checkpoint_is_one_line_naming_the_file(tmp_path, damage):
    ck = tmp_path / "ck.pt"
    _run(ck)
    raw = ck.read_bytes()
    if damage == "truncate":
        ck.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        ck.write_bytes(bytes(range(256)) * 4)
    elif damage == "empty":
        ck.write_bytes(b"")
    elif damage == "json":
        ck.write_text('{"step": 3}')
    elif damage == "list":
        torch.save([1, 2, 3], str(ck))
    else:
        data = torch.load(str(ck), weights_only=True)
        del data["format"]
        torch.save(data, str(ck))
    with pytest.raises(CheckpointError) as info:
        _run(resume=ck)
    assert "ck.pt" in str(info.value) and "\n" not in str(info.value)


def test_missing_checkpoint_file_and_folder(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pt: no such file"):
        _run(resume=tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="folder .*missing.* does not exist"):
        _run(tmp_path / "missing" / "ck.pt")


def test_fewer_steps_than_the_checkpoint_names_both_numbers(tmp_path):
    ck = tmp_path / "ck.pt"
    _run(ck, steps=6)
    with pytest.raises(CheckpointError, match="at step 6, past the 4 steps asked for"):
        _run(resume=ck, steps=4)


def test_concurrent_checkpoint_writers_never_share_a_temporary(tmp_path):
    ck = tmp_path / "ck.pt"
    errors = []

    def work(seed):
        try:
            for _ in range(3):
                _run(ck, steps=6, seed=3)
        except Exception as exc:  # noqa: BLE001 - any crash fails the test
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert torch.load(str(ck), weights_only=True)["step"] == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


# --- atomic writes and the shared SOR tuner file --------------------------------------------------------------

def _sor_model(n=16):
    m = od.Model("chain")
    x = m.variable(n, name="x")
    b = m.parameter(n, value=np.ones(n), name="b")
    A = 4 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
    m.subject_to(A @ x == b, name="sys")
    return m, b


def _solves(path, worker, count):
    m, b = _sor_model()
    rng = np.random.default_rng(worker)
    for _ in range(count):
        b.value = rng.standard_normal(16)
        res = m.solve(solver="sor", tuner_file=path)
        assert res.status == Status.OPTIMAL


def test_four_processes_sharing_a_tuner_file_keep_all_32_rounds(tmp_path):
    import multiprocessing
    path = str(tmp_path / "tuner.json")
    _sor_model()[0].solve(solver="sor")             # the lazy imports happen here, once, not in each child
    ctx = multiprocessing.get_context("fork")       # the children inherit the imported modules
    procs = [ctx.Process(target=_solves, args=(path, w, 8)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    state = json.loads(pathlib.Path(path).read_text())
    assert len(state["rounds"]) == 32
    assert [r["round"] for r in state["rounds"]] == list(range(32))
    assert state["tuner"]["t"] == 32                  # the tuner learned from every round, not only its own
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tuner.json", "tuner.json.lock"]


def test_two_models_in_one_process_merge_their_rounds(tmp_path):
    path = str(tmp_path / "tuner.json")
    (m1, b1), (m2, b2) = _sor_model(), _sor_model()
    for k in range(3):
        b1.value = np.full(16, k + 1.0)
        m1.solve(solver="sor", tuner_file=path)
        b2.value = np.full(16, -k - 1.0)
        res = m2.solve(solver="sor", tuner_file=path)
    assert res.extras["round"] == 6
    assert len(json.loads(pathlib.Path(path).read_text())["rounds"]) == 6


def test_a_fixed_omega_never_overwrites_a_learned_tuner_file(tmp_path):
    path = tmp_path / "learned.json"
    m, _ = _sor_model()
    m.solve(solver="sor", tuner_file=str(path))
    learned = path.read_text()
    res = _sor_model()[0].solve(solver="sor", omega=1.5, tuner_file=str(path))
    assert res.extras["omega"] == 1.5
    assert path.read_text() == learned
    again = _sor_model()[0].solve(solver="sor", tuner_file=str(path))   # omega=auto resumes the learned file
    assert again.status == Status.OPTIMAL and again.extras["round"] == 2


@pytest.mark.parametrize("content,what", [
    ('{"omegas": [1.0, 1.5', "not valid JSON"),
    ("[1, 2, 3]", "holds a JSON list"),
    ('{"omegas": [1.0], "tuner": {"kind": "young"}, "rounds": [], "config": {}}', "field 'tuner' is malformed"),
    ('{"omegas": "abc", "tuner": {}, "rounds": [], "config": {}}', "field 'omegas'"),
    ('{"tuner": {}, "rounds": [], "config": {}, "omegas": [1.0]}', "field 'tuner' is malformed"),
    ("\x00\xff", "tuner file"),
])
def test_a_bad_tuner_file_is_one_line_naming_it(tmp_path, content, what):
    path = tmp_path / "t.json"
    path.write_text(content, encoding="latin-1")
    with pytest.raises(ValueError) as info:
        _sor_model()[0].solve(solver="sor", tuner_file=str(path))
    msg = str(info.value)
    assert str(path) in msg and what in msg and "\n" not in msg


def test_atomic_write_failure_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "r.json"
    atomic_write(str(path), "old")

    def boom(fh):
        fh.write(b"half")
        raise RuntimeError("disk on fire")
    with pytest.raises(FileWriteError, match="r.json: RuntimeError: disk on fire"):
        atomic_write(str(path), boom)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    with pytest.raises(FileWriteError, match="folder .* does not exist"):
        atomic_write(str(tmp_path / "no" / "r.json"), "x")


_ULIMIT_CHILD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("io_helper", sys.argv[2])   # without importing torch: fast
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
mod.atomic_write(sys.argv[1], "x" * 100000)
"""


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # as the CLI does: EFBIG instead of being killed


def test_a_write_under_ulimit_f_keeps_the_previous_file(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("previous")
    proc = subprocess.run([sys.executable, "-c", _ULIMIT_CHILD, str(path), str(REPO / "solvers" / "io.py")],
                          preexec_fn=_limit_file_size, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert f"cannot write {path}: File too large" in proc.stderr
    assert path.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


# --- strict JSON results ---------------------------------------------------------------------------------------

def _reject_constant(token):
    raise AssertionError(f"bare {token} in JSON")


def test_nonfinite_numbers_are_strict_json_and_come_back_as_floats(tmp_path):
    r = od.Result(status=Status.NUMERICAL_ERROR, primal_status=od.PrimalStatus.UNKNOWN, objective=float("nan"),
                  values={"x": np.array([1.0, np.nan, np.inf])}, certificates={"gap": float("nan"),
                  "bound": np.float64(-np.inf), "list": [1.0, float("inf")]},
                  history=[{"iteration": 0, "loss": float("inf")}], extras={"arr": np.array([np.nan])})
    path = tmp_path / "r.json"
    r.save(str(path))
    json.loads(path.read_text(), parse_constant=_reject_constant)      # no NaN / Infinity tokens
    back = od.Result.load(str(path))
    assert math.isnan(back.objective) and math.isnan(back.certificates["gap"])
    assert back.certificates["bound"] == -math.inf and back.certificates["list"] == [1.0, math.inf]
    assert back.history[0]["loss"] == math.inf and math.isnan(back.extras["arr"][0])
    np.testing.assert_array_equal(back.values["x"], [1.0, np.nan, np.inf])
    assert od.Result.from_json(r.to_json()).status == Status.NUMERICAL_ERROR


def test_a_solved_result_saves_and_reloads(tmp_path):
    m = od.Model("ls")
    x = m.variable(2, name="x")
    m.minimize(od.sum_squares(x - np.array([1.0, 2.0])))
    res = m.solve(solver="cvxpy")
    res.save(str(tmp_path / "res.json"))
    back = od.Result.load(str(tmp_path / "res.json"))
    assert back.status == res.status and back.objective == pytest.approx(res.objective, abs=1e-12)
    np.testing.assert_allclose(back.values["x"], [1.0, 2.0], atol=1e-6)


# --- the CLI ----------------------------------------------------------------------------------------------------

from optdsl.cli import main  # noqa: E402

MARKUP = """
import optdsl as od
m = od.Model("markup")
x = m.variable(2, lb=0, name="[bold]cap[/bold]")
m.minimize(od.sum_squares(x - 1))
m.subject_to(x.sum() <= 1, name="[/]")
model = m
"""


def _write(tmp_path, text, name="p.py"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def test_names_with_rich_markup_print_verbatim(tmp_path, capsys):
    path = _write(tmp_path, MARKUP)
    assert main(["solve", path, "--solver", "cvxpy"]) == 0
    out = capsys.readouterr().out
    assert "[bold]cap[/bold]" in out and "[/]" in out
    assert main(["inspect", path]) == 0
    out = capsys.readouterr().out
    assert "[bold]cap[/bold]" in out and "[/]" in out
    (tmp_path / "a[").mkdir()
    bad = _write(tmp_path, "x = 1\n", name="a[/]b[bold]c.py")         # folder "a[", file "]b[bold]c.py"
    assert main(["solve", bad]) == 2
    err = capsys.readouterr().err
    assert "a[/]b[bold]c.py defines no model" in err and "Traceback" not in err


def test_the_result_is_printed_before_an_unwritable_json_path(tmp_path, capsys):
    path = _write(tmp_path, MARKUP)
    target = tmp_path / "missing" / "r.json"
    assert main(["solve", path, "--solver", "cvxpy", "--json", str(target)]) == 2
    cap = capsys.readouterr()
    assert "OPTIMAL" in cap.out                                   # the computed result was not lost
    assert f"cannot write {target}" in cap.err and len(cap.err.strip().splitlines()) == 1


def test_a_failed_json_write_keeps_the_previous_file(tmp_path, capsys, monkeypatch):
    path = _write(tmp_path, MARKUP)
    target = tmp_path / "r.json"
    target.write_text("previous")
    real = os.fsync

    def full_disk(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", full_disk)
    assert main(["solve", path, "--solver", "cvxpy", "--json", str(target)]) == 2
    monkeypatch.setattr(os, "fsync", real)
    assert "No space left on device" in capsys.readouterr().err
    assert target.read_text() == "previous" and [p.name for p in tmp_path.iterdir()].count("r.json") == 1
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


def test_build_raising_anything_is_one_line_with_its_line_number(tmp_path, capsys):
    path = _write(tmp_path, """
        def build(N=3):
            return 1 / (N - 3)
    """)
    assert main(["solve", path]) == 2
    err = capsys.readouterr().err.strip()
    assert "build() failed: ZeroDivisionError: division by zero (line 3: return 1 / (N - 3))" in err
    assert len(err.splitlines()) == 1


def test_unknown_device_is_a_usage_error(tmp_path, capsys):
    assert main(["solve", _write(tmp_path, MARKUP), "--device", "banana"]) == 2
    assert "unknown device 'banana'" in capsys.readouterr().err


def test_bench_runs_the_installed_benchmark_not_one_in_the_current_folder(tmp_path, monkeypatch):
    import optdsl.cli as cli
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "bench_sor.py").write_text("raise SystemExit('planted')\n")
    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr(cli.subprocess, "call", lambda argv, *a, **k: calls.append(argv) or 0)
    assert main(["bench", "sor", "--quick"]) == 0
    assert calls and calls[0][1] == str(REPO / "benchmarks" / "bench_sor.py")


# --- memory, threads and the smaller input checks ----------------------------------------------------------------

def test_scalar_bounds_stay_scalar_until_a_backend_needs_them():
    import tracemalloc
    m = od.Model("big")
    tracemalloc.start()
    x = m.variable(10 ** 9, lb=0, ub=np.inf, name="x")         # dense bounds would be 8 GB
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 10 ** 6
    assert x.ub is None
    small = m.variable(3, lb=0.5, name="small")
    assert small.lb.shape == (3,) and small.lb.tolist() == [0.5, 0.5, 0.5]


def test_printing_and_lowering_the_bounds_of_a_large_variable_stay_scalar():
    import tracemalloc
    from optdsl.passes.bounds_to_constraints import bound_constraints
    m = od.Model("large")
    x = m.variable(10 ** 7, lb=0, name="x")                     # dense bounds would be 80 MB
    m.minimize(x.sum())
    str(m)
    tracemalloc.start()
    text = str(m)
    items = bound_constraints(m.to_problem())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "0 <= x" in text and [i.name for i in items] == ["x.lb"]
    assert peak < 10 ** 6


def test_changing_a_bound_after_a_solve_takes_effect_on_the_cached_cvxpy_problem():
    m = od.Model("rebound")
    x = m.variable(2, lb=0, name="x")
    m.minimize(od.sum_squares(x + 1))
    np.testing.assert_allclose(m.solve(solver="cvxpy").values["x"], [0, 0], atol=1e-6)
    x.lb = -0.5
    np.testing.assert_allclose(m.solve(solver="cvxpy").values["x"], [-0.5, -0.5], atol=1e-6)
    x.lb = None
    x.ub = [-2.0, 1.0]
    with pytest.raises(od.ModelError, match="lower bound exceeds upper bound"):
        x.lb = 0
    np.testing.assert_allclose(m.solve(solver="cvxpy").values["x"], [-2.0, -1.0], atol=1e-6)


def test_one_model_solved_by_cvxpy_from_several_threads():
    # Clarabel's solver object is shared by re-solves of one compiled problem: unserialized threads raised
    # "Already mutably borrowed" (measured: 3 of 4 threads) before the backend took a per-model lock
    n = 200
    target = np.linspace(0.0, 1.0, n)
    m = od.Model("threads")
    x = m.variable(n, name="x")
    m.minimize(od.sum_squares(x - target))
    m.subject_to(x.sum() <= 50, name="budget")
    m.solve(solver="cvxpy", cvxpy_solver="CLARABEL")     # compiled once, then shared by the threads
    results, errors = [], []

    def work():
        try:
            for _ in range(4):
                results.append(m.solve(solver="cvxpy", cvxpy_solver="CLARABEL"))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 16
    lam = (target.sum() - 50) / n      # projection onto sum(x) <= 50: x = target - lam, dual 2 lam
    for r in results:
        np.testing.assert_allclose(r.values["x"], target - lam, atol=1e-6)
        assert r.duals["budget"] == pytest.approx(2 * lam, abs=1e-6)


@pytest.mark.parametrize("make,match", [
    (lambda m: m.variable("12"), r"shape must be an int or a tuple of ints, got '12'"),
    (lambda m: m.variable(2.5), "got 2.5"),
    (lambda m: m.variable(3, name="x") == None, "cannot compare 'x' with None"),  # noqa: E711
    (lambda m: m.variable(3, name="x") < 1, "use <= instead"),
    (lambda m: 1 < m.variable(3, name="x"), "use >= instead"),
    (lambda m: m.variable(2, name="x") + np.array([1 + 1j, 2]), "complex data is not supported"),
    (lambda m: m.variable(2, name="x", lb=[1j, 0]), "complex data is not supported"),
    (lambda m: m.parameter(value=np.ones(2) * 1j, name="p"), "complex data is not supported"),
    (lambda m: m.variable(2, lb=np.inf, name="x"), r"lb of variable 'x' is \+inf"),
    (lambda m: m.variable(2, ub=[0, -np.inf], name="x"), "ub of variable 'x' is -inf somewhere"),
    (lambda m: m.variable(2, value=[1, np.nan], name="x"), r"value \(warm start\) of variable 'x' contains NaN"),
    (lambda m: m.variable(3, name="x") <= np.array([1, np.nan, 2]),
     r"constant of shape \(3,\) holds nan at index \(1,\): data must be finite \(compared with 'x'\)"),
    (lambda m: np.array([[1, 2], [0, np.inf]]) @ m.variable(2, name="x"),
     r"holds inf at index \(1, 1\): data must be finite \(combined with 'x'\)"),
    (lambda m: m.variable(0, name="x"), r"variable 'x' has shape \(0,\), with no entries"),
    (lambda m: m.variable((3, 0), name="x"), r"has shape \(3, 0\)"),
])
def test_bad_input_is_a_named_model_error(make, match):
    with pytest.raises(od.ModelError, match=match):
        make(od.Model("bad"))


def test_a_nan_warm_start_set_later_is_refused():
    x = od.Model("w").variable(2, name="x")
    with pytest.raises(od.ModelError, match="'x' contains NaN"):
        x.value = [0.0, float("nan")]


def _limit_to_200_bytes():
    resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))   # the CLI itself ignores SIGXFSZ


@pytest.mark.slow   # a fresh interpreter importing optdsl: ~5 s
def test_cli_json_under_ulimit_f_prints_the_result_and_keeps_the_previous_file(tmp_path):
    script = _write(tmp_path, MARKUP)
    out = tmp_path / "r.json"
    out.write_text("previous")
    proc = subprocess.run([sys.executable, "-m", "optdsl.cli", "solve", script, "--solver", "cvxpy", "--json",
                           str(out)], preexec_fn=_limit_to_200_bytes, capture_output=True, text=True, timeout=300,
                          cwd=str(REPO))
    assert proc.returncode == 2, proc.stderr
    assert "OPTIMAL" in proc.stdout
    assert f"cannot write {out}: File too large" in proc.stderr and "Traceback" not in proc.stderr
    assert out.read_text() == "previous"
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


DAG3 = """
import numpy as np, optdsl as od
rng = np.random.default_rng(0)
x0 = rng.standard_normal(200)
X = np.column_stack([x0, 2 * x0 + 0.1 * rng.standard_normal(200), rng.standard_normal(200)])
m = od.Model("dag3")
W = m.variable((3, 3), name="W")
m.minimize(od.sem_loss(W, X) + 0.05 * od.norm1(W))
m.subject_to(od.acyclic(W), name="dag")
model = m
"""


def test_an_unwritable_edge_list_keeps_the_dag_result(tmp_path, capsys):
    script = _write(tmp_path, DAG3)
    target = tmp_path / "no" / "edges.csv"
    assert main(["solve", script, "--edges-csv", str(target), "-q"]) == 2
    cap = capsys.readouterr()
    assert "LOCALLY_OPTIMAL" in cap.out
    assert cap.err.strip() == f"error: cannot write {target}: folder {target.parent} does not exist"


@pytest.mark.parametrize("text", ['{"status": "OPTIMAL"', '[1, 2]', '{"status": "GREAT", "primal_status": "x"}'])
def test_loading_something_else_as_a_result_names_the_file(tmp_path, text):
    path = tmp_path / "r.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="r.json is not a saved optdsl Result"):
        od.Result.load(str(path))


# --- a tuner file that cannot be written after the solve: the result is kept, then one line, exit 2 ---------

SOR_CHAIN = """
import numpy as np, optdsl as od
n = 16
m = od.Model("chain")
x = m.variable(n, name="x")
A = 4 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
m.subject_to(A @ x == np.ones(n), name="sys")
model = m
"""


def _sor_chain_solution():
    n = 16
    return np.linalg.solve(4 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1), np.ones(n))


def test_an_unwritable_tuner_file_keeps_the_solve(tmp_path):
    target = tmp_path / "no" / "tuner.json"
    res = _sor_model()[0].solve(solver="sor", tuner_file=str(target))
    assert res.status == Status.OPTIMAL
    np.testing.assert_allclose(res.values["x"], _sor_chain_solution(), atol=1e-6)
    assert res.extras["write_errors"] == [f"cannot write tuner file {target}: No such file or directory"]
    assert f"cannot write tuner file {target}" in res.message
    assert not target.parent.exists()


def test_cli_prints_the_sor_result_then_one_line_naming_the_unwritable_tuner_file(tmp_path, capsys):
    script = _write(tmp_path, SOR_CHAIN)
    target = tmp_path / "no" / "tuner.json"
    assert main(["solve", script, "--solver", "sor", "--tuner-file", str(target), "-q"]) == 2
    cap = capsys.readouterr()
    assert cap.out.startswith("OPTIMAL")                       # the result first ...
    assert cap.err.strip() == f"error: cannot write tuner file {target}: No such file or directory"  # ... then this


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_cli_with_a_tuner_file_in_a_read_only_folder_keeps_the_result(tmp_path, capsys):
    script = _write(tmp_path, SOR_CHAIN)
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        assert main(["solve", script, "--solver", "sor", "--tuner-file", str(folder / "t.json"), "-q"]) == 2
    finally:
        folder.chmod(0o700)
    cap = capsys.readouterr()
    assert cap.out.startswith("OPTIMAL")
    assert cap.err.strip() == f"error: cannot write tuner file {folder / 't.json'}: Permission denied"
