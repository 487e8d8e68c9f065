"""A robust constraint that is *not affine* in the uncertainty, solved by adversarial cutting planes
(Mutapcic & Boyd, "Cutting-set methods for robust convex optimization with pessimizing oracles", Optim.
Methods Softw. 24(3), 2009): multiplicative perturbations of a quadratic budget,

    maximize   c^T x
    subject to sum_i ((1 + u_i) x_i)^2 <= 1   for all u with ||u||_inf <= 0.3,    x >= 0

For x >= 0 the left side is convex in u and increasing in each u_i on the box, so the worst case is the
vertex u = (0.3, 0.3, 0.3) and the robust problem is max c^T x s.t. 1.3^2 ||x||^2 <= 1, whose optimum is
||c|| / 1.3 at x = c / (1.3 ||c||) (Cauchy-Schwarz).
Known answer: EXPECTED is computed by enumeration — the constraint imposed at all 8 vertices of the box
(exact, since the left side is convex in u), solved directly in cvxpy — and checked against ||c|| / 1.3.
Status: the default oracle (projected gradient ascent) certifies only LOCALLY_OPTIMAL; oracle="vertices"
gives OPTIMAL.
"""
import itertools

import cvxpy as cp
import numpy as np

import optdsl as od

C = np.array([1.0, 2.0, 1.5])
R = 0.3


def build() -> od.Model:
    m = od.Model("robust_nonaffine")
    x = m.variable(3, lb=0, name="x")
    u = m.uncertain(3, within=od.Box(np.zeros(3), radius=R), name="u")
    m.maximize(C @ x)
    m.subject_to(od.sum_squares((1 + u) * x) <= 1, name="quad")
    return m


def _reference():
    x = cp.Variable(3)
    cons = [x >= 0] + [cp.sum_squares(cp.multiply(1 + np.array(v), x)) <= 1
                       for v in itertools.product([-R, R], repeat=3)]
    prob = cp.Problem(cp.Maximize(C @ x), cons)
    prob.solve()
    assert abs(prob.value - np.linalg.norm(C) / (1 + R)) <= 1e-6
    return prob.value, x.value


_obj, _x = _reference()
# the default worst-case search (projected gradient ascent) is a local method, hence LOCALLY_OPTIMAL;
# m.solve(oracle="vertices") enumerates the box vertices and reports OPTIMAL
EXPECTED = {"objective": float(_obj), "rtol": 1e-5, "values": {"x": _x}, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["robust_cp"]

if __name__ == "__main__":
    print(build().solve())
