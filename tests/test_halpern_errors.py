"""Bad input -> clear errors; numerical trouble, callbacks and limits -> statuses."""
import math

import pytest
import torch

from optdsl.solvers.common import Status
from optdsl.solvers.halpern import Simplex, halpern, solve_inclusion, solve_saddle, vr_halpern
from optdsl.solvers.halpern.testing import bilinear_game

D64 = torch.float64


@pytest.fixture(scope="module")
def game():
    return bilinear_game(6, kappa=3.0, seed=0)


@pytest.mark.parametrize("method", ["halpern", "eag", "eg"])
def test_wrong_output_shape(method):
    with pytest.raises(ValueError, match=r"F\(z\) must have the shape of z \(4,\), got \(3,\)"):
        solve_inclusion(lambda z: z[:3], torch.zeros(4, dtype=D64), method=method, L=1.0)


def test_non_finite_start_and_bad_options(game):
    z = torch.tensor([0.0, math.nan] + [0.0] * 10, dtype=D64)
    with pytest.raises(ValueError, match="z0 contains NaN or inf"):
        solve_inclusion(game.F, z, L=1.0)
    with pytest.raises(ValueError, match="method must be one of"):
        solve_inclusion(game.F, torch.zeros(12), method="gda")
    with pytest.raises(ValueError, match="operator must be one of"):
        solve_inclusion(game.F, torch.zeros(12), operator="mirror", L=1.0)
    with pytest.raises(ValueError, match="L must be a finite number > 0"):
        solve_inclusion(game.F, torch.zeros(12), L=-1.0)
    with pytest.raises(TypeError, match="F must be callable"):
        solve_inclusion(3.0, torch.zeros(12), L=1.0)
    with pytest.raises(TypeError, match="projection must be None"):
        solve_inclusion(game.F, torch.zeros(12), L=1.0, projection="simplex")
    with pytest.raises(ValueError, match="restart_factor"):
        halpern(lambda z: z, torch.zeros(3), restart_factor=1.5)
    with pytest.raises(ValueError, match="needs components"):
        solve_inclusion(game.F, torch.zeros(12), method="vr_halpern", L=1.0)
    with pytest.raises(ValueError, match="batch must be an int in"):
        vr_halpern(lambda idx, z: z, torch.zeros(3), n=5, L=1.0, batch=9)
    with pytest.raises(ValueError, match="n .* must be a positive int"):
        vr_halpern(lambda idx, z: z, torch.zeros(3), L=1.0)


def test_saddle_L_non_scalar_and_non_tensor():
    with pytest.raises(ValueError, match=r"L\(x, y\) must return a scalar, got a tensor of shape \(3,\)"):
        solve_saddle(lambda x, y: x * y, torch.zeros(3), torch.zeros(3))
    with pytest.raises(TypeError, match="must return a torch scalar tensor, got float"):
        solve_saddle(lambda x, y: 1.0, torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="gap_tol needs gap_fn"):
        solve_saddle(lambda x, y: x @ y, torch.zeros(3), torch.zeros(3), gap_tol=1e-3)


@pytest.mark.parametrize("method", ["halpern", "eag", "eg"])
def test_nan_operator_gives_status(method):
    calls = {"n": 0}

    def F(z):
        calls["n"] += 1
        return z * (math.nan if calls["n"] > 5 else 1.0)
    out = solve_inclusion(F, torch.ones(3, dtype=D64), method=method, L=1.0, adaptive=False) \
        if method != "halpern" else solve_inclusion(F, torch.ones(3, dtype=D64), method=method, L=1.0)
    assert out.status == Status.NUMERICAL_ERROR
    assert "non-finite" in out.message and "iteration" in out.message


def test_vr_nan_gives_status():
    out = vr_halpern(lambda idx, z: z * math.nan if len(idx) < 4 else z, torch.ones(3, dtype=D64), n=4, L=1.0,
                     batch=1, max_iter=5)
    assert out.status == Status.NUMERICAL_ERROR


def test_diverging_ascent_caught(game):
    """Forward–backward is not nonexpansive for a skew F: with a huge step the iterates blow up -> a status."""
    out = solve_inclusion(lambda z: 1e200 * game.F(z), torch.ones(12, dtype=D64), operator="forward_backward",
                          L=1.0, max_iter=50)
    assert out.status == Status.NUMERICAL_ERROR


def test_callback_stop_and_time_limit(game):
    seen = []

    def cb(info):
        seen.append(info["iteration"])
        return info["iteration"] < 3
    out = solve_inclusion(game.F, torch.ones(12, dtype=D64), L=1.0, callback=cb, tol=0.0)
    assert out.status == Status.INTERRUPTED and seen == [0, 1, 2, 3] and out.iterations == 4
    out = solve_inclusion(game.F, torch.ones(12, dtype=D64), method="eag", L=1.0, tol=0.0, max_iter=None,
                          time_limit=0.2)
    assert out.status == Status.TIME_LIMIT
    out = solve_inclusion(game.F, torch.ones(12, dtype=D64), method="eg", L=1.0, tol=0.0, max_iter=7)
    assert out.status == Status.ITERATION_LIMIT and out.iterations == 7
    assert math.isfinite(out.certificates["operator_residual"])


def test_inputs_not_mutated(game):
    z0 = torch.ones(12, dtype=D64)
    keep = z0.clone()
    for m in ["halpern", "eag", "eg"]:
        solve_inclusion(game.F, z0, method=m, L=1.0, max_iter=20, projection=Simplex() if m == "eg" else None)
    assert torch.equal(z0, keep)
