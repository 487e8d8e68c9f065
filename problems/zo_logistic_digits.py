"""L2-regularised logistic regression (digit 3 vs digit 8) as a torch.nn.Linear, trained by ZO in place.

    minimize_{W, b}  (1/n) sum_i log(1 + exp(-s_i (W x_i + b))) + (LAM / 2) ||W||^2,     s_i = +-1,

on scikit-learn's bundled 8x8 digits (no download; ``load_digits_split(0)`` standardises with training
statistics), classes 3 and 8 only (a pair that is not linearly trivial), 65 parameters. The model declares the
module with ``m.module(net)`` and the objective with ``od.mean(loss, over=(X, s), batch=N_TRAIN)`` (full
batch, so the reported objective is the training loss itself, not a mini-batch estimate).

Known answer: the regularised loss is strictly convex; the file computes its minimum by backprop -- scipy
L-BFGS-B with torch-autograd gradients in float64, to gradient norm < 1e-10 -- and its test accuracy.
EXPECTED["objective"] is that optimum; ``atol`` is the loss gap ZO is allowed with the defaults
(``m.solve()``: lr="auto", 1000 steps, < 1 s; the run ends LOCALLY_OPTIMAL by the backend's statistical
gradient test), and ``accuracy`` the test accuracy ZO must reach (measured figures next to them).
``TUNED`` is the hand-tuned setting the file used before (lr 0.1, linear decay, 3000 steps).
"""
import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize as sp_minimize

import optdsl as od
from optdsl.solvers.zo.models import load_digits_split

CLASSES, LAM = (3, 8), 1e-2


def data(dtype=torch.float32):
    """(Xtr, str, Xte, ste): digits 3 and 8, labels s = +1 for 8 and -1 for 3."""
    Xtr, ytr, Xte, yte = load_digits_split(0, dtype=dtype)
    keep_tr, keep_te = (ytr == CLASSES[0]) | (ytr == CLASSES[1]), (yte == CLASSES[0]) | (yte == CLASSES[1])
    sign = lambda y: (2.0 * (y == CLASSES[1]) - 1.0).to(dtype)  # noqa: E731
    return Xtr[keep_tr], sign(ytr[keep_tr]), Xte[keep_te], sign(yte[keep_te])


XTR, STR, XTE, STE = data()
N_TRAIN = len(STR)


def make_net() -> torch.nn.Linear:
    torch.manual_seed(0)
    net = torch.nn.Linear(64, 1)
    with torch.no_grad():  # start from zero: the loss is log 2 there
        net.weight.zero_()
        net.bias.zero_()
    return net


def loss_of(net, X, s):
    return F.softplus(-s * net(X).squeeze(-1)).mean() + 0.5 * LAM * net.weight.pow(2).sum()


def train_loss(net) -> float:
    with torch.no_grad():
        return float(loss_of(net, XTR, STR))


def accuracy(net) -> float:
    with torch.no_grad():
        return float(((net(XTE).squeeze(-1) > 0).to(STE.dtype) * 2 - 1 == STE).float().mean())


def build(net=None) -> od.Model:
    net = make_net() if net is None else net
    m = od.Model("zo_logistic_digits")
    m.module(net, name="logreg")
    m.minimize(od.mean(lambda b: loss_of(net, b[0], b[1]), over=(XTR, STR), batch=N_TRAIN))
    return m


def _reference():
    """Backprop optimum: L-BFGS-B (scipy) with torch autograd gradients, float64."""
    X, s, Xte, ste = data(torch.float64)

    def fg(theta):
        t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        w, b = t[:64], t[64]
        val = F.softplus(-s * (X @ w + b)).mean() + 0.5 * LAM * w.pow(2).sum()
        val.backward()
        return float(val.detach()), t.grad.numpy().copy()
    r = sp_minimize(fg, np.zeros(65), jac=True, method="L-BFGS-B", options={"gtol": 1e-10, "ftol": 0, "maxiter": 10000})
    w, b = torch.tensor(r.x[:64]), float(r.x[64])
    acc = float((((Xte @ w + b) > 0).double() * 2 - 1 == ste).double().mean())
    return float(r.fun), acc, float(np.abs(r.jac).max())


OPT_LOSS, OPT_ACCURACY, _GRAD = _reference()
# measured (defaults, seeds 0..4, ~1.5 s each): loss gap 2.4e-4 .. 4.8e-3, test accuracy 0.958 .. 0.968 (95 images;
# backprop optimum: 0.958; TUNED: gap 1.2e-3 .. 2.8e-3); stated with margin for a stochastic method:
EXPECTED = {"objective": OPT_LOSS, "atol": 1e-2, "accuracy": 0.93, "status": "LOCALLY_OPTIMAL"}
SOLVERS = ["zo"]
TUNED = {"estimator": "gaussian", "lr": 0.1, "eps": 1e-3, "schedule": "linear", "max_iter": 3000, "seed": 0}

if __name__ == "__main__":
    _net = make_net()
    print(build(_net).solve())
    print(f"train loss {train_loss(_net):.5f} (backprop optimum {OPT_LOSS:.5f}), test accuracy {accuracy(_net):.4f} "
          f"(backprop {OPT_ACCURACY:.4f})")
