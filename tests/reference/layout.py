"""References for permute, window_partition and window_reverse (exact copies)."""

from __future__ import annotations

import math

import numpy as np


def permute(x: np.ndarray, axes) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, axes))


def window_partition(x: np.ndarray, window: int) -> np.ndarray:
    """(H, W, C) -> (nH * nW, window * window, C), zero-padded bottom and right."""
    h, w, c = x.shape
    nh, nw = -(-h // window), -(-w // window)
    out = np.zeros((nh * nw, window * window, c), dtype=x.dtype)
    for wy in range(nh):
        for wx in range(nw):
            for ty in range(window):
                for tx in range(window):
                    y, xx = wy * window + ty, wx * window + tx
                    if y < h and xx < w:
                        out[wy * nw + wx, ty * window + tx] = x[y, xx]
    return out


def window_reverse(windows: np.ndarray, h: int, w: int, residual=None) -> np.ndarray:
    """(nH * nW, ws * ws, C) -> (h, w, C), padding dropped, plus residual."""
    ws = math.isqrt(windows.shape[1])
    nw = -(-w // ws)
    out = np.zeros((h, w, windows.shape[2]), dtype=np.float64)
    for y in range(h):
        for xx in range(w):
            out[y, xx] = windows[(y // ws) * nw + xx // ws, (y % ws) * ws + xx % ws]
    if residual is not None:
        out = out + residual.astype(np.float64)
    return out.astype(np.float32)
