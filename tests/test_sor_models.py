"""Gallery models for sequences of linear systems (backend `sor`), solved through the modeling layer."""
import importlib.util
import json
import os
import shutil

import numpy as np
import pytest

import optdsl as od
from optdsl import TerminationStatus as Status
from optdsl.cli import main

ROOT = os.path.join(os.path.dirname(__file__), "..", "problems")


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_sequence(mod, T, *, context=False, **options):
    m = mod.build()
    params = {p.name: p for p in m.parameters}
    iters, omegas = [], []
    for vals in mod.sequence(T):
        for k, v in vals.items():
            params[k].value = v
        if context:
            options.update(context=vals["c"], context_range=mod.CONTEXT_RANGE)
        res = m.solve(solver="sor", **options)
        assert res.status == Status.OPTIMAL and res.certificates["residual"] <= 1e-8
        iters.append(res.iterations)
        omegas.append(res.extras["omega"])
    return m, iters, omegas


@pytest.mark.parametrize("name", ["sor_heat_sequence", "sor_shifted_laplacian_context"])
def test_gallery_first_system_matches_a_direct_solve(name):
    mod = load(name)
    m = mod.build()
    assert m.plan().backend.name == "sor"
    kw = {"context": float({p.name: p for p in m.parameters}["c"].value),
          "context_range": mod.CONTEXT_RANGE} if name.endswith("context") else {}
    res = m.solve(solver="sor", **kw)
    assert res.status.name == mod.EXPECTED["status"]
    for k, ref in mod.EXPECTED["values"].items():
        assert res.values[k] == pytest.approx(ref, rel=mod.EXPECTED["rtol"], abs=1e-7 * np.abs(ref).max())


def test_heat_sequence_learns_omega_and_beats_gauss_seidel():
    mod = load("sor_heat_sequence")
    _, auto, om_auto = run_sequence(mod, 30, omega="auto")
    _, gs, _ = run_sequence(mod, 30, omega=1.0)
    print(f"\nheat 12x12, 30 steps: total SOR sweeps omega=auto {sum(auto)}, omega=1.0 {sum(gs)}")
    # measured (deterministic; default tuner young): auto 674, omega=1.0 1939 (SmoothCB was 972)
    assert sum(auto) < 0.5 * sum(gs)
    # the learner settles on an over-relaxed omega: the last 10 steps mostly pick one omega > 1.2
    assert np.median(om_auto[-10:]) > 1.2
    # later steps stay cheaper than Gauss-Seidel's even with occasional exploration (a 1.95 trial costs ~200)
    assert sum(auto[-10:]) < 0.8 * sum(gs[-10:])


def test_contextual_sequence_learns_omega_with_the_shift_as_context():
    mod = load("sor_shifted_laplacian_context")
    _, auto, _ = run_sequence(mod, 30, context=True, omega="auto")
    _, gs, _ = run_sequence(mod, 30, context=True, omega=1.0)
    print(f"\nshifted Laplacian 10x10, 30 systems with context: total sweeps omega=auto {sum(auto)}, "
          f"omega=1.0 {sum(gs)}")
    # measured (default tuner young): auto 879, omega=1.0 2648 (SmoothCB was 1655)
    assert sum(auto) < 0.5 * sum(gs)


def test_tuner_state_persists_through_tuner_file(tmp_path):
    mod = load("sor_shifted_laplacian_context")
    path = str(tmp_path / "tuner.json")
    seq = list(mod.sequence(12))

    def step(m, vals):
        params = {p.name: p for p in m.parameters}
        for k, v in vals.items():
            params[k].value = v
        return m.solve(solver="sor", tuner_file=path, context=vals["c"], context_range=mod.CONTEXT_RANGE)

    m1 = mod.build()
    for vals in seq[:10]:
        step(m1, vals)
    state = json.load(open(path))              # valid JSON, written after every solve
    assert isinstance(state, dict) and state
    saved = str(tmp_path / "after10.json")
    shutil.copy(path, saved)
    nxt1 = [step(m1, vals).extras["omega"] for vals in seq[10:]]
    shutil.copy(saved, path)                    # a fresh model starts from the state after 10 solves
    m2 = mod.build()
    res2 = [step(m2, vals) for vals in seq[10:]]
    assert [r.extras["omega"] for r in res2] == nxt1
    assert res2[0].extras["round"] == 11        # it continued the run, it did not restart it
    # a fresh model without the file starts a new run
    os.remove(path)
    assert step(mod.build(), seq[10]).extras["round"] == 1


def test_cli_solves_the_heat_model_with_a_fixed_omega(tmp_path, capsys):
    out = str(tmp_path / "heat.json")
    rc = main(["solve", os.path.join(ROOT, "sor_heat_sequence.py"), "--solver", "sor", "--omega", "1.2",
               "--json", out])
    assert rc == 0
    res = od.Result.from_json(out)
    mod = load("sor_heat_sequence")
    assert res.status == Status.OPTIMAL and res.solver == "sor"
    assert np.asarray(res.values["u"]) == pytest.approx(mod.EXPECTED["values"]["u"], rel=1e-6, abs=1e-9)


def test_cli_rejects_omega_outside_0_2(capsys):
    rc = main(["solve", os.path.join(ROOT, "sor_heat_sequence.py"), "--solver", "sor", "--omega", "2.5"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "omega" in err and "2.5" in err and "(0, 2)" in err


def test_non_square_system_is_not_sent_to_sor():
    m = od.Model("rect")
    x = m.variable(4, name="x")
    A = np.arange(12.0).reshape(3, 4) + 5 * np.eye(3, 4)
    m.subject_to(A @ x == np.ones(3), name="sys")
    assert m.plan().backend.name != "sor"
    assert "sor: needs linear_system" in m.explain()
    with pytest.raises(od.NotSolvableError, match="linear_system"):
        m.solve(solver="sor")


def test_system_with_extra_structure_is_not_sent_to_sor():
    m = od.Model("nonlinear")
    x = m.variable(2, name="x")
    m.subject_to(x[0] ** 2 + x[1] == 1, name="curve")   # square, but not affine
    m.subject_to(x[0] - x[1] == 0, name="diag")
    assert "sor: needs linear_system" in m.explain()
    m = od.Model("with_inequality")
    x = m.variable(2, name="x")
    m.subject_to(np.array([[4.0, 1], [1, 3]]) @ x == np.ones(2), name="sys")
    m.subject_to(x[0] <= 5, name="cap")
    assert "not sor" in m.explain() and m.plan().backend.name != "sor"


def test_inconsistent_singular_system_is_not_reported_solved():
    # square and affine, so it dispatches to sor, but b is not in the range of A: SOR must not claim success
    m = od.Model("inconsistent")
    x = m.variable(2, name="x")
    m.subject_to(np.array([[1.0, 1], [1, 1]]) @ x == np.array([1.0, 2]), name="sys")
    res = m.solve(solver="sor")
    assert res.status == Status.ITERATION_LIMIT
    assert res.primal_status == od.PrimalStatus.INFEASIBLE_POINT
    assert res.certificates["residual"] > 0.1


@pytest.mark.parametrize("option,check", [("omega", "omega"), ("tol", "residual")])
def test_explicit_options_win_over_a_saved_tuner_file(tmp_path, option, check):
    mod = load("sor_heat_sequence")
    path = str(tmp_path / "tuner.json")
    mod.build().solve(solver="sor", tuner_file=path)            # an omega="auto", tol=1e-8 state on disk
    if option == "omega":
        res = mod.build().solve(solver="sor", omega=1.2, tuner_file=path)
        assert res.extras["omega"] == pytest.approx(1.2)          # gets the learned 1.259 instead
    else:
        res = mod.build().solve(solver="sor", tol=1e-3, tuner_file=path)
        assert 1e-4 < res.certificates["residual"] <= 1e-3        # gets 8.7e-9 (tol 1e-8 from the file)
