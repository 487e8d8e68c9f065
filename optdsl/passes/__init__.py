"""Rewrite passes, one per file. Every module here that defines a module-level ``PASS`` is part of the
set dispatch searches (`PASSES`); a new rewrite is one new file."""
import importlib
import pkgutil

from .base import Pass

PASSES: list[Pass] = []


def register_pass(p: Pass) -> None:
    if any(q.name == p.name for q in PASSES):
        raise ValueError(f"a pass named {p.name!r} is already registered")
    PASSES.append(p)


def _discover() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name != "base":
            module = importlib.import_module(f"{__name__}.{info.name}")
            if hasattr(module, "PASS"):
                register_pass(module.PASS)


_discover()

__all__ = ["PASSES", "Pass", "register_pass"]
