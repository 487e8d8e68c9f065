"""0/1 knapsack: pick items of largest total value within a weight capacity.

    maximize vᵀx  s.t.  wᵀx <= C,  x ∈ {0, 1}^12

A mixed-integer LP (``boolean=True``), solved by branch and bound (cvxpy + HiGHS, backend ``mip``).
Known answer: the best of all 2^12 = 4096 subsets, enumerated below with numpy (no optdsl, no solver).
"""
import itertools

import numpy as np

import optdsl as od

VALUES = np.array([24.0, 13, 23, 15, 16, 11, 9, 30, 18, 21, 7, 12])
WEIGHTS = np.array([12.0, 7, 11, 8, 9, 6, 5, 16, 10, 11, 4, 7])
CAPACITY = 40.0


def build() -> od.Model:
    m = od.Model("knapsack")
    x = m.variable(len(VALUES), boolean=True, name="x")
    m.maximize(VALUES @ x)
    m.subject_to(WEIGHTS @ x <= CAPACITY, name="capacity")
    return m


def brute_force() -> tuple[float, np.ndarray]:
    """The optimum by enumerating every subset."""
    subsets = np.array(list(itertools.product((0.0, 1.0), repeat=len(VALUES))))
    value = np.where(subsets @ WEIGHTS <= CAPACITY, subsets @ VALUES, -np.inf)
    best = int(np.argmax(value))
    return float(value[best]), subsets[best]


BEST_VALUE, BEST_X = brute_force()
EXPECTED = {"objective": BEST_VALUE, "rtol": 1e-9, "status": "OPTIMAL"}
SOLVERS = ["mip"]

if __name__ == "__main__":
    res = build().solve()
    print(res, res.values["x"], "brute force:", BEST_VALUE)
