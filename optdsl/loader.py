"""Load a model from a user's Python script: a module-level `Model` named `model`, or a `build()`."""
from __future__ import annotations

import ast
import os
import runpy
import sys
import traceback
from typing import Any

import numpy as np

from .errors import ModelError
from .model import Model


class ScriptError(ModelError):
    """The script could not be loaded, or holds no (or several) models."""


def parse_assignments(assignments: list[str] | None, what: str) -> dict[str, Any]:
    """``["N=224", "alpha=1e-3"]`` -> ``{"N": 224, "alpha": 0.001}`` (values are Python literals)."""
    out = {}
    for a in assignments or []:
        name, sep, text = a.partition("=")
        if not sep or not name.strip():
            raise ModelError(f"{what}: expected NAME=VALUE, got {a!r}")
        try:
            out[name.strip()] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            raise ModelError(f"{what} {name.strip()!r}: {text!r} is not a Python literal (number, string, list)") from None
    return out


def load_model(path: str, build_args: dict | None = None) -> tuple[Model, dict]:
    """The script's model; ``build_args`` are passed to its ``build(**build_args)`` (e.g. a problem size)."""
    if os.path.isdir(path):
        raise ScriptError(f"{path} is a directory: give the Python script that defines the model")
    if not os.path.isfile(path):
        raise ScriptError(f"no such file: {path}")
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        ns = runpy.run_path(path, run_name="__optdsl__")
    except ModelError as e:
        raise ScriptError(f"{path}: {e}") from None
    except SystemExit:
        raise ScriptError(f"{path} called sys.exit() while being loaded") from None
    except Exception as e:  # the user's code failed: show where, in their file, not in ours
        raise ScriptError(f"{path} raised {type(e).__name__}: {_one_line(e)}{_where(e, path)}") from None
    finally:
        sys.path.pop(0)
    if build_args and not callable(ns.get("build")):
        raise ScriptError(f"{path} has no build() function to pass {', '.join(build_args)} to")
    if isinstance(ns.get("model"), Model) and not build_args:
        return ns["model"], ns
    if callable(ns.get("build")):
        call = f"build({', '.join(f'{k}={v!r}' for k, v in (build_args or {}).items())})"
        try:
            m = ns["build"](**(build_args or {}))
        except ModelError as e:
            raise ScriptError(f"{path}: {call} failed: {e}") from None
        except SystemExit:
            raise ScriptError(f"{path}: {call} called sys.exit()") from None
        except Exception as e:  # anything the user's build() raises: one line, where it happened in their file
            raise ScriptError(f"{path}: {call} failed: {type(e).__name__}: {_one_line(e)}{_where(e, path)}") from None
        if not isinstance(m, Model):
            raise ScriptError(f"{path}: build() returned {type(m).__name__}, expected an optdsl Model")
        return m, ns
    models = [k for k, v in ns.items() if isinstance(v, Model) and not k.startswith("_")]
    if len(models) == 1:
        return ns[models[0]], ns
    if not models:
        raise ScriptError(f"{path} defines no model: define a module-level `model = od.Model(...)` or a function "
                          "`build()` that returns one")
    raise ScriptError(f"{path} defines several models ({', '.join(models)}): name the one to solve `model`, or "
                      "define `build()`")


def _one_line(e: BaseException) -> str:
    """The user's exception message on one line (a library's may span several)."""
    return " ".join(str(e).split()) or "(no message)"


def _where(e: BaseException, path: str) -> str:
    """" (line N: code)" of the last frame of ``e``'s traceback inside the user's file, or ""."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if os.path.abspath(f.filename) == os.path.abspath(path)]
    return f" (line {frames[-1].lineno}: {frames[-1].line})" if frames else ""


def set_params(model: Model, assignments: list[str]) -> None:
    """Apply ``NAME=VALUE`` strings (VALUE a Python literal: number or nested list) to parameters."""
    params = {p.name: p for p in model.parameters}
    for a in assignments or []:
        if "=" not in a:
            raise ModelError(f"--param expects NAME=VALUE, got {a!r}")
        name, text = a.split("=", 1)
        if name not in params:
            raise ModelError(f"--param {name}: model {model.name!r} has no parameter {name!r}; parameters: "
                             f"{', '.join(params) or 'none'}")
        try:
            value: Any = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise ModelError(f"--param {name}: cannot read {text!r} as a number or list") from None
        p = params[name]
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise ModelError(f"--param {name}: {text!r} is not a number or a list of numbers") from None
        p.value = np.broadcast_to(arr, p.shape) if arr.ndim == 0 else arr
