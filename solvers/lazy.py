"""Heavy dependencies imported on first use instead of at import time.

cvxpy costs ~0.7 s and networkx ~0.15 s of ``import optdsl``; a model that never reaches a convex, robust, MIP
or DAG step should not pay them. ``lazy_module(name)`` returns a stand-in whose first attribute read imports
the module through the ordinary import system, and forwards every read to it. (Not the stdlib's
``importlib.util.LazyLoader``: before Python 3.12 two threads touching such a module first at the same time
can race, and optdsl solves from several threads.)"""
from __future__ import annotations

import importlib
import sys
from types import ModuleType


class _LazyModule(ModuleType):
    def __getattr__(self, attr: str):   # called only for names the stand-in does not hold yet
        # import_module, not sys.modules: it waits while another thread is still executing the module
        module = importlib.import_module(self.__name__)
        self.__dict__.update(module.__dict__)   # later reads are plain attribute hits
        return getattr(module, attr)

    def __dir__(self):
        return dir(importlib.import_module(self.__name__))


def lazy_module(name: str) -> ModuleType:
    """``name`` itself when already imported, else a stand-in that imports it when an attribute is first read."""
    return sys.modules.get(name) or _LazyModule(name)
