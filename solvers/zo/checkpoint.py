"""Fine-tuning checkpoints that hold data only: tensors, numbers, strings, lists and dicts.

A checkpoint is read with ``torch.load(weights_only=True)``, which refuses anything that would run code
while unpickling (a crafted file raises instead of executing). Besides the parameters, the optimizer state and
the run's history it carries what the resumed run must agree with, checked before anything is copied:

* ``parameters``: name -> shape of every trainable parameter;
* ``seed`` and ``settings`` (estimator, q, eps, lr, optimizer, ...): a resumed run with other values would
  not continue the same run.

Every problem (missing, truncated, corrupt, foreign or mismatched file) is one :class:`CheckpointError` line
naming the path and the field.
"""
from __future__ import annotations

import math
import numbers
import os
import pickle
import zipfile
from typing import Any, Sequence

import numpy as np
import torch

from ..io import atomic_write

FORMAT = "optdsl.zo.fine_tune/1"
_META_KEYS = ("step", "seed", "settings", "parameters", "history", "counts", "seeds", "projs")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used for this run; the message names the file and the field."""


def plain(v: Any, where: str) -> Any:
    """``v`` as JSON-able data (numbers, strings, bools, None, lists, dicts with str/int keys)."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return float(v)
    if isinstance(v, torch.Tensor) and v.numel() == 1:
        return v.item()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [plain(x, where) for x in v]
    if isinstance(v, dict):
        return {k if isinstance(k, (str, int)) else str(k): plain(x, where) for k, x in v.items()}
    raise TypeError(f"{where}: {type(v).__name__} cannot go into a checkpoint (expected numbers, strings, lists)")


def save(path: str, *, step: int, seed: int, settings: dict, named: Sequence, stepper_state: dict,
         history: list, counts: dict, seeds: list, projs: list) -> None:
    """Write a checkpoint atomically (a unique temporary in the same folder, fsync, rename)."""
    ck = {"format": FORMAT, "step": int(step), "seed": int(seed), "settings": plain(settings, "settings"),
          "parameters": {n: list(p.shape) for n, p in named},
          "params": {n: p.detach().cpu().clone() for n, p in named},
          "stepper": stepper_state, "history": plain(history, "history"), "counts": plain(counts, "counts"),
          "seeds": plain(seeds, "seeds"), "projs": plain(projs, "projs")}
    atomic_write(path, lambda fh: torch.save(ck, fh))


def check_folder(path: str) -> None:
    """Fail before training, not at the first checkpoint, when ``path`` cannot be written."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CheckpointError(f"checkpoint_path {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise CheckpointError(f"checkpoint_path {path} is a folder; expected a file name")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def load(path: str, *, seed: int, settings: dict, named: Sequence, steps: int) -> dict:
    """Read and check a checkpoint against this run; return it (tensors on the CPU)."""
    if not os.path.exists(path):
        raise CheckpointError(f"resume_from {path}: no such file")
    if os.path.isdir(path):
        raise CheckpointError(f"resume_from {path} is a folder; expected a checkpoint file")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc):
            raise CheckpointError(f"checkpoint {path} holds objects other than tensors and plain data; refusing "
                                  "to load it (it could run code)") from None
        raise CheckpointError(f"checkpoint {path} is corrupt ({_first_line(exc)})") from None
    except (EOFError, RuntimeError, zipfile.BadZipFile, OSError, ValueError, KeyError, AttributeError,
            TypeError, IndexError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}: "
                              f"{_first_line(exc)})") from None
    if not isinstance(ck, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(ck).__name__}, not a fine_tune checkpoint")
    if ck.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: format {ck.get('format')!r}, expected {FORMAT!r} (not written "
                              "by this version of fine_tune)")
    for key in _META_KEYS + ("params", "stepper"):
        if key not in ck:
            raise CheckpointError(f"checkpoint {path}: field {key!r} is missing")
    if not isinstance(ck["step"], int) or ck["step"] < 0:
        raise CheckpointError(f"checkpoint {path}: field 'step' is {ck['step']!r}, expected an integer >= 0")
    if ck["seed"] != seed:
        raise CheckpointError(f"checkpoint {path} was written with seed={ck['seed']}, this run has seed={seed}")
    for k, v in settings.items():
        saved = ck["settings"].get(k, "<missing>") if isinstance(ck["settings"], dict) else "<missing>"
        if not _same(saved, v):
            raise CheckpointError(f"checkpoint {path} was written with {k}={saved!r}, this run has {k}={v!r} "
                                  "(resume with the same settings, or start a new run)")
    have = {n: list(p.shape) for n, p in named}
    saved = ck["parameters"]
    if not isinstance(saved, dict) or not isinstance(ck["params"], dict):
        raise CheckpointError(f"checkpoint {path}: field 'parameters' is not a name -> shape table")
    missing, extra = sorted(set(have) - set(saved)), sorted(set(saved) - set(have))
    if missing or extra:
        parts = ([f"parameters not in the checkpoint: {', '.join(missing)}"] if missing else []) + \
                ([f"parameters not in the module: {', '.join(extra)}"] if extra else [])
        raise CheckpointError(f"checkpoint {path} does not fit this module: {'; '.join(parts)}")
    for n, shape in have.items():
        t = ck["params"].get(n)
        if list(saved[n]) != shape or not isinstance(t, torch.Tensor) or list(t.shape) != shape:
            got = list(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise CheckpointError(f"checkpoint {path}: parameter {n!r} has shape {got} in the checkpoint, "
                                  f"{shape} in the module")
    if ck["step"] > steps:
        raise CheckpointError(f"checkpoint {path} is at step {ck['step']}, past the {steps} steps asked for "
                              f"(steps / max_iter): ask for at least {ck['step']} to resume it")
    return ck


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b
