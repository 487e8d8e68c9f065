"""A robust bilevel model with a black-box leader cost: a regulator subsidizes a firm whose output must meet an
emission cap for every emission rate it may turn out to have.

    leader (regulator):  min_{0 <= s <= 4}  C(s, q)          C a simulator: subsidy cost + unmet demand
    follower (firm):     q ∈ argmin_{q >= 0}  ½q² − s·q      s.t.  e·q <= 2 + 0.2·s   for all e ∈ [0.8, 1.2]

with C(s, q) = ½(s − 2.5)² + 4·(3 − q)² evaluated by `simulate` (numpy; no gradient: ``od.blackbox``).
The firm would produce q = s; the robust cap (its worst case e = 1.2) holds it to q ≤ (2 + 0.2s)/1.2.
Derivation: for s ≥ 2 the cap binds, q*(s) = 5/3 + s/6, and C(s, q*(s)) is a smooth quadratic with
derivative (11/9)s − (2.5 + 16/9) = 0 at s* = 3.5, q* = 2.25, C* = ½ + 4·(3/4)² = 2.75; for s ≤ 2, q* = s and
C ≥ C(2, 2) = 4.125. The nominal model (e = 1) would let the firm produce more (q = 2 + 0.2s): robustness
costs the regulator. Checked below by enumeration over a fine grid of s (numpy only).

One ``m.solve()``: ``robust_levels_to_vertices`` writes the firm's robust cap as one row per vertex of the box
(e = 0.8 and e = 1.2), then the ``bilevel`` backend's zeroth-order leader (``method="zo"``, chosen because the
leader's cost is a black box) steps on C(s, q*(s)) within 0 <= s <= 4, the firm solved by SLSQP at every
evaluation. The status is LOCALLY_OPTIMAL only when the zeroth-order stationarity test passes.
"""
import numpy as np

import optdsl as od

DEMAND, CAP, CAP_SLOPE = 3.0, 2.0, 0.2
E_LO, E_HI = 0.8, 1.2


def simulate(s, q) -> float:
    """The regulator's cost of subsidy s when the firm produces q (a stand-in for a simulation)."""
    s, q = float(np.asarray(s)), float(np.asarray(q))
    unmet = max(DEMAND - q, 0.0)
    return 0.5 * (s - 2.5) ** 2 + 4.0 * unmet ** 2


def build() -> od.Model:
    m = od.Model("robust_bilevel_blackbox")
    s = m.variable(lb=0, ub=4, name="s")
    firm = m.level("firm")
    q = firm.variable(lb=0, name="q")
    e = m.uncertain(within=od.Box(lo=E_LO, hi=E_HI), name="e")
    firm.minimize(0.5 * q ** 2 - s * q)
    firm.subject_to(e * q <= CAP + CAP_SLOPE * s, name="emission_cap")
    m.minimize(od.blackbox(simulate)(s, q))
    return m


def firm_output(s):
    """q*(s) in closed form: the firm's optimum s, held to the worst-case cap."""
    return np.maximum(np.minimum(s, (CAP + CAP_SLOPE * s) / E_HI), 0.0)


_grid = np.linspace(0.0, 4.0, 400_001)
_cost = 0.5 * (_grid - 2.5) ** 2 + 4.0 * np.maximum(DEMAND - firm_output(_grid), 0.0) ** 2
S_STAR, Q_STAR, C_STAR = 3.5, 2.25, 2.75
assert abs(_grid[np.argmin(_cost)] - S_STAR) < 1e-4 and abs(_cost.min() - C_STAR) < 1e-8

EXPECTED = {"objective": C_STAR, "rtol": 1e-6, "values": {"s": S_STAR, "q": Q_STAR}, "atol_values": 1e-4,
            "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["bilevel"]

if __name__ == "__main__":
    model = build()
    print(model.explain())
    res = model.solve()
    print(res, res.values, res.duals, res.certificates)
