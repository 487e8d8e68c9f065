"""A small tanh MLP (64-32-10, 2410 parameters) trained in place by zeroth-order steps on the digits.

    minimize_theta  (1/n) sum_i CE(net_theta(x_i), y_i)      over all ten classes of sklearn's 8x8 digits,

declared as ``m.module(net)`` + ``od.mean(loss, over=(Xtr, ytr), batch=BATCH)``: MeZO-style seeded
two-point steps (forward passes only, memory of inference), mini-batches from the backend's seeded stream.

Known answer: there is no closed form; the reference is backprop. ``backprop_reference()`` trains the same
architecture from the same initialisation with Adam (torch autograd, full batch, 150 steps): training loss
0.010, test accuracy 0.962. ZO with the defaults (``m.solve()``: lr="auto", 1000 steps of batch 256, ~3 s on
one CPU thread) reached, over seeds 0..4, test accuracy 0.842 .. 0.887 (450 test images) and full training
loss 0.324 .. 0.355; the last mini-batch loss it reports (res.objective) was 0.310 .. 0.368. Given 4000 steps
(``max_iter=4000``, a slow test) it passes the 0.85 asked for with margin. ZO does not reach the backprop
plateau in this budget -- with d = 2410 parameters a two-point estimate has ~d times the variance of the
gradient -- so EXPECTED["objective"] is *not* the backprop optimum but the measured ZO level, with a
stochastic tolerance (atol 0.1) for the mini-batch estimate; tests also bound the full training loss by 0.4.
The status is ITERATION_LIMIT: the backend's gradient test does not find the gradient 10x smaller than at the
start (it is not: the net is still learning), and it says so. ``TUNED`` is the hand-tuned setting the file
used before (lr 3e-3, 4000 steps: accuracy 0.922 .. 0.931).
"""
from functools import lru_cache

import torch
import torch.nn.functional as F

import optdsl as od
from optdsl.solvers.zo.models import load_digits_split, mlp

XTR, YTR, XTE, YTE = load_digits_split(0)
BATCH = 256


def make_net() -> torch.nn.Sequential:
    return mlp((64, 32, 10), seed=0)


def train_loss(net) -> float:
    with torch.no_grad():
        return float(F.cross_entropy(net(XTR), YTR))


def accuracy(net) -> float:
    with torch.no_grad():
        return float((net(XTE).argmax(1) == YTE).float().mean())


def build(net=None) -> od.Model:
    net = make_net() if net is None else net
    m = od.Model("zo_mlp_finetune")
    m.module(net, name="mlp")
    m.minimize(od.mean(lambda b: F.cross_entropy(net(b[0]), b[1]), over=(XTR, YTR), batch=BATCH))
    return m


@lru_cache(maxsize=None)
def backprop_reference(steps: int = 150) -> tuple:
    """Backprop reference (computed on demand, ~1 s): Adam (lr 1e-2), full batch, same architecture and
    initialisation; returns (training loss, test accuracy)."""
    net = make_net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(net(XTR), YTR).backward()
        opt.step()
    return train_loss(net), accuracy(net)


EXPECTED = {"objective": 0.32, "atol": 0.1, "accuracy": 0.8, "train_loss_max": 0.4, "status": "ITERATION_LIMIT"}
SOLVERS = ["zo"]
TUNED = {"estimator": "gaussian", "lr": 3e-3, "eps": 1e-3, "schedule": "constant", "max_iter": 4000, "seed": 0}

if __name__ == "__main__":
    _net = make_net()
    print(build(_net).solve())
    _loss, _acc = backprop_reference()
    print(f"train loss {train_loss(_net):.4f} (backprop {_loss:.4f}), test accuracy {accuracy(_net):.4f} "
          f"(backprop {_acc:.4f})")
