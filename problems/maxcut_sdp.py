"""Max-cut SDP relaxation (Goemans–Williamson): a symmetric matrix variable and a semidefinite constraint.

    maximize  (1/4) tr(L Y)   subject to   diag(Y) = 1,   Y >> 0

for the Laplacian L of a weighted graph on 7 nodes. The optimal value bounds the maximum cut from above
(checked against brute-force enumeration of all 2^6 cuts); random-hyperplane rounding of a factor of Y
gives a cut within 0.878 of it. The dual of ``psd`` is the PSD matrix Λ with Λ = Diag(ν) − L/4
(ν the dual of ``unit``) and tr(Λ Y) = 0. Reference: the same problem in cvxpy directly.
"""
import itertools

import cvxpy as cp
import numpy as np

import optdsl as od

N_NODES = 7
_rng = np.random.default_rng(5)
W = np.triu(np.round(_rng.uniform(0, 1, (N_NODES, N_NODES)) * (_rng.uniform(size=(N_NODES, N_NODES)) < 0.6), 2), 1)
W = W + W.T
LAPLACIAN = np.diag(W.sum(axis=1)) - W


def build() -> od.Model:
    m = od.Model("maxcut_sdp")
    Y = m.variable((N_NODES, N_NODES), symmetric=True, name="Y")
    m.maximize(od.trace(LAPLACIAN @ Y) / 4)
    m.subject_to(od.diag(Y) == 1, name="unit")
    m.subject_to(Y >> 0, name="psd")
    return m


def reference():
    """(objective, Y) of the same relaxation in cvxpy directly."""
    Y = cp.Variable((N_NODES, N_NODES), symmetric=True)
    prob = cp.Problem(cp.Maximize(cp.trace(LAPLACIAN @ Y) / 4), [cp.diag(Y) == 1, Y >> 0])
    prob.solve()
    return float(prob.value), Y.value


def max_cut_brute_force() -> float:
    """The best cut by enumeration (node 0 fixed on one side)."""
    best = 0.0
    for signs in itertools.product((-1.0, 1.0), repeat=N_NODES - 1):
        s = np.array((1.0,) + signs)
        best = max(best, float(s @ LAPLACIAN @ s) / 4)
    return best


_obj, _Y = reference()
EXPECTED = {"objective": _obj, "rtol": 1e-5, "status": "OPTIMAL"}
SOLVERS = ["cvxpy"]

if __name__ == "__main__":
    res = build().solve()
    print(res)
    print("SDP bound", res.objective, ">= max cut", max_cut_brute_force())
