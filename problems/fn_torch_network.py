"""Smooth od.fn objective from a fixed tiny torch network: f(x) = ||tanh(W x) - t||^2 + 0.1 ||x||^2.

The target t is tanh(W x0) for a known x0, so the data term is zero at x0. Known answer: computed
independently with scipy BFGS on a numpy re-implementation of the same function (not optdsl).
"""
import numpy as np
import torch
from scipy.optimize import minimize

import optdsl as od

_rng = np.random.default_rng(2)
W = _rng.normal(size=(6, 3)) * 0.7
X0 = np.array([0.5, -0.3, 0.8])
T = np.tanh(W @ X0)


def _net(x):
    Wt = torch.as_tensor(W, dtype=x.dtype, device=x.device)
    Tt = torch.as_tensor(T, dtype=x.dtype, device=x.device)
    return torch.sum((torch.tanh(Wt @ x) - Tt) ** 2) + 0.1 * torch.sum(x ** 2)


def build() -> od.Model:
    m = od.Model("fn_torch_network")
    x = m.variable(3, name="x")
    m.minimize(od.fn(_net)(x))
    return m


def _f(x):
    return np.sum((np.tanh(W @ x) - T) ** 2) + 0.1 * x @ x


def _g(x):
    h = np.tanh(W @ x)
    return W.T @ (2 * (h - T) * (1 - h**2)) + 0.2 * x


_r = minimize(_f, np.zeros(3), jac=_g, method="BFGS", options={"gtol": 1e-12})
EXPECTED = {"objective": float(_r.fun), "rtol": 1e-6, "values": {"x": _r.x}, "atol_values": 1e-4}
SOLVERS = ["nlp", "lbfgs"]

if __name__ == "__main__":
    print(build().solve())
