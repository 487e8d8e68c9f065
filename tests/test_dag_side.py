"""Side constraints on W in DAG models: signs (W >= 0, bounds on the variable) held exactly by log-det/NOTEARS,
general smooth rows through NOTEARS' augmented Lagrangian with a refit on the learned support; checked against
the true graph, against cvxpy on the learned support, and for a truthful status when they cannot be met."""
import cvxpy as cp
import numpy as np
import pytest

import optdsl as od
from optdsl.solvers.dag import count_accuracy, data

D = 5


def _positive_instance(seed=0, n=500):
    rng = np.random.default_rng(seed)
    B = data.simulate_dag(D, 2 * D, "ER", rng)
    W = data.simulate_parameter(B, w_ranges=((0.5, 1.0),), seed=rng)     # every true weight positive
    return data.simulate_linear_sem(W, n, "gauss", seed=rng), B, W


X, B_TRUE, W_TRUE = _positive_instance()
J = int(np.argmax(B_TRUE.sum(0)))           # the node with the most parents
CAP = 0.6 * W_TRUE[:, J].sum()              # a cap on its incoming weight that binds


def _model(lb=None, ub=None):
    m = od.Model("dag_side")
    W = m.variable((D, D), lb=lb, ub=ub, name="W")
    m.minimize(od.sem_loss(W, X))
    m.subject_to(od.acyclic(W), name="dag")
    return m, W


@pytest.mark.parametrize("method", ["auto", "logdet"])
def test_nonnegative_weights_keep_the_true_graph(method):
    m, W = _model()
    m.subject_to(W >= 0, name="nonneg")
    res = m.solve(method=method)
    assert res.status.name == "LOCALLY_OPTIMAL"
    assert res.extras["method"] == ("topo" if method == "auto" else method)   # TOPO: bounded least squares per node
    assert W.value.min() >= 0.0                                                # exact, not 1e-12 below
    assert count_accuracy(B_TRUE, W.value)["shd"] == 0
    assert np.abs(W.value - W_TRUE).max() < 0.1


def test_sign_prior_improves_topo_on_a_hard_instance():
    # d = 20, n = 100, unequal noise scales, all true weights positive: TOPO with W >= 0 (measured SHD 17 -> 4)
    rng = np.random.default_rng(1)
    d = 20
    B = data.simulate_dag(d, 2 * d, "ER", rng)
    Wt = data.simulate_parameter(B, w_ranges=((0.5, 2.0),), seed=rng)
    Xh = data.simulate_linear_sem(Wt, 100, "gauss", noise_scale=rng.uniform(0.5, 1.5, d), seed=rng)
    shd = []
    for sign in (False, True):
        m = od.Model("hard")
        W = m.variable((d, d), name="W")
        m.minimize(od.sem_loss(W, Xh))
        m.subject_to(od.acyclic(W), name="dag")
        if sign:
            m.subject_to(W >= 0, name="nonneg")
        res = m.solve()
        assert res.extras["method"] == "topo" and res.status.name == "LOCALLY_OPTIMAL"
        shd.append(count_accuracy(B, W.value)["shd"])
    assert W.value.min() >= 0.0 and shd[1] <= shd[0] - 8, shd5


def test_incoming_weight_cap_holds_and_matches_cvxpy_on_the_learned_support():
    cap = CAP
    m, W = _model(lb=0)                        # the sign as a bound on the variable this time
    m.subject_to(od.sum(W[:, J]) <= cap, name="incoming")
    res = m.solve()
    assert res.status.name == "LOCALLY_OPTIMAL" and res.extras["method"] == "notears"
    Wv = W.value
    assert Wv[:, J].sum() <= cap + 1e-6 and Wv.min() >= 0.0 and np.count_nonzero(Wv[:, J]) >= 2
    assert res.certificates["side_violation"] <= 1e-6 and res.primal_status.name == "FEASIBLE_POINT"
    # the answer is the constrained least-squares fit on its own (acyclic) support: cvxpy agrees (on centred
    # data, as the DAG backend scores a linear SEM without intercept)
    support = Wv != 0
    Xc = X - X.mean(axis=0)
    Wc = cp.Variable((D, D))
    cons = [Wc >= 0, cp.sum(Wc[:, J]) <= cap, cp.multiply(~support, Wc) == 0]
    prob = cp.Problem(cp.Minimize(0.5 / len(X) * cp.sum_squares(Xc - Xc @ Wc)), cons)
    prob.solve(solver="CLARABEL")
    assert 0.5 / len(X) * np.sum((Xc - Xc @ Wv) ** 2) == pytest.approx(prob.value, rel=1e-8)
    assert np.abs(Wv - Wc.value).max() < 1e-6
    assert Wv[:, J].sum() == pytest.approx(cap, abs=1e-6) and cons[1].dual_value > 0.1   # the cap is active


def test_a_fixed_weight_with_a_general_loss_goes_through_fit_and_matches_cvxpy():
    # not od.sem_loss: dag.fit with NOTEARS' augmented Lagrangian; W[a, b] == value is a general row
    Xc = X - X.mean(axis=0)
    a, b = map(int, np.argwhere(B_TRUE)[0])
    target = W_TRUE[a, b] + 0.3
    m = od.Model("fit_side")
    W = m.variable((D, D), name="W")
    m.minimize((0.5 / len(X)) * od.sum_squares(od.Constant(Xc) - od.Constant(Xc) @ W))
    m.subject_to(od.acyclic(W), name="dag")
    m.subject_to(W[a, b] == target, name="fix")
    res = m.solve()
    assert res.status.name == "LOCALLY_OPTIMAL" and res.extras["method"] == "notears"
    assert abs(W.value[a, b] - target) <= 1e-6 and count_accuracy(B_TRUE, W.value)["shd"] == 0
    support = W.value != 0
    Wc = cp.Variable((D, D))
    prob = cp.Problem(cp.Minimize(0.5 / len(X) * cp.sum_squares(Xc - Xc @ Wc)),
                      [Wc[a, b] == target, cp.multiply(~support, Wc) == 0])
    prob.solve(solver="CLARABEL")
    assert res.objective == pytest.approx(prob.value, rel=1e-8) and np.abs(W.value - Wc.value).max() < 1e-6


def test_side_constraints_that_cannot_be_met_give_an_honest_status():
    m, W = _model(ub=0)                        # every weight <= 0, yet the incoming weight must be 2
    m.subject_to(od.sum(W[:, J]) == 2.0, name="incoming")
    res = m.solve(max_iter=10)
    assert not res.status.is_success and res.primal_status.name == "INFEASIBLE_POINT"
    assert res.certificates["side_violation"] == pytest.approx(2.0, abs=1e-6)
    assert res.certificates["worst_constraint"] == "incoming"


def test_methods_that_cannot_take_them_say_so():
    m, W = _model()
    m.subject_to(W >= 0, name="nonneg")
    with pytest.raises(ValueError, match="method='colide' takes forbidden/required edges and tiers only"):
        m.solve(method="colide")
    m.subject_to(od.sum(W[:, J]) <= 1.0, name="incoming")
    with pytest.raises(ValueError, match="method='topo' takes .* general constraints on W need method='notears'"):
        m.solve(method="topo")
    with pytest.raises(ValueError, match=r"general constraints on W \(and bounds other than 0\) need method='notears'"):
        m.solve(method="logdet")


def test_prior_reads_signs_forbidden_entries_and_general_rows():
    from optdsl.backends.dag_backend import prior_knowledge
    m, W = _model()
    m.subject_to(W[0, 1] >= 0, name="pos")
    m.subject_to(W[2, 3] <= 0, name="neg")
    m.subject_to(W[1, 4] >= 0, name="a")
    m.subject_to(W[1, 4] <= 0, name="b")           # both signs: a forbidden edge
    m.subject_to(W[3, 0] <= 0.5, name="cap")        # a bound with 0 inside: a magnitude cap on the split
    m.subject_to(W[0, 2] >= 0.5, name="force")      # a bound away from 0 forces an edge: a general row
    m.subject_to(od.sum_squares(W) <= 9, name="ball")
    pk, why = prior_knowledge(m.to_problem(), W)
    assert why is None
    assert pk.sign[0, 1] == 1 and pk.sign[2, 3] == -1 and pk.sign[1, 4] == 0 and not pk.allowed[1, 4]
    assert pk.upper[3, 0] == 0.5 and pk.has_box and pk.sign[3, 0] == 0
    assert [c.name for c, _, _ in pk.general] == ["force", "ball"]
    assert pk.general[0][2] is not None and pk.general[1][2] is None       # affine rows travel as (A, b)


@pytest.mark.parametrize("method", ["auto", "notears"])
def test_magnitude_bounds_are_exact_and_keep_the_true_graph(method):
    m, W = _model(lb=-0.8, ub=0.8)             # true weights in [0.5, 1]: the cap binds on the largest ones
    res = m.solve(method=method)
    assert res.status.name == "LOCALLY_OPTIMAL" and res.extras["method"] == ("topo" if method == "auto" else method)
    assert W.value.max() <= 0.8 and W.value.min() >= -0.8                           # exact, no 1e-9 excess
    assert np.isclose(W.value.max(), 0.8) and count_accuracy(B_TRUE, W.value)["shd"] == 0


def test_signs_with_a_general_loss_go_through_fit_and_log_det():
    # not od.sem_loss: dag.fit; signs only, so log-det's split with the wrong-sign part fixed at 0
    Xc = X - X.mean(axis=0)
    m = od.Model("fit_sign")
    W = m.variable((D, D), name="W")
    m.minimize((0.5 / len(X)) * od.sum_squares(od.Constant(Xc) - od.Constant(Xc) @ W))
    m.subject_to(od.acyclic(W), name="dag")
    m.subject_to(W >= 0, name="nonneg")
    res = m.solve()
    assert res.status.name == "LOCALLY_OPTIMAL" and res.extras["method"] == "logdet"
    assert W.value.min() >= 0.0 and count_accuracy(B_TRUE, W.value)["shd"] == 0
