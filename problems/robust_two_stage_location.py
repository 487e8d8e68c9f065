"""Two-stage robust location-transportation (Zeng & Zhao, "Solving two-stage robust optimization problems
using a column-and-constraint generation method", Oper. Res. Lett. 41, 2013, section 5), with the first
stage relaxed to continuous opening decisions 0 <= open <= 1:

    min  f^T open + a^T cap + max_{u in U} min_{ship >= 0}  sum_ij C_ij ship_ij
    s.t. cap <= 800 open,  sum(cap) >= 772                                       (first stage)
         sum_j ship_ij <= cap_i,   sum_i ship_ij >= dbar_j + g_j u_j             (recourse, after u is revealed)
    U = {0 <= u <= 1, u1 + u2 + u3 <= 1.8, u1 + u2 <= 1.2}

Data: solvers/robust/testing.py zeng_zhao_location() (the paper's integer instance has optimum 33680).
Known answer: solve_extensive_form on the same matrices with the integrality dropped — the deterministic
equivalent with one recourse copy per vertex of U (enumeration), one LP, no CCG and no optdsl modeling.
"""
import numpy as np

import optdsl as od
from optdsl.solvers.robust.ccg import solve_extensive_form
from optdsl.solvers.robust.testing import zeng_zhao_location

F, A_CAP = np.array([400, 414, 326.0]), np.array([18, 25, 20.0])
C = np.array([[22, 33, 24], [33, 23, 30], [20, 25, 27.0]])
DBAR, G = np.array([206, 274, 220.0]), np.array([40, 40, 40.0])
PROB, OPT_INTEGER = zeng_zhao_location()


def build() -> od.Model:
    m = od.Model("robust_location")
    z = m.variable(3, lb=0, ub=1, name="open")
    cap = m.variable(3, lb=0, ub=800, name="cap")
    y = m.recourse((3, 3), lb=0, name="ship")
    u = m.uncertain(3, within=PROB.uset, name="u")
    m.minimize(F @ z + A_CAP @ cap + (C * y).sum())
    m.subject_to(cap <= 800 * z, name="open_cap")
    m.subject_to(cap.sum() >= 772, name="total")
    m.subject_to(y.sum(axis=1) <= cap, name="supply")
    m.subject_to(y.sum(axis=0) >= DBAR + G * u, name="demand")
    return m


def _reference():
    P, _ = zeng_zhao_location()
    P.int_idx = np.zeros(0, dtype=int)         # continuous first stage
    out = solve_extensive_form(P)
    return out.objective, out.x


_obj, _x = _reference()
EXPECTED = {"objective": float(_obj), "rtol": 1e-6, "status": "OPTIMAL"}
SOLVERS = ["robust_ccg"]

if __name__ == "__main__":
    print(build().solve())
