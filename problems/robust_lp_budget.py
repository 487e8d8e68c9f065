"""Robust LP with a budget ("Gamma") uncertainty set (Bertsimas & Sim, "The price of robustness",
Oper. Res. 52, 2004): each coefficient of the capacity rows may deviate by up to its radius, but at most
Gamma = 1.5 of them (in total, l1 budget) at once:

    maximize   c^T x
    subject to (a_i + diag(r_i) z)^T x <= b_i  for all z in Z = {||z||_inf <= 1, ||z||_1 <= 1.5},  i = 1, 2
               x >= 0

Known answer: a constraint affine in z holds on the polytope Z iff it holds at its vertices, so EXPECTED is
the LP with one copy of each row per point of a finite list containing every vertex of Z (all points with
entries in {0, +-1/2, +-1} that lie in Z), solved directly in cvxpy — enumeration, not duality, and not optdsl.
"""
import itertools

import cvxpy as cp
import numpy as np

import optdsl as od

GAMMA = 1.5
A = np.array([[2.0, 1.0, 3.0, 1.0],
              [1.0, 2.0, 1.0, 2.0]])
R = np.array([[0.6, 0.3, 0.9, 0.2],
              [0.5, 0.4, 0.2, 0.8]])
B = np.array([6.0, 5.0])
C = np.array([3.0, 2.0, 4.0, 2.5])


def build() -> od.Model:
    m = od.Model("robust_lp_budget")
    x = m.variable(4, lb=0, name="x")
    z = m.uncertain(4, within=od.Budget(np.zeros(4), radius=1.0, gamma=GAMMA), name="z")
    m.maximize(C @ x)
    # row i: sum_j (A_ij + R_ij z_j) x_j <= B_i, for every z in the budget set
    m.subject_to(A @ x + (R * z) @ x <= B, name="cap")
    return m


def budget_points(n=4, gamma=GAMMA):
    frac = gamma - np.floor(gamma)
    vals = sorted({0.0, 1.0, -1.0, frac, -frac})
    pts = [np.array(p) for p in itertools.product(vals, repeat=n)]
    return np.array([p for p in pts if np.abs(p).sum() <= gamma + 1e-12])


def _reference():
    x = cp.Variable(4)
    Z = budget_points()
    cons = [x >= 0] + [(A + R * z) @ x <= B for z in Z]
    prob = cp.Problem(cp.Maximize(C @ x), cons)
    prob.solve()
    return prob.value, x.value


_obj, _x = _reference()
EXPECTED = {"objective": float(_obj), "rtol": 1e-6, "values": {"x": _x}, "status": "OPTIMAL"}
SOLVERS = ["cvxpy"]          # through the robust_to_counterpart rewrite

if __name__ == "__main__":
    print(build().solve())
