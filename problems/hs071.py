"""Hock-Schittkowski problem 71 (the IPOPT tutorial problem).

    minimize x1 x4 (x1 + x2 + x3) + x3   s.t.  x1 x2 x3 x4 >= 25,  sum x_i^2 = 40,  1 <= x <= 5

Known answer: published optimum f* = 17.0140172891563 at x* = (1, 4.7429994, 3.8211503, 1.3794082)
(Hock & Schittkowski 1981; IPOPT documentation). Start point x0 = (1, 5, 5, 1).
"""
import optdsl as od


def build() -> od.Model:
    m = od.Model("hs071")
    x = m.variable(4, lb=1, ub=5, name="x")
    x.value = [1.0, 5.0, 5.0, 1.0]  # start point
    m.minimize(x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2])
    m.subject_to(x[0] * x[1] * x[2] * x[3] >= 25, name="product")
    m.subject_to(od.sum_squares(x) == 40, name="sphere")
    return m


EXPECTED = {"objective": 17.0140172891563, "rtol": 1e-6,
            "values": {"x": [1.0, 4.7429994, 3.8211503, 1.3794082]}, "atol_values": 1e-4,
            "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["nlp"]

if __name__ == "__main__":
    print(build().solve())
