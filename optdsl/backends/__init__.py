"""Backend adapters known to dispatch.

Every module in this package named ``*_backend.py`` is imported and its module-level ``BACKENDS`` list
is registered, so a new backend is one new file (see docs/writing-a-backend.md). Import errors in an
adapter are not swallowed: a broken adapter should fail loudly, not vanish from dispatch.
"""
import importlib
import pkgutil

from .base import Backend, Option

BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> None:
    if backend.name in BACKENDS:
        raise ValueError(f"a backend named {backend.name!r} is already registered")
    BACKENDS[backend.name] = backend


def _discover() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.endswith("_backend"):
            module = importlib.import_module(f"{__name__}.{info.name}")
            for b in getattr(module, "BACKENDS", ()):
                register_backend(b)


_discover()

__all__ = ["BACKENDS", "Backend", "Option", "register_backend"]
