"""Calibrating heater powers of a simulated 4-zone thermal rod: a black-box (numpy, no gradients) with bounds.

The "simulator" integrates a 4-zone heat-conduction model with explicit Euler for T_STEPS steps,

    T_{t+1} = T_t + dt * (K (T_t - T_amb) + B u),        u in [0, 1]^3 (heater powers, bounds),

and the objective is the mean squared deviation of the simulated trajectory from a measured one. The
measurement was produced by the same simulator with powers U_TRUE = (0.55, 0.25, 1.10): the third heater
would need 110 % power, outside its bound, so the bound ub = 1 is active at the optimum.

Known answer: the simulator is affine in u (T_t = a_t + J_t u), so the objective is a convex quadratic
(1/m)||J u - r||^2. The file recovers J and r by simulating unit inputs (no derivatives, no optdsl) and
solves the bound-constrained least-squares problem with ``scipy.optimize.lsq_linear`` (exact, to 1e-12).
Solved by the defaults (``m.solve()``: lr="auto", 1000 steps, ~3 s): the step length is probed, directions
skip the coordinate held at its bound (found by one-sided differences every 10 steps, so the estimator's
variance vanishes at the optimum), and the run ends LOCALLY_OPTIMAL by the backend's statistical gradient
test. Over seeds 0..4 it ended within 3e-12 of u* and 2e-15 relative of the optimal objective (which is
small, 2.2e-3); EXPECTED states 1e-6 for both.
``TUNED`` is the hand-tuned setting this file used before the defaults learned (Rademacher, lr 0.1, linear
decay: within 3.5e-3 / 3.7e-3), kept for ``benchmarks/bench_defaults.py``.
"""
import numpy as np
from scipy.optimize import lsq_linear

import optdsl as od

T_STEPS, DT = 60, 0.1
K = np.array([[-1.0, 0.5, 0.0, 0.0],
              [0.5, -1.2, 0.5, 0.0],
              [0.0, 0.5, -1.2, 0.5],
              [0.0, 0.0, 0.5, -0.8]])
B = np.array([[1.0, 0.0, 0.0],      # heaters in zones 1, 3 and 4; zone 2 is heated only by conduction
              [0.0, 0.0, 0.0],
              [0.0, 1.0, 0.0],
              [0.0, 0.0, 1.0]])
T0 = np.zeros(4)
U_TRUE = np.array([0.55, 0.25, 1.10])


def simulate(u) -> np.ndarray:
    """The black box: the (T_STEPS, 4) temperature trajectory for heater powers u (numpy loop)."""
    T, out = T0.copy(), np.empty((T_STEPS, 4))
    for t in range(T_STEPS):
        T = T + DT * (K @ T + B @ np.asarray(u, float))
        out[t] = T
    return out


MEASURED = simulate(U_TRUE)
SCALE = 1.0  # Hessian eigenvalues 0.21, 0.58, 1.66 (0.44, 1.03 on the free coordinates u1, u2)


def mismatch(u) -> float:
    return float(SCALE * np.mean((simulate(u) - MEASURED) ** 2))


def build() -> od.Model:
    m = od.Model("zo_blackbox_simulator")
    u = m.variable(3, lb=0, ub=1, name="u")
    m.minimize(od.blackbox(mismatch)(u))
    return m


def _reference():
    base = simulate(np.zeros(3))
    J = np.stack([(simulate(e) - base).ravel() for e in np.eye(3)], axis=1)   # affine: exact columns
    r = (MEASURED - base).ravel()
    sol = lsq_linear(J, r, bounds=(0.0, 1.0), method="bvls", tol=1e-14)
    return sol.x, mismatch(sol.x)


_u, _obj = _reference()
EXPECTED = {"objective": float(_obj), "rtol": 1e-6, "atol_values": 1e-6, "values": {"u": _u},
            "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["zo"]
TUNED = {"estimator": "rademacher", "lr": 0.1, "eps": 1e-3, "schedule": "linear", "max_iter": 1000, "seed": 0}

if __name__ == "__main__":
    print(build().solve())
