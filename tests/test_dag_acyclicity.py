"""Acyclicity functions (refs D1/C1), thresholding guarantee and metrics (D5/C2)."""
import math

import numpy as np
import pytest
import torch

from optdsl.solvers.dag import count_accuracy, edge_list, h_expm, h_logdet, h_value, is_dag, threshold_dag
from optdsl.solvers.dag.acyclicity import h_expm_torch, h_logdet_torch

T = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731


def test_known_values():
    dag = T([[0, 1], [0, 0]])
    assert float(h_expm(dag)[0]) == pytest.approx(0.0, abs=1e-14)
    assert float(h_logdet(dag)[0]) == pytest.approx(0.0, abs=1e-14)
    cyc = T([[0, 1], [1, 0]])
    assert float(h_expm(cyc)[0]) == pytest.approx(2 * math.cosh(1) - 2, rel=1e-12)   # 1.0862
    a = math.sqrt(0.5)
    assert float(h_logdet(cyc * a)[0]) == pytest.approx(-math.log(0.75), rel=1e-12)  # 0.28768
    assert h_value(cyc, "expm") == pytest.approx(1.0861613, rel=1e-6)


def test_gradients_match_finite_differences_and_autograd():
    g = torch.Generator().manual_seed(0)
    W = 0.3 * torch.randn(6, 6, generator=g, dtype=torch.float64)
    for fn, tfn in ((h_expm, h_expm_torch), (lambda M: h_logdet(M, 1.0)[:2], h_logdet_torch)):
        h, G = fn(W)
        Wv = W.clone().requires_grad_(True)
        (Ga,) = torch.autograd.grad(tfn(Wv), Wv)
        assert torch.allclose(G, Ga, rtol=1e-10, atol=1e-12)
        E = torch.zeros_like(W); E[1, 4] = 1e-6
        fd = (float(fn(W + E)[0]) - float(fn(W - E)[0])) / 2e-6
        assert fd == pytest.approx(float(G[1, 4]), rel=1e-6)


def test_logdet_domain_check():
    cyc = T([[0, 1.2], [1.2, 0]])            # rho(W∘W) = 1.44 > s = 1
    h, _, inside = h_logdet(cyc, 1.0)
    assert not inside and math.isinf(float(h))
    assert h_logdet(cyc, 2.0)[2]             # inside for s = 2 > 1.44
    with pytest.raises(ValueError, match="square"):
        h_expm(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="s must be > 0"):
        h_logdet(cyc, 0.0)


def test_count_accuracy_reference_case():
    B_true = np.zeros((3, 3)); B_true[0, 1] = B_true[1, 2] = 1
    B_est = np.zeros((3, 3)); B_est[1, 0] = B_est[1, 2] = B_est[0, 2] = 1
    m = count_accuracy(B_true, B_est)
    assert (m["shd"], m["reversed"], m["extra"], m["missing"], m["nnz"]) == (2, 1, 1, 0, 3)
    assert m["tpr"] == pytest.approx(0.5) and m["fdr"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="shape"):
        count_accuracy(np.zeros((3, 3)), np.zeros((4, 4)))


def test_threshold_guarantees_a_dag_and_drops_weakest_cycle_edge():
    W = T([[0, 0.9, 0.1], [0, 0, 0.8], [0.5, 0, 0]])   # 0->1->2->0 cycle after thresholding at 0.3
    W_before = W.clone()
    Wd, dropped = threshold_dag(W, 0.3)
    assert torch.equal(W, W_before)                    # input not mutated
    assert is_dag(Wd) and not is_dag(W)
    assert dropped == [(2, 0, 0.5)]
    assert float(Wd[0, 2]) == 0.0 and float(Wd[0, 1]) == pytest.approx(0.9)
    assert edge_list(Wd) == [(0, 1, 0.9), (1, 2, 0.8)]
    assert edge_list(Wd, names=["a", "b", "c"])[0] == ("a", "b", 0.9)
