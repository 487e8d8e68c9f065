"""IPOPT's refusals of options, as one-line errors naming the option.

CasADi raises only "Invalid options were detected by Ipopt." (or "type mismatch") when IPOPT refuses an
option value; IPOPT's journal, which CasADi prints on ``sys.stdout``, says which option and its valid range or
settings, and would also corrupt ``optdsl solve --json -``. `build_nlpsol` builds the solver with that stdout
captured and turns a refusal into ``ValueError("solver 'ipopt': option tol = -1 is not valid: 0 < tol <= +inf
(default 1e-08)")``.
"""
from __future__ import annotations

import contextlib
import io
import re
import sys

from ..solvers.lazy import lazy_module

ca = lazy_module("casadi")   # (ipopt_backend reports a missing casadi through available(), not an ImportError)

_REFUSED = re.compile(r'Setting: "(?P<value>.*)" is not a valid setting for Option: (?P<name>\w+)\.')
_RANGE = re.compile(r"^(?P<lo>\S+) (?P<lop><=?) \((?P<default>[^)]*)\) (?P<hip><=?) (?P<hi>\S+)$")


def build_nlpsol(name: str, nlp: dict, options: dict) -> "ca.Function":
    """``ca.nlpsol(name, "ipopt", nlp, options)``, with a refused IPOPT option raised as a ValueError naming it."""
    error = None
    with _stdout_captured() as printed:
        try:
            solver = ca.nlpsol(name, "ipopt", nlp, options)
        except RuntimeError as e:
            error = e
    why = None if error is None else _reason(error, printed[0], options)
    if why is None and printed[0]:   # not a refusal: anything printed meanwhile goes where it was headed
        sys.stdout.write(printed[0])
        sys.stdout.flush()
    if error is None:
        return solver
    if why is None:
        raise error
    raise ValueError(f"solver 'ipopt': {why}") from None


def _reason(error: RuntimeError, printed: str, options: dict):
    last = str(error).strip().splitlines()[-1]
    if "IPOPT option" in last or "Invalid_Option" in last:       # an unknown name (CasADi's own check)
        return last.split(": ", 1)[-1]
    m = _REFUSED.search(printed)
    if m:
        return f"option {m['name']} = {m['value']} is not valid: {_valid(printed[m.end():], m['name'])}"
    if "type mismatch" in str(error):
        for key, value in options.items():
            if key.startswith("ipopt.") and _refuses(key, value):
                return f"option {key[len('ipopt.'):]} = {value!r} has the wrong type for IPOPT"
    return None


def _valid(doc: str, name: str) -> str:
    """The valid range or settings from IPOPT's option documentation printed after a refusal."""
    lines = [ln.strip() for ln in doc.splitlines()]
    for ln in lines:
        r = _RANGE.match(ln)
        if r:
            return f"{r['lo']} {r['lop']} {name} {r['hip']} {r['hi']} (default {r['default']})"
    if "Valid Settings:" in lines:
        settings = []
        for ln in lines[lines.index("Valid Settings:") + 1:]:
            if not ln or ln.startswith("Default"):
                break
            settings.append(ln.split(" ", 1)[0])
        return "one of " + ", ".join(settings)
    return "see IPOPT's documentation of the option"


def _refuses(key: str, value) -> bool:
    x = ca.SX.sym("x")
    with _stdout_captured():
        try:
            ca.nlpsol("probe", "ipopt", {"x": x, "f": x * x},
                      {"print_time": False, "ipopt.print_level": 0, "ipopt.sb": "yes", key: value})
        except RuntimeError:
            return True
    return False


@contextlib.contextmanager
def _stdout_captured():
    """``sys.stdout`` sent to a buffer for the block (CasADi prints IPOPT's journal through Python's stdout);
    yields a list that then holds what was written."""
    printed: list[str] = []
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield printed
    finally:
        printed.append(buffer.getvalue())
