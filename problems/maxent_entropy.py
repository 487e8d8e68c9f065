"""Log-sum-exp minimization over the simplex-like box (exp-cone problem through cvxpy).

    minimize logsumexp(x) - c^T x   s.t.  sum x = 0,  -1 <= x <= 1

(The dual of a max-entropy problem.) Known answer: computed independently below with cvxpy written directly.
"""
import cvxpy as cp
import numpy as np

import optdsl as od

C = np.array([0.1, 0.4, -0.2, 0.3])


def build() -> od.Model:
    m = od.Model("maxent_entropy")
    x = m.variable(4, lb=-1, ub=1, name="x")
    m.minimize(od.logsumexp(x) - C @ x)
    m.subject_to(x.sum() == 0, name="center")
    return m


def _reference():
    x = cp.Variable(4)
    p = cp.Problem(cp.Minimize(cp.log_sum_exp(x) - C @ x), [cp.sum(x) == 0, x >= -1, x <= 1])
    p.solve()
    return float(p.value), x.value


_obj, _x = _reference()
EXPECTED = {"objective": _obj, "rtol": 1e-5, "values": {"x": _x}, "atol_values": 1e-3, "status": "OPTIMAL"}
SOLVERS = ["cvxpy", "nlp"]

if __name__ == "__main__":
    print(build().solve())
