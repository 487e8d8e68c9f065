"""Backend adapters: capabilities as data, plus compile/solve on a `Problem`.

A backend *supports* features (things it can handle: ``bounds``, ``equality``, ``blackbox``, ...),
*requires* properties (``smooth``, ``convex``, ``cvxpy_form``, ...), and may exist for a declared
*structure* (``bilevel``, ``minmax``, ...), which the model must then have. It accepts a problem when every
feature of the problem is supported and every requirement is a property of the problem. Dispatch reads
these attributes; nothing else about a backend is special-cased.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..graph import Tags
from ..problem import Problem, RawSolution


@dataclass(frozen=True)
class Option:
    """A solver option: its type, default and one-line help (the CLI builds its flags from these)."""

    type: type
    default: Any
    help: str
    choices: Optional[tuple] = None


class Backend:
    name: str = "backend"
    description: str = ""
    supports: frozenset = frozenset()
    requires: frozenset = frozenset()
    structure: frozenset = frozenset()   # declared structures (features) the backend exists for and needs
    cost: float = 1.0
    devices: tuple = ("cpu", "cuda")
    certificates: tuple = ()
    options: dict[str, Option] = {}

    def available(self) -> Optional[str]:
        """None when usable here, else why not (a missing package, ...)."""
        return None

    def reject_reason(self, problem: Problem, tags: Tags) -> Optional[str]:
        if self.structure <= tags.features <= self.supports and self.requires <= tags.properties:
            return None   # (the common verdicts, without building the messages below)
        absent = sorted(self.structure - tags.features)
        if absent:
            return f"handles models with {', '.join(absent)} only"
        missing = sorted(tags.features - self.supports)
        if missing:
            return f"cannot handle {', '.join(missing)}"
        lacking = sorted(self.requires - tags.properties)
        if lacking:
            why = "; ".join(f"{p}: {tags.notes[p]}" for p in lacking if p in tags.notes)
            return f"needs {', '.join(lacking)}" + (f" ({why})" if why else "")
        return None

    def size_cost(self, problem: Problem, tags: Tags) -> Optional[tuple[float, str]]:
        """Extra dispatch cost on this problem (a measured size effect) and the reason explain() prints;
        None when the fixed `cost` holds."""
        return None

    def compile(self, problem: Problem, *, device: str = "cpu", dtype: Any = None) -> Any:
        """Work done once per model structure (re-solves reuse it)."""
        return problem

    def solve(self, compiled: Any, problem: Problem, options: dict, callback: Optional[Callable]) -> RawSolution:
        raise NotImplementedError

    def check_options(self, options: dict) -> dict:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} for solver {self.name!r}; "
                             f"it takes: {', '.join(sorted(self.options)) or 'none'}")
        out = {k: o.default for k, o in self.options.items()}
        for k, v in options.items():
            o = self.options[k]
            if isinstance(v, str) and o.type is not str:  # from the CLI, where shared flags are strings
                v = _coerce(k, v, o.type, self.name)
            if v is not None and o.choices and v not in o.choices:
                raise ValueError(f"option {k}={v!r} for solver {self.name!r}: expected one of {o.choices}")
            out[k] = v
        return out


def _coerce(name: str, text: str, typ: type, backend: str):
    try:
        if typ is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        return typ(text)
    except ValueError:
        raise ValueError(f"option {name}={text!r} for solver {backend!r}: expected {typ.__name__}") from None
