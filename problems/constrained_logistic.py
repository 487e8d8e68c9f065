"""Logistic regression with a norm-ball constraint on the weights (convex, smooth).

    minimize   (1/m) sum_i log(1 + exp(-y_i (a_i^T w + b)))     s.t.   ||w||_2^2 <= R^2

on M = 200 samples in D = 6 features, generated with a fixed seed from a sparse "true" weight vector with
label noise, so the data are not separable; R = 1 is chosen below the norm of the unconstrained maximum
likelihood estimate, so the ball constraint is active at the optimum.

The loss is written in the modeling language as logsumexp([0, -z_i]) = log(1 + exp(-z_i)), which is both smooth
(alsketch, nlp) and DCP (cvxpy).

Known answer: EXPECTED["objective"] is computed below by CVXPY on the same data with its own atom
``cp.logistic`` (the problem is convex, so this is the global optimum); the weights are stored as
EXPECTED["values"]["w"] (unique: the loss is strictly convex on the generated full-rank data).
"""
import cvxpy as cp
import numpy as np

import optdsl as od

SEED, M, D, R = 0, 200, 6, 1.0
_rng = np.random.default_rng(SEED)
A = _rng.standard_normal((M, D))
W_TRUE = np.array([2.0, -1.5, 0.0, 1.0, 0.0, 0.5])
Y = np.where(A @ W_TRUE + 0.3 + 0.8 * _rng.standard_normal(M) >= 0, 1.0, -1.0)


def build() -> od.Model:
    m = od.Model("constrained_logistic")
    w = m.variable(D, name="w")
    b = m.variable(name="b")
    z = Y * (A @ w + b)                                   # margins, shape (M,)
    m.minimize(od.logsumexp(od.stack([0 * z, -z], axis=1), axis=1).sum() / M)
    m.subject_to(od.sum_squares(w) <= R ** 2, name="ball")
    return m


def reference():
    """Optimal value and weights by CVXPY directly (cp.logistic(t) = log(1 + exp(t)))."""
    w, b = cp.Variable(D), cp.Variable()
    prob = cp.Problem(cp.Minimize(cp.sum(cp.logistic(-cp.multiply(Y, A @ w + b))) / M),
                      [cp.sum_squares(w) <= R ** 2])
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9)
    assert prob.status == cp.OPTIMAL, prob.status
    return float(prob.value), np.asarray(w.value), float(b.value)


_F_STAR, _W_STAR, _B_STAR = reference()
EXPECTED = {"objective": _F_STAR, "rtol": 1e-6, "values": {"w": _W_STAR, "b": _B_STAR}, "atol_values": 1e-4,
            "status": "OPTIMAL"}
SOLVERS = ["alsketch", "nlp", "cvxpy"]

if __name__ == "__main__":
    print(build().solve())
