"""DAG models with prior knowledge: od.forbid / od.require / od.tiers lower to W[i, j] == 0 rows that the DAG
backend reads as a mask (TOPO's masked swap search, NOTEARS/log-det bounds); what it cannot read is refused
by name."""
import networkx as nx
import numpy as np
import pytest

import optdsl as od
from optdsl.solvers.dag import count_accuracy, data
from optdsl.solvers.dag.topo_prior import topo_prior


def _instance(d=10, n=60, seed=0):
    rng = np.random.default_rng(seed)
    B = data.simulate_dag(d, 2 * d, "ER", rng)
    W = data.simulate_parameter(B, seed=rng)
    X = data.simulate_linear_sem(W, n, "gauss", noise_scale=rng.uniform(0.5, 1.5, d), seed=rng)
    return X, B, W


def _model(X, *priors):
    d = X.shape[1]
    m = od.Model("dag_prior")
    W = m.variable((d, d), name="W")
    m.minimize(od.sem_loss(W, X))
    m.subject_to(od.acyclic(W), name="dag")
    for k, make in enumerate(priors):
        m.subject_to(make(W), name=f"prior{k}")
    return m, W


def test_helpers_lower_to_zero_rows():
    W = od.Variable((4, 4), name="W")
    c = od.forbid(W, [(0, 1), (2, 3)])
    assert c.sense == "==" and c.shape == (2,)
    value = np.arange(16.0).reshape(4, 4)
    assert np.allclose(c.expr.evaluate({W: value}), [value[0, 1], value[2, 3]])
    t = od.tiers(W, [[0, 1], [2], [3]])            # later -> earlier forbidden: 2->0, 2->1, 3->0, 3->1, 3->2
    assert t.shape == (5,)
    r = od.require(W, [(0, 2)])
    assert r.expr.attrs["required_edges"] == ((0, 2),)
    with pytest.raises(od.ModelError, match="od.forbid: edge \\(0, 0\\)"):
        od.forbid(W, [(0, 0)])
    with pytest.raises(od.ModelError, match="od.tiers: node 1 is in tier 0 and tier 1"):
        od.tiers(W, [[0, 1], [1, 2]])


def _gallery():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "problems" / "dag_prior_knowledge.py"
    spec = importlib.util.spec_from_file_location("dag_prior_knowledge", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tiers_and_forbidden_edges_improve_shd_and_are_respected():
    g = _gallery()
    free = g.build(prior=False)
    free.solve(method="topo")
    prior = g.build(prior=True)
    res = prior.solve(method="topo")
    Wf, Wp = free.variables[0].value, prior.variables[0].value
    tier = {k: t for t, grp in enumerate(g.TIERS) for k in grp}
    i, j = np.nonzero(Wp)
    assert all(tier[a] <= tier[b] for a, b in zip(i, j))          # no edge into an earlier tier
    assert all(Wp[e] == 0 for e in g.FORBIDDEN)
    assert res.certificates["max_violation"] == 0.0 and nx.is_directed_acyclic_graph(nx.DiGraph(Wp != 0))
    shd_free, shd_prior = count_accuracy(g.B_TRUE, Wf)["shd"], count_accuracy(g.B_TRUE, Wp)["shd"]
    assert shd_prior <= shd_free - 10, (shd_prior, shd_free)     # measured 21 -> 5


def test_forbidden_and_required_edges():
    X, B, Wt = _instance(seed=1)
    true_edges = list(zip(*np.nonzero(B)))
    weakest = min(true_edges, key=lambda e: abs(Wt[e]))
    forbidden = true_edges[:2]
    m, W = _model(X, lambda W: od.forbid(W, forbidden), lambda W: od.require(W, [weakest]))
    res = m.solve(method="topo")
    assert all(W.value[e] == 0 for e in forbidden)
    assert W.value[weakest] != 0 and W.value[weakest[::-1]] == 0
    assert res.status.has_point


def test_topo_prior_matches_plain_topo_without_constraints_on_the_score():
    # with nothing forbidden the masked search optimizes the same score as topo (same or better order here)
    from optdsl.solvers.dag.topo import topo
    import torch
    X, B, _ = _instance(seed=2, n=200)
    Xt = torch.as_tensor(X)
    a = topo_prior(Xt, w_threshold=None)
    b = topo(Xt, w_threshold=None)
    assert a.extras["loss"] <= b.extras["loss"] * (1 + 1e-6) + 1e-9


def test_required_edges_conflicting_with_forbidden_or_cyclic_are_errors():
    import torch
    X, _, _ = _instance(seed=3)
    allowed = np.ones((10, 10), bool)
    allowed[0, 1] = False
    with pytest.raises(ValueError, match="both required and forbidden"):
        topo_prior(torch.as_tensor(X), allowed=allowed, required=[(0, 1)])
    with pytest.raises(ValueError, match="cycle"):
        topo_prior(torch.as_tensor(X), required=[(0, 1), (1, 0)])


def test_constraints_the_dag_backend_cannot_read_are_refused_by_name():
    # signs and smooth rows on W are side constraints now (tests/test_dag_side.py); what is left is refused
    X, _, _ = _instance(seed=4)
    m, W = _model(X)
    m.subject_to(od.norm1(W[0]) <= 1, name="row_budget")
    line = _dag_line(m.explain())
    assert "'row_budget'" in line and "not smooth" in line and "W[i, j] == 0" in line
    m2, W2 = _model(X)
    z = m2.variable(name="z")
    m2.subject_to(W2[0, 1] + z == 0, name="tied")
    line = _dag_line(m2.explain())
    assert "'tied'" in line and "other than 'W'" in line


def _dag_line(text):
    return next(ln for ln in text.splitlines() if ln.strip().startswith(("dag:", "not dag:")))


@pytest.mark.slow
def test_mask_reaches_logdet_through_fit():
    # a non-SEM loss goes through dag.fit with the mask as bounds: the forbidden entry stays exactly 0
    X, B, _ = _instance(d=5, n=200, seed=5)
    true_edges = list(zip(*np.nonzero(B)))
    d = X.shape[1]
    m = od.Model("fit_mask")
    W = m.variable((d, d), name="W")
    Xc = od.Constant(X)
    m.minimize((0.5 / len(X)) * od.sum_squares(Xc - Xc @ W) + 0.01 * od.norm1(W))
    m.subject_to(od.acyclic(W), name="dag")
    m.subject_to(od.forbid(W, true_edges[:1]), name="no")
    m.solve(method="logdet", max_iter=3)
    assert W.value[true_edges[0]] == 0.0
