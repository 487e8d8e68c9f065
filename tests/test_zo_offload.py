"""ZO2-style block-wise dual forward with offload: same trajectory as MeZO, runs on CPU as a no-op path."""
import pytest
import torch

from optdsl.solvers import zo
from optdsl.solvers.oracles.zo_twopoint import ZOEvalError
from optdsl.solvers.zo.models import lm_loss, logits_loss, synthetic_tokens, tiny_decoder
from optdsl.solvers.zo.offload import ZO2Runner
from optdsl.solvers.zo.step import decay_flags


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def small(seed=0):
    torch.manual_seed(seed)
    return tiny_decoder(vocab=64, d_model=32, n_layers=2, n_heads=4, seq_len=16).double()


@pytest.mark.parametrize("cache_noise", [True, False])
def test_zo2_matches_fused_mezo_trajectory(cache_noise):
    data = synthetic_tokens(24, 16, 64, seed=1)
    batches = [data[8 * (k % 3): 8 * (k % 3) + 8] for k in range(12)]
    a, b = small(), small()
    out = zo.fine_tune(a, lm_loss, batches, steps=12, lr=1e-3, eps=1e-3, weight_decay=0.1, seed=2)
    runner = ZO2Runner(b.blocks, logits_loss, lr=1e-3, eps=1e-3, weight_decay=0.1, seed=2, device="cpu",
                       cache_noise=cache_noise)
    losses = []
    for k in range(12):
        fp, fm, proj = runner.step(batches[k][:, :-1], batches[k], k)
        losses.append(0.5 * (fp + fm))
        assert proj == pytest.approx(out.extras["projs"][k], rel=1e-9, abs=1e-12)
    runner.flush()
    assert losses == pytest.approx([h["loss"] for h in out.history], rel=1e-12)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.allclose(pa, pb, rtol=0, atol=1e-12)
    assert runner.transfers == 0 and not runner.offload   # CPU: offload is a no-op path
    flags = decay_flags(a)   # no weight decay on norms and biases, decay elsewhere
    assert not flags["head.ln.weight"] and not flags["layers.0.qkv.bias"] and flags["layers.0.fc1.weight"]


def test_zo2_failure_restores_and_rejects_tied_weights():
    m = small()
    before = [p.detach().clone() for p in m.parameters()]
    runner = ZO2Runner(m.blocks, lambda h, b: float("nan"), lr=1e-3, seed=0)
    with pytest.raises(ZOEvalError, match="iteration 0"):
        runner.step(torch.zeros(2, 16, dtype=torch.long), None, 0)
    for p, b in zip(m.parameters(), before):
        assert torch.allclose(p, b, atol=1e-12)
    tied = tiny_decoder(vocab=64, d_model=32, n_layers=1, n_heads=4, seq_len=16, tie=True)
    shared_blocks = [tied.embed, torch.nn.Sequential(tied.embed.tok)]
    with pytest.raises(ValueError, match="shared between blocks"):
        ZO2Runner(shared_blocks, logits_loss)
