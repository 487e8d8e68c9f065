"""Accuracy of a learned graph against the truth (Zheng et al. 2018, utils.count_accuracy).

With P the predicted edges and T the true ones (B[i, j] ≠ 0 means i → j):
* reversed: predicted i → j where the truth has j → i;
* SHD = extra skeleton edges + missing skeleton edges + reversed (a reversal counts once);
* TPR = correctly oriented predicted edges / |T|;  FDR = (reversed + false positives) / |P|.
"""
from __future__ import annotations

import numpy as np
import torch


def _np(B) -> np.ndarray:
    if isinstance(B, torch.Tensor):
        B = B.detach().cpu().numpy()
    B = np.asarray(B)
    if B.ndim != 2 or B.shape[0] != B.shape[1]:
        raise ValueError(f"adjacency must be a square (d, d) matrix, got shape {B.shape}")
    return B != 0


def count_accuracy(B_true, B_est) -> dict:
    """Return {'shd', 'tpr', 'fdr', 'fpr', 'nnz', 'reversed', 'extra', 'missing'} (floats/ints)."""
    T, P = _np(B_true), _np(B_est)
    if T.shape != P.shape:
        raise ValueError(f"B_true has shape {T.shape} but B_est has shape {P.shape}")
    d = T.shape[0]
    np.fill_diagonal(T, False)
    np.fill_diagonal(P, False)
    true_pos = int((P & T).sum())
    reversed_ = int((P & T.T & ~T).sum())
    false_pos = int((P & ~T & ~T.T).sum())
    nnz = int(P.sum())
    skel_T, skel_P = np.triu(T | T.T, 1), np.triu(P | P.T, 1)
    extra = int((skel_P & ~skel_T).sum())
    missing = int((skel_T & ~skel_P).sum())
    n_true = int(T.sum())
    neg = d * (d - 1) / 2 - n_true
    return {"shd": extra + missing + reversed_,
            "tpr": true_pos / max(n_true, 1),
            "fdr": (reversed_ + false_pos) / max(nnz, 1),
            "fpr": (reversed_ + false_pos) / max(neg, 1),
            "nnz": nnz, "reversed": reversed_, "extra": extra, "missing": missing}


def edge_list(W, names=None) -> list:
    """[(source, target, weight), ...] for the nonzero entries of W, strongest first."""
    Wn = W.detach().cpu().numpy() if isinstance(W, torch.Tensor) else np.asarray(W)
    ii, jj = np.nonzero(Wn)
    order = np.argsort(-np.abs(Wn[ii, jj]), kind="stable")
    lab = (lambda k: names[k]) if names is not None else int
    return [(lab(ii[k]), lab(jj[k]), float(Wn[ii[k], jj[k]])) for k in order]
