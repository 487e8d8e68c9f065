"""CoLiDE: concomitant linear DAG estimation (Saboksayr, Mateos, Tepper, ICLR 2024; code SAMiatto/colide).

The noise scale is estimated jointly with W in a scaled-Lasso score, so λ does not have to be retuned
with the noise level. With C = XᵀX/n (centred X) and R(W) = (I − W)ᵀ C (I − W):

* equal variances (EV):  S(W, σ) = tr R / (2σ) + dσ/2 + λ‖W‖₁,   σ*(W) = √(tr R / d)
* non-equal (NV):        S(W, Σ) = ½ Σ_i (R_ii/σ_i + σ_i) + λ‖W‖₁,   σ_i*(W) = √R_ii

Both are minimised over (W, σ) under the log-det central path μ_t S + h_{s_t}(W) (DAGMA's). The reference
alternates an Adam step on W with the closed-form σ; here σ is *profiled out* exactly: S(W, σ*(W)) =
√(d · tr R) (EV) or Σ_i √R_ii (NV), a smooth function of W whose gradient is the joint gradient at
σ = σ*(W) (envelope theorem), so the joint minimiser is the same and the inner solver is the log-det one.
"""
from __future__ import annotations


import torch

from optdsl.solvers.common import SolverOutput
from optdsl.solvers.dag.logdet import logdet


class ConcomitantLoss:
    """Profiled CoLiDE score (EV or NV) and its gradient; ``sigma(W)`` gives the estimated noise scale(s)."""

    def __init__(self, X: torch.Tensor, variance: str = "equal"):
        if variance not in ("equal", "non-equal"):
            raise ValueError(f"variance must be 'equal' or 'non-equal', got {variance!r}")
        Xc = X - X.mean(dim=0, keepdim=True)
        self.cov = Xc.T @ Xc / X.shape[0]
        self.eye = torch.eye(X.shape[1], dtype=X.dtype, device=X.device)
        self.variance = variance
        self.d = X.shape[1]

    def _resid(self, W):
        A = self.eye - W
        CA = self.cov @ A
        return A, CA, (A * CA).sum(0)            # R_ii = [(I−W)ᵀ C (I−W)]_ii

    def sigma(self, W: torch.Tensor) -> torch.Tensor:
        """σ*(W): a scalar (EV) or one scale per node (NV)."""
        _, _, r = self._resid(W)
        r = r.clamp_min(1e-300)
        return torch.sqrt(r.sum() / self.d) if self.variance == "equal" else torch.sqrt(r)

    def __call__(self, W: torch.Tensor):
        _, CA, r = self._resid(W)
        r = r.clamp_min(1e-300)
        if self.variance == "equal":
            sig = torch.sqrt(r.sum() / self.d)
            return self.d * sig, -CA / sig          # ∂/∂W of tr R/(2σ) + dσ/2 at σ = σ*
        sig = torch.sqrt(r)
        return sig.sum(), -CA / sig[None, :]


def colide(X: torch.Tensor, *, variance: str = "equal", lambda1: float = 0.05, **kw) -> SolverOutput:
    """CoLiDE-EV / CoLiDE-NV on data X; keyword options are those of ``logdet`` (T, mu_init, s, ...).

    extras["sigma"] holds the estimated noise scale(s) at the returned (raw) W.
    """
    loss = ConcomitantLoss(X, variance)
    out = logdet(loss, X.shape[1], lambda1=lambda1, **kw)
    out.extras["sigma"] = loss.sigma(out.x.to(X)).tolist()
    return out
