"""Capacitated facility location: open facilities (yes/no) and serve every customer's demand from open ones.

    minimize   Σᵢ fᵢ yᵢ + Σᵢⱼ cᵢⱼ dⱼ xᵢⱼ
    subject to Σᵢ xᵢⱼ = 1          (every customer j fully served)
               Σⱼ dⱼ xᵢⱼ <= Kᵢ yᵢ   (capacity, only if facility i is open)
               xᵢⱼ <= yᵢ           (no service from a closed facility)
               0 <= x,  y ∈ {0, 1}

A mixed-integer LP with 5 binaries and 60 continuous variables (backend ``mip``: cvxpy + HiGHS).
Known answer: the same model written directly in cvxpy and solved by HiGHS (`direct()` below, no optdsl).
"""
import numpy as np

import optdsl as od

_rng = np.random.default_rng(7)
N_FAC, N_CUST = 5, 12
FIXED = np.array([40.0, 55, 35, 60, 45])
CAPACITY = np.array([30.0, 45, 25, 50, 35])
DEMAND = _rng.integers(3, 9, N_CUST).astype(float)
_fac, _cust = _rng.uniform(0, 10, (N_FAC, 2)), _rng.uniform(0, 10, (N_CUST, 2))
COST = np.linalg.norm(_fac[:, None, :] - _cust[None, :, :], axis=2)  # per unit of demand shipped


def build() -> od.Model:
    m = od.Model("facility_location")
    y = m.variable(N_FAC, boolean=True, name="open")
    x = m.variable((N_FAC, N_CUST), lb=0, name="serve")
    m.minimize(FIXED @ y + od.sum(od.Constant(COST * DEMAND) * x))
    m.subject_to(x.sum(axis=0) == 1, name="served")
    m.subject_to(x @ DEMAND <= CAPACITY * y, name="capacity")
    m.subject_to(x <= od.reshape(y, (N_FAC, 1)) @ np.ones((1, N_CUST)), name="only_open")
    return m


def direct() -> tuple[float, np.ndarray]:
    """The same model in plain cvxpy (HiGHS)."""
    import cvxpy as cp
    y = cp.Variable(N_FAC, boolean=True)
    x = cp.Variable((N_FAC, N_CUST), nonneg=True)
    prob = cp.Problem(cp.Minimize(FIXED @ y + cp.sum(cp.multiply(COST * DEMAND, x))),
                      [cp.sum(x, axis=0) == 1, x @ DEMAND <= cp.multiply(CAPACITY, y),
                       x <= cp.reshape(y, (N_FAC, 1), order="C") @ np.ones((1, N_CUST))])
    prob.solve(solver="HIGHS", mip_rel_gap=1e-9)
    return float(prob.value), np.round(y.value)


EXPECTED_OBJECTIVE, EXPECTED_OPEN = direct()
EXPECTED = {"objective": EXPECTED_OBJECTIVE, "rtol": 1e-6, "values": {"open": EXPECTED_OPEN}, "atol_values": 1e-9,
            "status": "OPTIMAL"}
SOLVERS = ["mip"]

if __name__ == "__main__":
    res = build().solve()
    print(res, "open:", res.values["open"], "cvxpy direct:", EXPECTED_OBJECTIVE, EXPECTED_OPEN)
