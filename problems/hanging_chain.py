"""Hanging chain: the rest shape of a chain of N rigid links of equal length between two fixed points.

Points (x_i, y_i), i = 0..N (2N + 2 variables); the chain has total length 2 and hangs between (0, 0) and
(1, 0). Its rest shape minimizes the potential energy (unit mass per unit length, each link's mass at its
midpoint):

    minimize   h Σ_{i<N} (y_i + y_{i+1}) / 2                          h = 2 / N, the link length
    s.t.       (x_{i+1} - x_i)^2 + (y_{i+1} - y_i)^2 = h^2   i < N     ("links", N rows)
               x_0 = 0, x_N = 1, y_0 = y_N = 0                          ("ends_x", "ends_y", 4 rows)

N + 4 equality constraints, nonconvex (the link constraints are quadratic equalities). Start: points
evenly spaced in x on the parabola y = -t(1 - t) (not feasible; the chain must unfold).

Known answer: no closed form for finite N. EXPECTED["objective"] at N = 50 is the optimum found by IPOPT on
the same problem written directly in CasADi, scalar by scalar, independently of optdsl (`reference(N)`
below, run once: -0.91107851147); tests/test_ipopt_backend.py repeats that solve. As a check free of any
solver, it tends to the continuous catenary's ∫ y ds (`catenary_energy()` = -0.9112085) as N grows
(difference 1.3e-4 at N = 50 and 1.3e-6 at N = 500: O(1/N^2)).
"""
import numpy as np

import optdsl as od


def build(N: int = 50) -> od.Model:
    h = 2.0 / N
    t = np.linspace(0.0, 1.0, N + 1)
    m = od.Model(f"hanging_chain_{N}")
    x = m.variable(N + 1, name="x", value=t)
    y = m.variable(N + 1, name="y", value=-t * (1 - t))
    m.minimize(h * ((y[:-1] + y[1:]) / 2).sum())
    m.subject_to(od.square(x[1:] - x[:-1]) + od.square(y[1:] - y[:-1]) == h ** 2, name="links")
    m.subject_to(x[[0, N]] == np.array([0.0, 1.0]), name="ends_x")
    m.subject_to(y[[0, N]] == np.array([0.0, 0.0]), name="ends_y")
    return m


def build_parametric(N: int = 50) -> tuple[od.Model, od.Parameter]:
    """The chain with the right end's height a parameter `b` (0 at first; `b.value = ...` and `m.solve()` re-solve
    without rebuilding): the model and `b`. The ends' rows are "ends_x", "left" and "right"."""
    h = 2.0 / N
    t = np.linspace(0.0, 1.0, N + 1)
    m = od.Model(f"hanging_chain_{N}_b")
    x = m.variable(N + 1, name="x", value=t)
    y = m.variable(N + 1, name="y", value=-t * (1 - t))
    b = m.parameter(value=0.0, name="b")
    m.minimize(h * ((y[:-1] + y[1:]) / 2).sum())
    m.subject_to(od.square(x[1:] - x[:-1]) + od.square(y[1:] - y[:-1]) == h ** 2, name="links")
    m.subject_to(x[[0, N]] == np.array([0.0, 1.0]), name="ends_x")
    m.subject_to(y[0] == 0, name="left")
    m.subject_to(y[N] == b, name="right")
    return m, b


def reference(N: int = 50, tol: float = 1e-10) -> tuple[float, np.ndarray, np.ndarray]:
    """The same problem in CasADi (scalar SX expressions, one per link) solved by IPOPT: (f*, x*, y*)."""
    import casadi as ca
    h = 2.0 / N
    t = np.linspace(0.0, 1.0, N + 1)
    x, y = ca.SX.sym("x", N + 1), ca.SX.sym("y", N + 1)
    f = sum(h * (y[i] + y[i + 1]) / 2 for i in range(N))
    g = [(x[i + 1] - x[i]) ** 2 + (y[i + 1] - y[i]) ** 2 - h ** 2 for i in range(N)] + [x[0], x[N] - 1, y[0], y[N]]
    solver = ca.nlpsol("chain", "ipopt", {"x": ca.vertcat(x, y), "f": f, "g": ca.vertcat(*g)},
                       {"print_time": False, "ipopt.print_level": 0, "ipopt.sb": "yes", "ipopt.tol": tol})
    out = solver(x0=np.concatenate([t, -t * (1 - t)]), lbg=0, ubg=0)
    assert solver.stats()["return_status"] == "Solve_Succeeded", solver.stats()["return_status"]
    z = np.asarray(out["x"]).ravel()
    return float(out["f"]), z[:N + 1], z[N + 1:]


def catenary_energy(length: float = 2.0) -> float:
    """∫ y ds of the continuous catenary y = a cosh((x - 1/2)/a) - a cosh(1/(2a)) of that length on [0, 1]."""
    from scipy.integrate import quad
    from scipy.optimize import brentq
    a = brentq(lambda a: 2 * a * np.sinh(1 / (2 * a)) - length, 0.05, 10.0)
    y = lambda s: a * np.cosh((s - 0.5) / a) - a * np.cosh(0.5 / a)
    return quad(lambda s: y(s) * np.cosh((s - 0.5) / a), 0.0, 1.0, epsabs=1e-13)[0]


EXPECTED = {"objective": -0.91107851147, "rtol": 1e-8, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["ipopt"]

if __name__ == "__main__":
    print(build().solve())
