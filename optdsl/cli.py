"""`optdsl solve | inspect | solvers | bench` — the command-line front end.

Exit codes: 0 solved (optimal or locally optimal), 1 no solution (infeasible, unbounded, a limit,
numerical trouble), 2 usage or model error. Errors are one readable message, never a traceback.
"""
from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import textwrap
from typing import Optional

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import OptdslError

# torch, cvxpy, sympy and scipy load with the backends and the model loader, which are imported inside the
# commands that need them: `optdsl --help`, `optdsl bench` and usage errors stay well under a second of CPU.

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

# Options every backend understands get fixed flags; the rest come from the backends' option tables.
_COMMON = {"max_iter", "tol", "time_limit"}
_RESERVED = _COMMON | {"solver", "device", "dtype", "param", "json", "quiet", "verbose", "file"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _parse_bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {s!r}")


def build_parser(backend_options: bool = True) -> argparse.ArgumentParser:
    """The command-line parser; ``backend_options=False`` leaves out the backends' flags of ``solve`` (listing
    them imports every backend, which only ``solve`` needs)."""
    p = argparse.ArgumentParser(prog="optdsl", description="Solve optimization models written with optdsl.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("solve", help="solve the model in a Python script")
    s.add_argument("file", help="a script defining `model = od.Model(...)` or `build()`")
    s.add_argument("--solver", help="backend name (default: automatic; `optdsl solvers` lists them)")
    s.add_argument("--device", default="cpu", help="torch device for tensor backends (cpu, cuda, cuda:1)")
    s.add_argument("--dtype", default=None, choices=["float32", "float64"], help="tensor dtype")
    s.add_argument("--max-iter", type=int, help="iteration limit")
    s.add_argument("--tol", type=float, help="optimality tolerance")
    s.add_argument("--time-limit", type=float, help="wall-clock limit in seconds")
    s.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="set a parameter before solving (repeatable); VALUE is a number or a list")
    s.add_argument("--build", action="append", default=[], metavar="NAME=VALUE",
                   help="keyword argument for the script's build() (repeatable), e.g. a problem size N=224")
    s.add_argument("--json", metavar="OUT", help="write the Result as JSON to OUT ('-': to stdout, the report to stderr)")
    s.add_argument("--plot", metavar="PNG", help="draw objective, violation and stationarity per iteration into PNG")
    verbosity = s.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true", help="print only the status line")
    verbosity.add_argument("-v", "--verbose", action="store_true", help="also print the dispatch explanation and history")
    if backend_options:
        _add_backend_options(s)

    i = sub.add_parser("inspect", help="show the model's math, LaTeX, tags, graph and dispatch")
    i.add_argument("file")
    i.add_argument("--solver", help="explain dispatch for this backend")
    i.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")

    sub.add_parser("solvers", help="list backends, their capabilities and availability")

    bch = sub.add_parser("bench", help="run a benchmark script from benchmarks/")
    bch.add_argument("name", nargs="?", help="benchmark name (bench_NAME.py); omit to list them")
    bch.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")
    return p


def _add_backend_options(s: argparse.ArgumentParser) -> None:
    """One flag per backend option name. A name several backends share (method, seed, ...) is a plain string
    here; the chosen backend validates and converts it (Backend.check_options), so each keeps its own choices."""
    from .backends import BACKENDS
    owners: dict[str, list] = {}
    for bname, b in sorted(BACKENDS.items()):
        for oname, opt in b.options.items():
            if oname not in _RESERVED:
                owners.setdefault(oname, []).append((bname, opt))
    group = s.add_argument_group("backend options (see `optdsl solvers`)")
    for oname, uses in sorted(owners.items()):
        names = ", ".join(b for b, _ in uses)
        if len(uses) == 1:
            opt = uses[0][1]
            typ = _parse_bool if opt.type is bool else opt.type
            # choices show themselves; otherwise the flag's own name, never the internal dest (opt_...)
            metavar = None if opt.choices else ("{true,false}" if opt.type is bool else oname.upper())
            group.add_argument(_flag(oname), dest=f"opt_{oname}", type=typ, choices=opt.choices, metavar=metavar,
                               help=f"[{names}] {_with_default(opt.help, opt.default)}")
        else:
            group.add_argument(_flag(oname), dest=f"opt_{oname}", type=str, metavar=oname.upper(),
                               help=f"[{names}] " + "; ".join(f"{b}: {_with_default(o.help, None)}" for b, o in uses))


def _with_default(text: str, default) -> str:
    """The help text with its default appended, unless it has none or the text already states it."""
    text = text.replace("%", "%%")  # argparse formats help with %
    if default is None or "default" in text.lower():
        return text
    return f"{text} (default: {default})"


def main(argv: Optional[list[str]] = None) -> int:
    _no_kill_on_file_size_limit()
    argv = sys.argv[1:] if argv is None else list(argv)
    # only `solve` parses backend options; every other command (and `optdsl --help`) skips importing them
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(backend_options=command == "solve")
    args = parser.parse_args(argv)
    try:
        return {"solve": cmd_solve, "inspect": cmd_inspect, "solvers": cmd_solvers, "bench": cmd_bench}[args.command](args)
    except (OptdslError, ValueError, TypeError, OSError, MemoryError, RecursionError) as e:
        _error(e)  # bad input, an unwritable file (FileWriteError names the path), a model too large
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 1
    except Exception as e:  # noqa: BLE001 - anything else still gets one line; OPTDSL_TRACEBACK=1 shows it
        if os.environ.get("OPTDSL_TRACEBACK"):
            raise
        _error(f"{type(e).__name__}: {e} (unexpected; set OPTDSL_TRACEBACK=1 to see the traceback)")
        return 2


def _error(e) -> None:
    text = str(e) if not isinstance(e, MemoryError) else f"out of memory ({e or 'the model is too large'})"
    if isinstance(e, RecursionError):
        text = f"expression nested too deeply ({e})"
    # user text (file, variable and constraint names) is escaped: "[/]" or "[bold]" print as written
    err_console.print(f"[bold red]error:[/] {escape(text)}")


def _no_kill_on_file_size_limit() -> None:
    """Under ``ulimit -f`` the kernel kills a process whose write passes the limit (SIGXFSZ); ignoring the
    signal turns it into an EFBIG error, reported as one line while the previous file stays intact."""
    import signal
    try:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    except (AttributeError, ValueError, OSError):  # no such signal here, or not the main thread
        pass


def _options(args) -> dict:
    opts = {k: getattr(args, k) for k in ("max_iter", "tol", "time_limit") if getattr(args, k) is not None}
    for k, v in vars(args).items():
        if k.startswith("opt_") and v is not None:
            opts[k[4:]] = v
    return opts


def cmd_solve(args) -> int:
    from .loader import load_model, parse_assignments, set_params
    model, _ = load_model(args.file, parse_assignments(args.build, "--build"))
    set_params(model, args.param)
    json_to_stdout = args.json == "-"   # (then stdout carries the JSON alone; the report goes to stderr)
    report = err_console if json_to_stdout else console
    if args.verbose:
        report.print(str(model), markup=False)
        report.print(model.explain(args.solver), markup=False)
    progress = _Progress(enabled=not args.quiet and sys.stderr.isatty())
    with progress:
        res = model.solve(args.solver, device=args.device, dtype=args.dtype, callback=progress.update, **_options(args))
    if args.quiet:  # the result is printed before any file is written: a failed write loses nothing
        report.print(f"{res.status.value} objective={_fmt(res.objective)}")
    else:
        print_result(res, verbose=args.verbose, out=report)
    if json_to_stdout:
        sys.stdout.write(res.to_json() + "\n")
        sys.stdout.flush()
    elif args.json:
        res.to_json(args.json)  # atomic; an unwritable path is one line naming it (exit 2)
    if args.plot:
        res.plot(path=args.plot)  # atomic, like --json
    write_errors = res.extras.get("write_errors", [])  # files a backend could not write (--edges-csv, tuner, ...)
    for problem in write_errors:
        err_console.print(f"[bold red]error:[/] {escape(problem)}")
    if write_errors:
        return 2
    return 0 if res.status.is_success else 1


def cmd_inspect(args) -> int:
    from .loader import load_model, set_params
    model, _ = load_model(args.file)
    set_params(model, args.param)
    console.rule("model")
    console.print(str(model), markup=False)
    console.rule("LaTeX")
    console.print(model.to_latex(), markup=False)
    console.rule("problem graph")
    from .graph import summary
    g = model.graph()
    console.print(summary(g), markup=False)
    for n, d in g.nodes(data=True):
        if d.get("kind") in ("objective", "constraint"):
            console.print(f"  {n} <- {', '.join(sorted(g.predecessors(n)))}", markup=False)
    console.rule("dispatch")
    console.print(model.explain(args.solver), markup=False)
    return 0


def cmd_solvers(args) -> int:
    """One block per backend, every field wrapped to the terminal's width (80 columns in a pipe), so nothing
    is cut off the way table cells are."""
    from .backends import BACKENDS
    width = max(40, min(console.width, 100))
    for name, b in sorted(BACKENDS.items()):
        why = b.available()
        state = "[green]available[/]" if why is None else f"[red]not available:[/] {escape(why)}"
        console.print(f"[bold]{escape(name)}[/]  {state}")
        fields = [("", b.description), ("structure", _listing(b.structure)), ("handles", _listing(b.supports)),
                  ("requires", _listing(b.requires)), ("devices", ", ".join(b.devices)),
                  ("options", ", ".join(b.options) or "-")]
        for label, text in fields:
            head = f"    {label}: " if label else "    "
            console.print(textwrap.fill(text, width, initial_indent=head, subsequent_indent=" " * len(head),
                                        break_on_hyphens=False), markup=False, highlight=False)
        console.print()
    console.print("`optdsl solve FILE --solver NAME` forces a backend; `optdsl solve --help` lists the options.")
    return 0


def _listing(names) -> str:
    return ", ".join(sorted(names)) or "-"


def cmd_bench(args) -> int:
    # the benchmarks shipped with this optdsl first: a ./benchmarks in whatever folder the command runs from
    # is only a fallback (it is someone's code, and running it by a familiar name would surprise)
    roots = [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"),
             os.path.join(os.getcwd(), "benchmarks")]
    root = next((r for r in roots if os.path.isdir(r)), None)
    if root is None:
        raise OptdslError("no benchmarks/ folder found (run from a source checkout of optdsl)")
    scripts = sorted(glob.glob(os.path.join(root, "bench_*.py")))
    names = [os.path.basename(s)[6:-3] for s in scripts]
    if not args.name:
        console.print("benchmarks: " + ", ".join(names))
        return 0
    if args.name not in names:
        raise OptdslError(f"no benchmark {args.name!r}; available: {', '.join(names)}")
    script = os.path.join(root, f"bench_{args.name}.py")
    if {"-h", "--help"} & set(args.rest) and not _parses_arguments(script):
        # a script without an argument parser would ignore --help and start measuring: show its docstring
        console.print(_docstring(script) or f"{script}: no description", markup=False, soft_wrap=True)
        return 0
    return subprocess.call([sys.executable, os.path.join(root, f"bench_{args.name}.py"), *args.rest])


def _parses_arguments(script: str) -> bool:
    with open(script, encoding="utf-8") as fh:
        return "argparse" in fh.read()


def _docstring(script: str) -> Optional[str]:
    import ast
    with open(script, encoding="utf-8") as fh:
        return ast.get_docstring(ast.parse(fh.read()))


def print_result(res, verbose: bool = False, out: Console = None) -> None:
    out = out or console
    color = "green" if res.status.is_success else "red"
    out.print(f"[bold {color}]{res.status.value}[/]  primal: {res.primal_status.value}  "
                  f"objective: {_fmt(res.objective)}")
    out.print(f"chain: {escape(' -> '.join(res.chain))}   iterations: {res.iterations}   "
                  f"compile {res.times.get('compile', 0):.3f}s  solve {res.times.get('solve', 0):.3f}s")
    if res.message:
        out.print(f"message: {res.message}", markup=False)
    if res.values:
        t = Table(title="variables")
        t.add_column("name")
        t.add_column("shape")
        t.add_column("value")
        for k, v in res.values.items():
            t.add_row(escape(k), str(v.shape), _arr(v))
        out.print(t)
    if res.duals:
        t = Table(title="constraints")
        t.add_column("name")
        t.add_column("dual")
        for k, v in res.duals.items():
            t.add_row(escape(k), _arr(v))
        out.print(t)
    edges = res.extras.get("edges")
    if edges:  # DAG models: the learned graph, strongest edges first
        t = Table(title=f"edges ({len(edges)})")
        for col in ("source", "target", "weight"):
            t.add_column(col)
        for i, j, w in edges[: None if verbose else 20]:
            t.add_row(escape(str(i)), escape(str(j)), f"{w:.4g}")
        out.print(t)
        if len(edges) > 20 and not verbose:
            out.print(f"... {len(edges) - 20} more (-v for all, --edges-csv to save)")
    if res.certificates:
        cert = ", ".join(f"{k}={_fmt(v)}" for k, v in res.certificates.items())
        out.print(f"certificates: {cert}", markup=False)
    if verbose and res.history:
        out.print(f"history: {len(res.history)} records; last: {res.history[-1]}", markup=False)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, (float, np.floating)):
        return f"{v:.8g}"
    return str(v)


def _arr(a: np.ndarray, limit: int = 8) -> str:
    a = np.asarray(a)
    if a.ndim == 0:
        return f"{float(a):.6g}"
    flat = ", ".join(f"{x:.6g}" for x in a.ravel()[:limit])
    return f"[{flat}{', ...' if a.size > limit else ''}]"


class _Progress:
    """A live status line for iterative backends (only on a terminal; silent in CI and pipes)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.status = None

    def __enter__(self):
        if self.enabled:
            self.status = err_console.status("solving...")
            self.status.__enter__()
        return self

    def __exit__(self, *exc):
        if self.status is not None:
            self.status.__exit__(*exc)

    def update(self, info: dict):
        if self.status is not None:
            metrics = [(k, v) for k, v in info.items()
                       if k not in ("iteration", "values") and isinstance(v, (int, float, np.floating))][:5]
            self.status.update(f"iteration {info.get('iteration')}  " + "  ".join(f"{k} {_fmt(v)}" for k, v in metrics))
        return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
