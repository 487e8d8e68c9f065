"""A finite-sum saddle problem solved by variance-reduced Halpern:

    min_x max_y  (1/n) Σᵢ Lᵢ(x, y),   Lᵢ(x, y) = xᵀAᵢy + bᵢᵀx + cᵢᵀy + (μ/2)‖x‖² − (μ/2)‖y‖²,

x, y ∈ R³, n = 24 components, μ = 1 (strongly convex–strongly concave). The model writes it as
``od.mean(loss, over=(As, bs, cs), batch=1, args=(x, y))``: `loss` receives a batch of rows of the data and
the players' values and returns the batch's mean of Lᵢ, so the Halpern backend picks ``vr_halpern`` (Cai,
Alacaoglu & Diakonikolas 2024), sampling one component per stochastic step (batch=1).

Known answer (closed form of the mean problem): with Ā, b̄, c̄ the means of the data, the saddle point solves
the nonsingular linear system F(z) = 0,

    μ x + Ā y + b̄ = 0,     −Āᵀx − c̄ + μ y = 0,

computed here with np.linalg.solve (numpy only, not optdsl); the value is L̄(x*, y*).
"""
import numpy as np
import torch

import optdsl as od

N, D, MU, BATCH = 24, 3, 1.0, 1
_rng = np.random.default_rng(5)
AS = _rng.standard_normal((D, D)) / np.sqrt(D) + 0.5 * _rng.standard_normal((N, D, D)) / np.sqrt(D)
BS = _rng.standard_normal((N, D))
CS = _rng.standard_normal((N, D))
DATA = tuple(torch.as_tensor(a) for a in (AS, BS, CS))


def loss(batch, x, y):
    """Mean over the batch of xᵀAᵢy + bᵢᵀx + cᵢᵀy, plus the (component-independent) quadratic terms."""
    A, b, c = batch
    return (torch.einsum("i,kij,j->k", x, A, y) + b @ x + c @ y).mean() + 0.5 * MU * (x @ x - y @ y)


def build() -> od.Model:
    m = od.Model("finite_sum_saddle")
    x = m.variable(D, name="x")
    y = m.variable(D, name="y")
    m.saddle(od.mean(loss, over=DATA, batch=BATCH, args=(x, y)), min_vars=[x], max_vars=[y])
    return m


_A, _b, _c = AS.mean(0), BS.mean(0), CS.mean(0)
_z = np.linalg.solve(np.block([[MU * np.eye(D), _A], [-_A.T, MU * np.eye(D)]]), np.r_[-_b, _c])
X_STAR, Y_STAR = _z[:D], _z[D:]
# the value as an explicit mean over the components (not through the means above)
VALUE = float(np.mean([X_STAR @ AS[i] @ Y_STAR + BS[i] @ X_STAR + CS[i] @ Y_STAR for i in range(N)])
              + 0.5 * MU * (X_STAR @ X_STAR - Y_STAR @ Y_STAR))

EXPECTED = {"objective": VALUE, "rtol": 1e-6, "values": {"x": X_STAR, "y": Y_STAR}, "status": "OPTIMAL"}
SOLVERS = ["halpern"]

if __name__ == "__main__":
    print(build().solve())
