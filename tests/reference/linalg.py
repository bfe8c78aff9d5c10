"""References for matmul and the shared activations (float64 inside, float32 out)."""

from __future__ import annotations

import math

import numpy as np

_erf = np.vectorize(math.erf)


def gelu(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def activate(x: np.ndarray, act: str | None) -> np.ndarray:
    if act == "gelu":
        return gelu(x)
    if act == "relu":
        return np.maximum(x, 0.0)
    return x


def matmul(a, b, bias=None, residual=None, act=None, alpha=1.0, trans_a=False, trans_b=False):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    if trans_a:
        a = np.swapaxes(a, -1, -2)
    if trans_b:
        b = np.swapaxes(b, -1, -2)
    y = alpha * (a @ b)
    if bias is not None:
        y = y + bias
    y = activate(y, act)
    if residual is not None:
        y = y + residual
    return y.astype(np.float32)


matmul_strided = matmul
# The fast kernel's variants (sandseg.ops.variants) compute the same product.
matmul_tiled = matmul
matmul_subgroup = matmul
