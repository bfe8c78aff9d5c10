"""References for layer_norm and softmax (float64 inside, float32 out)."""

from __future__ import annotations

import numpy as np

from .linalg import activate


def layer_norm(x, weight, bias, eps=1e-5, act=None, residual=None):
    """torch.nn.LayerNorm over the last axis, then activation, then + residual."""
    x = x.astype(np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps) * weight.astype(np.float64) + bias.astype(np.float64)
    y = activate(y, act)
    if residual is not None:
        y = y + residual.astype(np.float64)
    return y.astype(np.float32)


def softmax(x):
    """softmax over the last axis (far-below-maximum values underflow to 0, as they should)."""
    x = x.astype(np.float64)
    with np.errstate(under="ignore"):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
