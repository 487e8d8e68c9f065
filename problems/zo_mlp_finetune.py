"""A small tanh MLP (64-32-10, 2410 parameters) trained in place by zeroth-order steps on the digits.

    minimize_theta  (1/n) sum_i CE(net_theta(x_i), y_i)      over all ten classes of sklearn's 8x8 digits,

declared as ``m.module(net)`` + ``od.mean(loss, over=(Xtr, ytr), batch=BATCH)``: MeZO-style seeded
two-point steps (forward passes only, memory of inference), mini-batches from the backend's seeded stream.

Known answer: there is no closed form; the reference is backprop. The file trains the same architecture from
the same initialisation with Adam (torch autograd, full batch) to its training-loss plateau and records its
test accuracy (about 0.97). ZO with OPTIONS (4000 steps, a few seconds on one CPU thread) reaches, over
seeds 0..2, test accuracy 0.90 .. 0.92 (449 test images); EXPECTED["accuracy"] = 0.85 as asked, and
EXPECTED["objective"] bounds the final *full* training loss from above (``upper``): ZO does not reach the
backprop plateau in this budget -- d = 2410 parameters cost a factor ~d in variance per step.
"""
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


def _reference(steps: int = 300):
    """Backprop reference: Adam (lr 1e-2), full batch, same architecture and initialisation."""
    net = make_net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(net(XTR), YTR).backward()
        opt.step()
    return train_loss(net), accuracy(net)


BACKPROP_LOSS, BACKPROP_ACCURACY = _reference()
EXPECTED = {"objective": 0.5, "upper": True, "accuracy": 0.85, "status": "ITERATION_LIMIT"}
SOLVERS = ["zo"]
OPTIONS = {"estimator": "gaussian", "lr": 2e-3, "eps": 1e-3, "schedule": "constant", "max_iter": 4000, "seed": 0}

if __name__ == "__main__":
    _net = make_net()
    print(build(_net).solve(**OPTIONS))
    print(f"train loss {train_loss(_net):.4f} (backprop {BACKPROP_LOSS:.4f}), test accuracy {accuracy(_net):.4f} "
          f"(backprop {BACKPROP_ACCURACY:.4f})")
