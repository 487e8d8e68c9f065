"""Start-up cost and presentation of the CLI: `import optdsl` and `optdsl --help` load no heavy library, every
public name is still reachable, help text is clean, `bench NAME --help` does not start a benchmark, and
`optdsl solvers` is complete in a pipe at 80 columns.

CPU time itself is measured by benchmarks/bench_overhead.py, not asserted here: what makes start-up slow is
importing torch/cvxpy/sympy/scipy, and that is what these tests check, in fresh interpreters.
"""
import os
import re
import subprocess
import sys
import textwrap

import pytest

import optdsl as od
from optdsl import cli

HEAVY = ("torch", "cvxpy", "sympy", "scipy", "casadi", "matplotlib", "networkx")


def _modules_after(code: str) -> set:
    """The heavy top-level packages loaded by ``code`` in a fresh interpreter."""
    probe = code + "\nimport sys; print(sorted({m.split('.')[0] for m in sys.modules} & set(%r)))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={**os.environ, "COLUMNS": "80"})
    return set(eval(out.stdout.strip().splitlines()[-1]))


def test_import_optdsl_loads_no_heavy_library():
    assert _modules_after("import optdsl") == set()


def test_help_loads_no_heavy_library():
    code = textwrap.dedent("""
        import contextlib, io
        from optdsl.cli import main
        for argv in (["--help"], ["bench", "--help"], ["inspect", "--help"], ["bench", "foundation", "--help"]):
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    main(argv)
                except SystemExit:
                    pass
        """)
    assert _modules_after(code) == set()


def test_every_public_name_resolves():
    for name in od.__all__:
        value = getattr(od, name)
        assert not isinstance(value, type(os)), f"od.{name} is a module, not the exported object"
    from optdsl import Model, between, sum_squares  # noqa: F401 - `from optdsl import X` goes through __getattr__
    assert set(od.__all__) <= set(dir(od))
    with pytest.raises(AttributeError, match="no attribute 'no_such_atom'"):
        od.no_such_atom  # noqa: B018


def test_every_expression_atom_is_exported():
    import optdsl.expr as E
    internal = {"Leaf", "Op", "as_expr", "StructuralConstraint", "PSDConstraint", "BetweenConstraint"}
    missing = set(E.__all__) - internal - set(od.__all__)
    assert not missing, f"optdsl.expr names missing from optdsl._EXPORTS: {sorted(missing)}"


def _solve_help() -> str:
    return cli.build_parser()._subparsers._group_actions[0].choices["solve"].format_help()


def test_solve_help_is_clean():
    text = _solve_help()
    assert "OPT_" not in text.replace("IPOPT_", ""), "internal dest names leak into the metavars"
    # one entry per flag: the help of each option mentions its default at most once
    entries = re.split(r"\n  (?=-)", text)
    # (an option several backends share may state one default per backend)
    owners = lambda e: len(re.search(r"\[([^\]]*)\]", e).group(1).split(", ")) if "[" in e else 1
    doubled = [e.split()[0] for e in entries if len(re.findall(r"\(default", e)) > owners(e)]
    assert not doubled, f"'(default' twice in: {doubled}"
    assert "(default: None)" not in text
    assert "--plot PNG" in text and "--lr LR" in text and "--symmetric {true,false}" in text


def test_help_without_backend_options_still_parses_the_other_commands():
    p = cli.build_parser(backend_options=False)
    args = p.parse_args(["inspect", "model.py", "--solver", "nlp"])
    assert args.command == "inspect" and args.solver == "nlp"
    with pytest.raises(SystemExit):
        p.parse_args(["solve", "model.py", "--lr", "0.1"])   # backend flags only exist when solving


def test_bench_help_shows_the_benchmarks_help_without_running_it(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(cli.subprocess, "call", lambda argv, *a, **k: calls.append(argv) or 0)
    # a script without an argument parser: its docstring, and nothing is started
    assert cli.main(["bench", "foundation", "--help"]) == 0
    assert calls == []
    assert "Foundation benchmarks" in capsys.readouterr().out
    # a script with argparse gets --help itself (and prints its own usage)
    assert cli.main(["bench", "sor", "--help"]) == 0
    assert len(calls) == 1 and calls[0][-1] == "--help" and calls[0][-2].endswith("bench_sor.py")


def test_solvers_listing_is_complete_in_a_pipe_at_80_columns(monkeypatch):
    import io
    from rich.console import Console
    pipe = io.StringIO()   # not a terminal: what `optdsl solvers | cat` gets (rich's default width there is 80)
    monkeypatch.setattr(cli, "console", Console(file=pipe, highlight=False))
    monkeypatch.delenv("COLUMNS", raising=False)
    assert cli.main(["solvers"]) == 0
    out = pipe.getvalue()
    lines = out.splitlines()
    assert "\x1b[" not in out and max(map(len, lines)) <= 80, [l for l in lines if len(l) > 80]
    assert "…" not in out
    from optdsl.backends import BACKENDS
    flat = " ".join(out.split())
    for name, b in BACKENDS.items():
        assert re.search(rf"^{re.escape(name)}  ", out, re.M), name
        assert " ".join(b.description.split()) in flat, f"{name}'s description is cut"
        for option in b.options:
            assert option in flat
