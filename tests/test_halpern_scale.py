"""Scale-free defaults of the halpern backend: the residual tolerance is relative to the operator's Lipschitz
constant (estimated), so a saddle model and the same model with its objective multiplied by 10^±4 stop at
the same point."""
import importlib.util
import os

import numpy as np
import pytest

import optdsl as od

ROOT = os.path.join(os.path.dirname(__file__), "..", "problems")


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


BB = load("saddle_box_ball")


def box_ball(scale):
    m = od.Model("box_ball_scaled")
    x = m.variable(BB.NX, lb=-1, ub=1, name="x")
    y = m.variable(BB.NY, name="y")
    m.subject_to(od.norm(y) <= BB.R, name="ball")
    m.saddle(scale * (x @ BB.A @ y + BB.B @ x + BB.C @ y + 0.5 * BB.MU * od.sum_squares(x)), min_vars=[x],
             max_vars=[y])
    return m


@pytest.mark.parametrize("scale", [1e4, 1e-4])
def test_scaled_saddle_stops_at_the_same_point(scale):
    base = box_ball(1.0).solve()
    res = box_ball(scale).solve()
    assert base.solver == res.solver == "halpern" and base.status == res.status == od.TerminationStatus.OPTIMAL
    for v in ("x", "y"):
        np.testing.assert_allclose(res.values[v], base.values[v], rtol=0, atol=1e-9)
        np.testing.assert_allclose(res.values[v], BB.EXPECTED["values"][v], rtol=0, atol=1e-5)
    assert res.objective == pytest.approx(scale * BB.VALUE, rel=1e-6)
    assert res.iterations == base.iterations
    # the threshold follows the operator's scale; the residual reported is the true (unscaled) one
    assert res.certificates["residual_tolerance"] == pytest.approx(scale * base.certificates["residual_tolerance"],
                                                                   rel=1e-6)
    assert res.certificates["operator_residual"] <= res.certificates["residual_tolerance"]
