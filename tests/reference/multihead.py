"""Reference for attention (float64 inside), plus the torch-style head splits the tests use."""

from __future__ import annotations

import numpy as np


def split_heads(x: np.ndarray, heads: int) -> np.ndarray:
    """(B, N, C) -> (B, heads, N, C // heads): torch x.reshape(b, n, heads, c // heads)
    .transpose(1, 2), as in SAM's two-way transformer."""
    b, n, c = x.shape
    return x.reshape(b, n, heads, c // heads).transpose(0, 2, 1, 3)


def split_packed_qkv(qkv: np.ndarray, heads: int, key_dim: int, v_dim: int):
    """TinyViT: qkv.view(B, N, heads, -1).split([kd, kd, dv], dim=3), each permuted to
    (B, heads, N, d)."""
    b, n, _ = qkv.shape
    x = qkv.reshape(b, n, heads, -1).transpose(0, 2, 1, 3)
    return x[..., :key_dim], x[..., key_dim : 2 * key_dim], x[..., 2 * key_dim :]


def attention(q, k, v, bias=None, scale=None):
    """q (B, H, Nq, d), k (B, H, Nk, d), v (B, H, Nk, dv), bias (H, Nq, Nk) ->
    (B, Nq, H * dv): softmax(scale * q k^T + bias) v with the heads merged back."""
    q, k, v = (np.asarray(t, dtype=np.float64) for t in (q, k, v))
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = scale * (q @ np.swapaxes(k, -1, -2))
    if bias is not None:
        scores = scores + np.asarray(bias, dtype=np.float64)
    scores = scores - scores.max(axis=-1, keepdims=True)
    # Far-below-max scores have weights that underflow to 0: the right answer.
    with np.errstate(under="ignore"):
        weights = np.exp(scores)
        weights /= weights.sum(axis=-1, keepdims=True)
        out = weights @ v  # (B, H, Nq, dv)
    b, h, nq, dv = out.shape
    return out.transpose(0, 2, 1, 3).reshape(b, nq, h * dv)
