"""Hock-Schittkowski problem 42: distance to a point with a linear and a circle equality.

    minimize (x1-1)^2 + (x2-2)^2 + (x3-3)^2 + (x4-4)^2   s.t.  x1 - 2 = 0,  x3^2 + x4^2 - 2 = 0

Start point x0 = (1, 1, 1, 1).
Known answer: published f* = 28 - 10 sqrt(2) at x* = (2, 2, 0.6 sqrt(2), 0.8 sqrt(2)).
Source of the published optimum: W. Hock and K. Schittkowski, *Test Examples for Nonlinear Programming
Codes*, Lecture Notes in Economics and Mathematical Systems 187, Springer 1981, problem 42
(the same data as ``optdsl.solvers.testing.hock_schittkowski.get(42)``).
"""
import math

import numpy as np

import optdsl as od


def build() -> od.Model:
    m = od.Model("hs042")
    x = m.variable(4, name="x", value=[1.0, 1.0, 1.0, 1.0])
    m.minimize(od.sum_squares(x - np.array([1.0, 2.0, 3.0, 4.0])))
    m.subject_to(x[0] - 2 == 0, name="c1")
    m.subject_to(od.square(x[2]) + od.square(x[3]) - 2 == 0, name="circle")
    return m


EXPECTED = {"objective": 28 - 10 * math.sqrt(2.0), "rtol": 1e-6, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["alsketch", "nlp"]

if __name__ == "__main__":
    print(build().solve())
