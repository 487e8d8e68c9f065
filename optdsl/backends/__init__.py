"""Backend adapters known to dispatch. Later capabilities register theirs with `register_backend`."""
from .base import Backend, Option
from .cvxpy_backend import CvxpyBackend
from .nlp_backend import LbfgsBackend, NlpBackend

BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> None:
    if backend.name in BACKENDS:
        raise ValueError(f"a backend named {backend.name!r} is already registered")
    BACKENDS[backend.name] = backend


for _b in (CvxpyBackend(), LbfgsBackend(), NlpBackend()):
    register_backend(_b)

__all__ = ["BACKENDS", "Backend", "Option", "register_backend"]
