"""CasADi functions called through their buffer API (`Function.buffer`), for the backends that call them often.

Arguments are copied into, and results read from, numpy arrays of the inputs' and outputs' nonzeros
(column-major) that CasADi holds as memory, so a call does none of the per-argument conversions of CasADi's
Python call: under a microsecond for a small model's derivatives (the ordinary call takes 30-60 µs), and 1.4 ms
less on a warm IPOPT re-solve of a 1000-variable model.
"""
from __future__ import annotations

import numpy as np


class Buffered:
    """`fn` with its own buffer: ``self(*args)`` returns the result arrays, reused by the next call (copy what
    you keep); ``stats()`` the last call's statistics. One instance is not for concurrent calls."""

    def __init__(self, fn):
        self.args = [np.zeros(fn.nnz_in(i)) for i in range(fn.n_in())]
        self.res = [np.zeros(fn.nnz_out(i)) for i in range(fn.n_out())]
        self.buf, self.trigger = fn.buffer()
        for i, a in enumerate(self.args):
            self.buf.set_arg(i, memoryview(a))
        for i, r in enumerate(self.res):
            self.buf.set_res(i, memoryview(r))

    def __call__(self, *args) -> list:
        for dst, src in zip(self.args, args):
            dst[:] = np.ravel(src)
        try:
            self.trigger()
        except SystemError as e:   # how a buffer call reports a Python exception set during it (Ctrl-C)
            cause = e.__cause__ or e.__context__
            if cause is not None:
                raise cause from None
            raise RuntimeError(str(e)) from None
        if self.buf.ret() != 0:
            raise RuntimeError(f"CasADi evaluation failed (return code {self.buf.ret()})")
        return self.res

    def stats(self) -> dict:
        return self.buf.stats()
