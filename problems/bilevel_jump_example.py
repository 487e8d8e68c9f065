"""BilevelJuMP's README example (Dempe, *Foundations of Bilevel Programming*, ch. 3.2): a linear leader,
an LP follower with four constraints, and a leader constraint on the follower's variable.

    leader:    min_y  3x + y      s.t.  x <= 5  (reads the follower's x),  0 <= y <= 8
    follower:  x ∈ argmax_x { x :  x + y <= 8,  4x + y >= 8,  2x + y <= 13,  2x − 7y <= 0 }

(BilevelJuMP names the leader's variable y and the follower's x; kept here.) The follower pushes x to its
largest feasible value x*(y) = min(8 − y, (13 − y)/2, 3.5y), which needs 3.5y >= (8 − y)/4, i.e. y >= 8/15.
On [8/15, 8] the leader's cost 3x*(y) + y is smallest at y = 8/15 (it increases there: 3·3.5 + 1 > 0), so

    y* = 8/15,   x* = 3.5·8/15 = 28/15,   F* = 3·(3.5·8/15) + 8/15 = 92/15 ≈ 6.1333

(the value BilevelJuMP's README states; checked below on a grid of y, numpy only). The KKT rewrite
(``bilevel_to_kkt``) turns the model into a MILP solved by HiGHS with big-M bounds derived from the model,
so the answer is a certified global optimum; the follower's multipliers come back by constraint name.
"""
import numpy as np

import optdsl as od


def build() -> od.Model:
    m = od.Model("bilevel_jump_example")
    y = m.variable(lb=0, ub=8, name="y")
    lower = m.level("lower")
    x = lower.variable(name="x")
    m.minimize(3 * x + y)
    m.subject_to(x <= 5, name="x_cap")           # a leader constraint on the follower's variable
    lower.maximize(x)
    lower.subject_to(x + y <= 8, name="l1")
    lower.subject_to(4 * x + y >= 8, name="l2")
    lower.subject_to(2 * x + y <= 13, name="l3")
    lower.subject_to(2 * x - 7 * y <= 0, name="l4")
    return m


def x_of(y: float) -> float:
    return min(8 - y, (13 - y) / 2, 3.5 * y)


_grid = np.linspace(0, 8, 80001)
_feasible = [t for t in _grid if 4 * x_of(t) + t >= 8 - 1e-12 and x_of(t) <= 5]
_best = min(_feasible, key=lambda t: 3 * x_of(t) + t)
Y_STAR, X_STAR, F_STAR = 8 / 15, 3.5 * 8 / 15, 3 * (3.5 * 8 / 15) + 8 / 15
assert abs(_best - Y_STAR) < 2e-4 and abs(3 * x_of(_best) + _best - F_STAR) < 1e-3

EXPECTED = {"objective": F_STAR, "rtol": 1e-7, "values": {"x": X_STAR, "y": Y_STAR}, "atol_values": 1e-7,
            "status": "OPTIMAL"}
SOLVERS = ["mip"]

if __name__ == "__main__":
    model = build()
    print(model.explain())
    res = model.solve()
    print(res, res.values, res.duals, res.certificates)
