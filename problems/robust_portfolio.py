"""Robust portfolio with ellipsoidal uncertainty on the expected returns (Ben-Tal & Nemirovski, "Robust
convex optimization", Math. Oper. Res. 23, 1998; Goldfarb & Iyengar, Math. Oper. Res. 28, 2003):

    maximize   min_{mu in E} mu^T w     subject to  1^T w = 1,  w >= 0,
    E = {mu_bar + diag(sigma) z : ||z||_2 <= rho}

Counterpart: maximize mu_bar^T w - rho ||sigma o w||_2. Data: solvers/robust/testing.py robust_portfolio(8,
seed=0, rho=1). Known answer: the water-filling closed form testing.portfolio_closed_form (a bisection on the
KKT multiplier, no optimisation solver involved), cross-checked against the counterpart written by hand in cvxpy.
"""
import cvxpy as cp
import numpy as np

import optdsl as od
from optdsl.solvers.robust.testing import portfolio_closed_form, robust_portfolio

N, SEED, RHO = 8, 0, 1.0
MU, SIGMA, _ = robust_portfolio(N, seed=SEED, rho=RHO)


def build() -> od.Model:
    m = od.Model("robust_portfolio")
    w = m.variable(N, lb=0, name="w")
    mu = m.uncertain(N, within=od.Ellipsoid(MU, P=np.diag(SIGMA), rho=RHO), name="mu")
    m.maximize(mu @ w)                         # worst-case expected return
    m.subject_to(w.sum() == 1, name="budget")
    return m


_w, _val = portfolio_closed_form(MU, SIGMA, RHO)
_wc = cp.Variable(N)
_p = cp.Problem(cp.Maximize(MU @ _wc - RHO * cp.norm2(cp.multiply(SIGMA, _wc))), [_wc >= 0, cp.sum(_wc) == 1])
_p.solve()
assert abs(_p.value - _val) <= 1e-6 * abs(_val), (_p.value, _val)
EXPECTED = {"objective": _val, "rtol": 1e-6, "values": {"w": _w}, "status": "OPTIMAL"}
SOLVERS = ["cvxpy"]          # through the robust_to_counterpart rewrite (uncertain objective -> worst case)

if __name__ == "__main__":
    print(build().solve())
