"""Reference for the elementwise kernel (float64 inside, float32 out)."""

from __future__ import annotations

import numpy as np

from .linalg import gelu


def elementwise(op: str, *operands: np.ndarray, value: float = 0.0, shape=None) -> np.ndarray:
    """`op` as named in sandseg.ops.elementwise; `value` is the factor of scale and fill's
    value, `shape` is fill's shape. Broadcast operands (C,) pair with the last axis of x,
    add_tiled's b with its last axes."""
    x = [np.asarray(t, dtype=np.float64) for t in operands]
    if op == "add":
        y = x[0] + x[1]
    elif op == "mul":
        y = x[0] * x[1]
    elif op in ("add_bias", "add_tiled"):  # numpy broadcasting over the leading axes
        y = x[0] + x[1]
    elif op == "scale_shift":  # the shift is optional
        y = x[0] * x[1] + (x[2] if len(x) > 2 else 0.0)
    elif op == "gelu":
        y = gelu(x[0])
    elif op == "relu":
        y = np.maximum(x[0], 0.0)
    elif op == "scale":
        y = x[0] * value
    elif op == "fill":
        y = np.full(shape, value, dtype=np.float64)
    else:
        raise ValueError(f"unknown elementwise op {op!r}")
    return y.astype(np.float32)
