"""Method-of-multipliers baseline (solvers/multipliers.py)."""
import pytest
import torch

from optdsl.solvers import multipliers
from optdsl.solvers.common import Status
from optdsl.solvers.testing import hock_schittkowski as hs


@pytest.mark.parametrize("num", [7, 21, 35, 42, 61, 71, 78])
def test_hs_baseline(num):
    p = hs.get(num)
    out = multipliers.minimize(p.f, p.x0_tensor(), eq=p.eq, ineq=p.ineq, lb=p.lb, ub=p.ub, tol=1e-7)
    assert out.status == Status.LOCALLY_OPTIMAL
    assert hs.relative_error(out.objective, p.f_star) <= 1e-6 and out.certificates["kkt"] <= 1e-6


def test_inequality_duals_and_infeasible():
    out = multipliers.minimize(lambda x: (x[0] - 2) ** 2 + (x[1] - 1) ** 2, torch.zeros(2, dtype=torch.float64),
                               ineq=lambda x: torch.stack([x[0] + x[1] - 2, x[0] ** 2 - x[1]]))
    assert out.status == Status.LOCALLY_OPTIMAL
    assert torch.allclose(out.duals["ineq"], torch.full((2,), 2 / 3, dtype=torch.float64), atol=1e-6)
    bad = multipliers.minimize(lambda x: (x * x).sum(), torch.ones(2, dtype=torch.float64),
                               eq=lambda x: torch.stack([x[1] - 3, x[0] ** 2 + 1]), rho_max=1e8)
    assert bad.status == Status.INFEASIBLE and bad.extras["worst_constraint"] == ("eq", 1)
    with pytest.raises(ValueError, match="x0 must be a 1-D"):
        multipliers.minimize(lambda x: x.sum(), torch.zeros(2, 2))
