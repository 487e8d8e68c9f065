"""zo.fine_tune / ZOStepper: fused vs reference MeZO, resume, digits accuracy, sparse, FedKSeed replay."""
import pytest
import torch
import torch.nn.functional as F

from optdsl.solvers import zo
from optdsl.solvers.common import Status
from optdsl.solvers.oracles.zo_noise import derive_seed
from optdsl.solvers.zo.models import load_digits_split, mlp
from optdsl.solvers.zo.step import decay_flags


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny(dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.LayerNorm(8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    net = net.to(dtype)
    g = torch.Generator().manual_seed(1)
    X = torch.randn(32, 6, generator=g, dtype=dtype)
    y = torch.randint(0, 3, (32,), generator=g)
    return net, (lambda m, idx: F.cross_entropy(m(X[idx]), y[idx])), \
        (lambda k: torch.randint(0, 32, (8,), generator=torch.Generator().manual_seed(k)))


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_fused_step_equals_reference_mezo(wd):
    net_a, loss, batches = tiny()
    net_b, _, _ = tiny()
    names = [n for n, _ in net_a.named_parameters()]
    decay = [wd if decay_flags(net_a)[n] else 0.0 for n in names]
    stepper = zo.ZOStepper(list(net_a.named_parameters()), lr=1e-2, eps=1e-3, weight_decay=wd, seed=5,
                           decay=decay_flags(net_a))
    for k in range(30):
        idx = batches(k)
        est = stepper.step(lambda: loss(net_a, idx), k)
        l1, g = zo.mezo_reference_step(list(net_b.parameters()), lambda: loss(net_b, idx),
                                       seed=derive_seed(derive_seed(5, k), 0), eps=1e-3, lr=1e-2,
                                       weight_decay=decay)
        assert est.f_plus[0] == pytest.approx(l1, rel=1e-12) and est.projs[0] == pytest.approx(g, rel=1e-8)
    for pa, pb in zip(net_a.parameters(), net_b.parameters()):
        assert torch.allclose(pa, pb, rtol=0, atol=1e-13)
    assert stepper.wd[names.index("1.weight")] == 0.0 and stepper.wd[names.index("0.bias")] == 0.0


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_resumed_run_equals_uninterrupted(tmp_path, optimizer):
    kw = dict(steps=40, lr=1e-2 if optimizer != "adam" else 1e-3, optimizer=optimizer, seed=9, q=2)
    net_a, loss, batches = tiny()
    out_a = zo.fine_tune(net_a, loss, batches, **kw)
    net_b, _, _ = tiny()
    ck = str(tmp_path / "ck.pt")
    stop = zo.fine_tune(net_b, loss, batches, checkpoint_every=10, checkpoint_path=ck,
                        callback=lambda info: info["iteration"] < 24, **kw)
    assert stop.status == Status.INTERRUPTED
    net_c, _, _ = tiny(seed=123)           # a fresh process would start from anything
    out_c = zo.fine_tune(net_c, loss, batches, resume_from=ck, **kw)
    assert out_c.status == Status.ITERATION_LIMIT and out_c.iterations == 40
    for pa, pc in zip(net_a.parameters(), net_c.parameters()):
        assert torch.equal(pa, pc)
    assert out_a.extras["projs"] == out_c.extras["projs"]
    assert [h["loss"] for h in out_a.history] == [h["loss"] for h in out_c.history]


@pytest.mark.slow  # the same network and threshold through m.solve(): test_zo_models (and the gallery conformance)
def test_digits_mlp_reaches_85_percent_with_zo():
    Xtr, ytr, Xte, yte = load_digits_split(0)
    net = mlp((64, 32, 10), seed=0)
    batches = lambda k: torch.randint(0, len(ytr), (256,), generator=torch.Generator().manual_seed(k))  # noqa
    loss = lambda m, idx: F.cross_entropy(m(Xtr[idx]), ytr[idx])  # noqa: E731
    out = zo.fine_tune(net, loss, batches, steps=4000, lr=2e-3, eps=1e-3, log_every=100)
    acc = float((net(Xte).argmax(1) == yte).float().mean())
    assert out.status == Status.ITERATION_LIMIT and out.counts["f"] == 8000
    assert acc >= 0.85, acc
    assert net.training  # train/eval mode restored


def test_forward_and_sparse_estimators_train_in_place():
    net, loss, batches = tiny()
    all_idx = torch.arange(32)
    l0 = float(loss(net, all_idx).detach())
    out = zo.fine_tune(net, loss, batches, steps=300, lr=5e-3, estimator="forward")
    assert out.counts["jac"] == 300 and float(loss(net, all_idx).detach()) < 0.9 * l0
    net, loss, batches = tiny()
    w0 = net[0].weight.detach().clone()
    thr = torch.quantile(w0.abs().flatten(), 0.3)
    out = zo.fine_tune(net, loss, batches, steps=1, lr=1e-2, estimator="sparse", sparse_keep=0.3)
    moved = net[0].weight.detach() != w0
    assert bool((w0.abs()[moved] <= thr + 1e-12).all()) and int(moved.sum()) > 0
    assert abs(int(moved.sum()) - round(0.3 * w0.numel())) <= 1


def test_fedkseed_replay_from_index_scalar_pairs():
    net, loss, batches = tiny()
    init = [p.detach().clone() for p in net.parameters()]
    out = zo.fine_tune(net, loss, batches, steps=25, lr=1e-2, seed_pool=16, seed=4)
    idx, projs = out.extras["seeds"], out.extras["projs"]
    assert all(0 <= i < 16 for i in idx)
    # a server rebuilds the model from (index, scalar) pairs only: θ = θ0 − lr Σ p_k z(pool[i_k])
    from optdsl.solvers.zo.distributed import replay
    replica = [t.clone() for t in init]
    replay(replica, idx, projs, lr=1e-2, seed=4)
    for p, r in zip(net.parameters(), replica):
        assert torch.allclose(p, r, atol=1e-12)


def test_bad_loss_gives_status_and_restores_parameters():
    net, loss, batches = tiny()
    state = {}

    def bad(m, idx):
        if state.get("k", 0) >= 7:
            return torch.tensor(float("nan"))
        return loss(m, idx)
    out = zo.fine_tune(net, bad, batches, steps=20, lr=1e-2,
                       callback=lambda info: state.__setitem__("k", info["iteration"] + 1))
    assert out.status == Status.NUMERICAL_ERROR and "iteration 7" in out.message
    ref, _, _ = tiny()
    zo.fine_tune(ref, loss, batches, steps=7, lr=1e-2)
    for p, r in zip(net.parameters(), ref.parameters()):
        assert torch.allclose(p, r, atol=1e-12)   # the failed step left no trace
    out = zo.fine_tune(net, lambda m, b: m(torch.zeros(2, 6, dtype=torch.float64)), batches, steps=3)
    assert out.status == Status.OTHER_ERROR and "iteration 0" in out.message
    with pytest.raises(ValueError, match="eps"):
        zo.fine_tune(net, loss, batches, eps=0)
    with pytest.raises(ValueError, match="q"):
        zo.fine_tune(net, loss, batches, q=0)
    with pytest.raises(TypeError, match="nn.Module"):
        zo.fine_tune(lambda x: x, loss, batches)


@pytest.mark.parametrize("optimizer,kind", [("sgd", "gaussian"), ("sign", "rademacher")])
def test_fused_and_unfused_agree_with_several_queries(optimizer, kind):
    est = "rademacher" if kind == "rademacher" else "gaussian"
    a, loss, batches = tiny()
    b, _, _ = tiny()
    zo.fine_tune(a, loss, batches, steps=15, lr=1e-2, q=3, optimizer=optimizer, estimator=est, fused=True)
    zo.fine_tune(b, loss, batches, steps=15, lr=1e-2, q=3, optimizer=optimizer, estimator=est, fused=False)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.allclose(pa, pb, rtol=0, atol=1e-12)
