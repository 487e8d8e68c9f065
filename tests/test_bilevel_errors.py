"""Bad input -> clear errors early; numerical trouble -> statuses, never a traceback; inputs not mutated."""
import pytest
import torch

from optdsl.solvers import Status
from optdsl.solvers import bilevel as B
from optdsl.solvers.bilevel import testing as T

D = torch.float64
f = lambda x, y: ((x - 1) ** 2).sum() + ((y - 2) ** 2).sum()
g = lambda x, y: ((y - x) ** 2).sum()


def test_non_scalar_objectives_are_rejected_with_names():
    x, y = torch.zeros(2, dtype=D), torch.zeros(2, dtype=D)
    with pytest.raises(TypeError, match=r"g\(x, y\) must return a scalar tensor, got \(2,\)"):
        B.solve(f, lambda x, y: (y - x) ** 2, x, y)
    with pytest.raises(TypeError, match=r"f\(x, y\) must return a scalar tensor, got float"):
        B.solve(lambda x, y: 1.0, g, x, y)
    with pytest.raises(TypeError, match="f must be a callable"):
        B.solve(None, g, x, y)


def test_bad_start_points_and_options():
    with pytest.raises(ValueError, match=r"x0 \(shape \(2,\)\) contains NaN/inf"):
        B.solve(f, g, torch.tensor([0.0, float("nan")], dtype=D), torch.zeros(2, dtype=D))
    with pytest.raises(TypeError, match="y0 must be a torch.Tensor or a non-empty tuple"):
        B.solve(f, g, torch.zeros(2, dtype=D), [1.0, 2.0])
    with pytest.raises(TypeError, match=r"x0\[1\] must be a floating tensor"):
        B.solve(lambda x, y: (y - x[0]).pow(2).sum(), g, (torch.zeros(2), torch.zeros(2, dtype=torch.long)),
                torch.zeros(2))
    with pytest.raises(ValueError, match="method must be .auto. or one of"):
        B.solve(f, g, torch.zeros(1), torch.zeros(1), method="newton")
    with pytest.raises(ValueError, match="sigma must be a positive"):
        B.solve(f, g, torch.zeros(1), torch.zeros(1), method="penalty", sigma=0.0)
    with pytest.raises(ValueError, match="inner_steps must be a positive integer"):
        B.solve(f, g, torch.zeros(1), torch.zeros(1), method="penalty", inner_steps=0)
    with pytest.raises(ValueError, match="handles followers without constraints"):
        B.solve(f, g, torch.zeros(1), torch.zeros(1), method="implicit", lower_constraints=lambda x, y: y)
    with pytest.raises(ValueError, match="needs lower_constraints"):
        B.solve(f, g, torch.zeros(1), torch.zeros(1), method="lvhba")
    with pytest.raises(ValueError, match="linear_solver must be 'cg', 'neumann', 'sor' or an SPD solver callable"):
        B.solve(f, g, torch.zeros(1), torch.zeros(1), method="implicit", linear_solver="lu")


def test_projection_returning_wrong_shape_is_named():
    with pytest.raises(ValueError, match=r"proj_x returned shapes \[\(3,\)\], expected \[\(2,\)\]"):
        B.solve(f, g, torch.zeros(2), torch.zeros(2), proj_x=lambda x: torch.zeros(3))


@pytest.mark.parametrize("method", ["penalty", "implicit", "unrolled", "borep"])
def test_divergence_and_nan_become_numerical_error_status(method):
    # a lower level that becomes NaN once x leaves the log domain
    ff = lambda x, y: ((x + 5) ** 2).sum() + (y ** 2).sum()
    gg = lambda x, y: ((y - torch.log(x)) ** 2).sum()
    r = B.solve(ff, gg, torch.ones(1, dtype=D), torch.zeros(1, dtype=D), method=method, lr_x=1.0, max_iter=50)
    assert r.status == Status.NUMERICAL_ERROR
    assert "not finite" in r.message and "iteration" in r.message


def test_inputs_are_not_mutated_and_tuple_structure_round_trips():
    P = T.hyper_cleaning(n_train=100, n_val=50)
    x0, (W0, b0) = P.x0, P.y0
    W_before = W0.clone()
    r = B.solve(P.f, P.g, x0, (W0, b0), method="penalty", lr_x=1.0, lr_y=0.5, inner_steps=2, max_iter=3, certify_gap=False)
    assert torch.equal(W0, W_before) and torch.equal(x0, torch.zeros(100))
    x, (W, b) = r.x
    assert W.shape == (64, 10) and b.shape == (10,) and x.shape == (100,)
