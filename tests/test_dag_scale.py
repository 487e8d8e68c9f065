"""Scale-free defaults of the dag backend: a positive constant factor on the objective is divided out before
learning (every method's penalties and tolerances are absolute), so c·(score) learns the graph of the score."""
import importlib.util
import os

import numpy as np
import pytest

import optdsl as od
from optdsl.solvers.dag.metrics import count_accuracy

ROOT = os.path.join(os.path.dirname(__file__), "..", "problems")
_spec = importlib.util.spec_from_file_location("dag_er2_d10", os.path.join(ROOT, "dag_er2_d10.py"))
ER = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ER)


def scaled(form, c):
    m = od.Model("dag_scaled")
    W = m.variable((ER.X.shape[1],) * 2, name="W")
    score = od.sem_loss(W, ER.X) + ER.LAMBDA * od.norm1(W)
    m.minimize({"left": lambda: c * score, "right": lambda: score * c, "div": lambda: score / (1 / c)}[form]())
    m.subject_to(od.acyclic(W), name="dag")
    return m


@pytest.mark.parametrize("c,form", [(1e4, "left"), (1e-4, "right"), (1e4, "div")])
def test_scaled_score_learns_the_same_graph(c, form):
    base = ER.build().solve()
    res = scaled(form, c).solve()
    assert res.solver == "dag" and res.status == base.status
    np.testing.assert_allclose(res.values["W"], base.values["W"], rtol=0, atol=1e-10)
    assert count_accuracy(ER.B_TRUE, np.abs(res.values["W"]) > 0.3)["shd"] == 0
    assert res.objective == pytest.approx(c * base.objective, rel=1e-9)
    assert res.objective == pytest.approx(c * ER.score(res.values["W"]), rel=1e-9)   # the user's objective


def test_negative_factor_is_not_divided_out():
    """−score is a different problem (maximizing the score): not rewritten into the score."""
    from optdsl.backends.dag_backend import _positive_scale
    m = scaled("left", -2.0)
    core, c = _positive_scale(m.to_problem().objective)
    assert c == 1.0
