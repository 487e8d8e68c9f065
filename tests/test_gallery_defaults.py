"""The gallery is solved by its defaults: every problems/*.py and problems/hs/*.py through a plain ``m.solve()``
(no OPTIONS) and through ``optdsl solve FILE`` (in process, via ``optdsl.cli.main``), checked against the file's
EXPECTED with the conformance suite's own checker, and the CLI's exit code against the status EXPECTED states
(0 for OPTIMAL/LOCALLY_OPTIMAL or no stated status; 1 for INFEASIBLE, UNBOUNDED and ITERATION_LIMIT -- the
CLI's documented contract).

Files whose default solve takes more than ~2 s on a busy 2-core machine run under ``-m slow``.
"""
import inspect
import re
from pathlib import Path

import pytest

from optdsl.cli import main
from test_gallery_conformance import _MODULES, OPTIMAL_LIKE, ROOT, _load, check_expected

HS = {f"hs/{p.stem}": _load(p) for p in sorted((ROOT / "hs").glob("*.py"))}
FILES = {**{name: ROOT / f"{name}.py" for name in _MODULES}, **{name: ROOT / f"{name}.py" for name in HS}}
MODULES = {**_MODULES, **HS}

# default solve measured > ~1.5 s on a busy 2-core box (bilevel_hyper_cleaning: 155 s; zo: 4-12 s; dag_mlp 13 s)
SLOW = {
    "bilevel_constrained_lower", "bilevel_hyper_cleaning", "bilevel_quadratic_toy", "dag_logistic", "dag_mlp",
    "saddle_finite_sum", "saddle_matrix_game", "zo_blackbox_simulator", "zo_logistic_digits", "zo_mlp_finetune",
    "zo_noisy_nonsmooth",
}
# failures owned by colleagues' open work (see the report of issue 13); not strict, so a fix just passes
KNOWN = {
}


def _cases():
    out = []
    for name in sorted(FILES):
        mod = MODULES[name]
        if any(p.default is p.empty for p in inspect.signature(mod.build).parameters.values()):
            continue   # build() needs arguments: has its own test
        marks = [pytest.mark.slow] if name in SLOW or getattr(mod, "SLOW", False) else []
        if name in KNOWN:
            marks.append(pytest.mark.xfail(strict=False, reason=KNOWN[name]))
        out.append(pytest.param(name, marks=marks, id=name))
    return out


def _exit_code(want) -> int:
    return 0 if want is None or want in OPTIMAL_LIKE else 1


@pytest.mark.parametrize("name", _cases())
def test_plain_solve_and_cli_meet_expected(name, capsys):
    mod = MODULES[name]
    model = mod.build()
    res = model.solve()
    check_expected(mod, model, res, res.solver)
    want = mod.EXPECTED.get("status")
    assert (0 if res.status.is_success else 1) == _exit_code(want), (res.status, res.message)
    capsys.readouterr()
    rc = main(["solve", str(FILES[name]), "-q"])
    out = capsys.readouterr().out
    assert rc == _exit_code(want), out
    match = re.search(r"^(\w+) objective=(\S+)", out, re.M)
    assert match and match.group(1) == res.status.value, out   # the CLI runs the same default solve


def test_every_gallery_file_is_covered():
    listed = {p.stem for p in ROOT.glob("*.py")} | {f"hs/{p.stem}" for p in (ROOT / "hs").glob("*.py")}
    covered = {c.values[0] for c in _cases()}
    skipped = {n for n in listed - covered
               if n not in MODULES or any(p.default is p.empty
                                          for p in inspect.signature(MODULES[n].build).parameters.values())}
    assert listed - covered == skipped
    assert set(KNOWN) <= covered and Path(ROOT).is_dir()
