"""`Result`: what a solve returns, with a JSON round trip.

Termination status (why the solver stopped) and primal status (what the returned point is) are kept
apart, as in MathOptInterface: an ITERATION_LIMIT can still carry a FEASIBLE_POINT.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Optional

import numpy as np

from .solvers.common import Status

TerminationStatus = Status


class PrimalStatus(str, Enum):
    FEASIBLE_POINT = "FEASIBLE_POINT"
    INFEASIBLE_POINT = "INFEASIBLE_POINT"
    NO_SOLUTION = "NO_SOLUTION"
    UNKNOWN = "UNKNOWN"  # a point came back from a run that failed numerically: use with care


@dataclass
class Result:
    status: Status
    primal_status: PrimalStatus
    objective: Optional[float] = None
    values: dict[str, np.ndarray] = field(default_factory=dict)
    duals: dict[str, np.ndarray] = field(default_factory=dict)
    certificates: dict[str, Any] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    iterations: int = 0
    times: dict[str, float] = field(default_factory=dict)
    chain: list[str] = field(default_factory=list)
    solver: str = ""
    message: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the solve ended at a (locally) optimal point."""
        return self.status.is_success

    def value(self, var) -> np.ndarray:
        """Value of a variable (object or name)."""
        return self.values[getattr(var, "name", var)]

    def plot(self, path: Optional[str] = None, **kw):
        """Objective, violation and stationarity per iteration (see `optdsl.plotting`); returns the matplotlib
        Figure, and with ``path`` also writes it as a PNG (atomically)."""
        from .plotting import plot_result
        return plot_result(self, path, **kw)

    def _repr_html_(self) -> str:  # notebooks
        from .plotting import result_html
        return result_html(self)

    def _repr_latex_(self) -> str:
        from .plotting import result_latex
        return result_latex(self)

    def __repr__(self) -> str:
        obj = "None" if self.objective is None else f"{self.objective:.8g}"
        return (f"Result(status={self.status.value}, primal={self.primal_status.value}, objective={obj}, "
                f"solver={self.solver!r}, iterations={self.iterations})")

    # --- JSON --------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["status"] = self.status.value
        d["primal_status"] = self.primal_status.value
        d["values"] = {k: _encode(v) for k, v in self.values.items()}
        d["duals"] = {k: _encode(v) for k, v in self.duals.items()}
        d["certificates"] = {k: _plain(v) for k, v in self.certificates.items()}
        d["history"] = [{k: _plain(v) for k, v in h.items()} for h in self.history]
        d["extras"] = {k: _plain(v) for k, v in self.extras.items() if _jsonable(v)}
        d["objective"], d["times"] = _plain(d["objective"]), _plain(d["times"])
        return d

    def to_json(self, path: Optional[str] = None, **kw) -> str:
        """Strict JSON (``allow_nan=False``): a non-finite number is written as the string "NaN", "Infinity"
        or "-Infinity" and read back by :meth:`from_json` as the float. With ``path`` the file is replaced
        atomically (a failed write keeps the previous file; the error names the path)."""
        text = json.dumps(self.to_dict(), **({"indent": 1, "allow_nan": False} | kw))
        if path is not None:
            from .solvers.io import atomic_write
            atomic_write(path, text)
        return text

    def save(self, path: str) -> None:
        """Write the result to ``path`` as strict JSON (see :meth:`to_json`); :meth:`load` reads it back."""
        self.to_json(path)

    @classmethod
    def load(cls, path: str) -> "Result":
        """Read a result written by :meth:`save` (a file of another kind: a ValueError naming ``path``)."""
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        try:
            return cls.from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} is not a saved optdsl Result ({type(exc).__name__}: {exc})") from None

    @classmethod
    def from_dict(cls, d: dict) -> "Result":
        d = dict(d)
        d["status"] = Status(d["status"])
        d["primal_status"] = PrimalStatus(d["primal_status"])
        d["values"] = {k: _decode(v) for k, v in d.get("values", {}).items()}
        d["duals"] = {k: _decode(v) for k, v in d.get("duals", {}).items()}
        for k in ("objective", "certificates", "history", "extras", "times"):
            if k in d:
                d[k] = _restore(d[k])  # "NaN"/"Infinity" tokens back to floats
        return cls(**d)

    @classmethod
    def from_json(cls, text_or_path: str) -> "Result":
        s = text_or_path
        if not s.lstrip().startswith("{"):
            with open(s) as fh:
                s = fh.read()
        return cls.from_dict(json.loads(s))


def _encode(a) -> dict:
    a = np.asarray(a, dtype=float)
    return {"shape": list(a.shape), "data": [_num(x) for x in a.ravel().tolist()]}


def _decode(d) -> np.ndarray:
    data = np.array([float(x) for x in d["data"]], dtype=float)
    return data.reshape(d["shape"])


_TOKENS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf"),
           "nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}  # (lower case: older files)


def _num(x: float):
    if np.isfinite(x):
        return x
    return "NaN" if np.isnan(x) else ("Infinity" if x > 0 else "-Infinity")  # strict JSON has no inf/nan


def _plain(v):
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        return _plain(v.item())
    if isinstance(v, float) and not np.isfinite(v):
        return _num(v)
    if isinstance(v, Enum):
        return v.value
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _restore(v):
    if isinstance(v, str):
        return _TOKENS.get(v, v)
    if isinstance(v, dict):
        return {k: _restore(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_restore(x) for x in v]
    return v


def _jsonable(v) -> bool:
    try:
        json.dumps(_plain(v), allow_nan=False)
        return True
    except (TypeError, ValueError):
        return False
