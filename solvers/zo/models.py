"""Tensor-level data and model helpers for ZO examples, tests and benchmarks (no downloads).

* ``tiny_decoder(vocab, d_model, n_layers, n_heads, seq_len)``: a small GPT-style decoder-only transformer
  (token + position embeddings, pre-LN blocks with causal self-attention and a 4x MLP, tied LM head) whose
  ``blocks`` attribute exposes the block sequence (used by block-wise / offloaded ZO).
* ``lm_loss(model, tokens)``: next-token cross-entropy.
* ``synthetic_tokens(n, seq_len, vocab, seed)``: locally generated token data with learnable structure
  (a random order-1 Markov chain).
* ``load_digits_split(seed)``: scikit-learn's bundled 8x8 digits (1797 images, no network), standardised,
  split 75/25; ``mlp(sizes)``: a small tanh MLP.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F


class _Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.h = h

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.h, D // self.h).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(B, T, D))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class _Embed(nn.Module):
    def __init__(self, vocab, d, seq_len):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(seq_len, d))

    def forward(self, idx):
        return self.tok(idx) + self.pos[: idx.shape[1]]


class _Head(nn.Module):
    def __init__(self, d, embed, vocab, tie):
        super().__init__()
        self.ln = nn.LayerNorm(d)
        # tied: reuse the embedding matrix (kept in a list so it is not registered twice); untied: own
        # matrix, needed by block-wise ZO where every parameter belongs to exactly one block
        self.embed = [embed] if tie else None
        self.out = None if tie else nn.Linear(d, vocab, bias=False)

    def forward(self, x):
        x = self.ln(x)
        return x @ self.embed[0].tok.weight.t() if self.out is None else self.out(x)


class TinyDecoder(nn.Module):
    """GPT-style decoder; ``blocks`` = [embedding, transformer blocks..., head] as a plain sequence."""

    def __init__(self, vocab=8192, d_model=512, n_layers=8, n_heads=8, seq_len=128, tie=False):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.embed = _Embed(vocab, d_model, seq_len)
        self.layers = nn.ModuleList(_Block(d_model, n_heads) for _ in range(n_layers))
        self.head = _Head(d_model, self.embed, vocab, tie)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)
        for blk in self.layers:
            nn.init.normal_(blk.fc2.weight, std=0.02 / math.sqrt(2 * n_layers))

    @property
    def blocks(self):
        return [self.embed, *self.layers, self.head]

    def forward(self, idx):
        h = idx
        for b in self.blocks:
            h = b(h)
        return h


def tiny_decoder(vocab=8192, d_model=512, n_layers=8, n_heads=8, seq_len=128, tie=False) -> TinyDecoder:
    """Build the decoder (defaults: ~33.7M parameters untied, ~29.5M tied)."""
    return TinyDecoder(vocab, d_model, n_layers, n_heads, seq_len, tie)


def lm_loss(model, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of ``model`` on a (B, T+1) token batch."""
    return logits_loss(model(tokens[:, :-1]), tokens)


def logits_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy from logits of tokens[:, :-1] (the block-wise ``loss_fn``)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def synthetic_tokens(n: int, seq_len: int, vocab: int, seed: int = 0, branching: int = 4) -> torch.Tensor:
    """(n, seq_len+1) tokens from a random sparse Markov chain (each token has ``branching`` successors)."""
    g = torch.Generator().manual_seed(seed)
    succ = torch.randint(0, vocab, (vocab, branching), generator=g)
    out = torch.empty(n, seq_len + 1, dtype=torch.long)
    out[:, 0] = torch.randint(0, vocab, (n,), generator=g)
    for t in range(seq_len):
        out[:, t + 1] = succ[out[:, t], torch.randint(0, branching, (n,), generator=g)]
    return out


def load_digits_split(seed: int = 0, dtype=torch.float32):
    """(Xtr, ytr, Xte, yte) from sklearn's bundled digits, standardised with the training statistics."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download
    d = load_digits()
    X = torch.tensor(d.data, dtype=dtype)
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    X, y = X[perm], y[perm]
    ntr = int(0.75 * len(y))
    mu, sd = X[:ntr].mean(0), X[:ntr].std(0).clamp(min=1e-3)
    X = (X - mu) / sd
    return X[:ntr], y[:ntr], X[ntr:], y[ntr:]


def mlp(sizes=(64, 32, 10), seed: int = 0) -> nn.Sequential:
    """A tanh MLP with deterministic initialisation."""
    torch.manual_seed(seed)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)
