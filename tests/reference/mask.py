"""References for threshold (the unpacked boolean mask) and mask_stats."""

from __future__ import annotations

import numpy as np


def threshold(logits: np.ndarray, value: float = 0.0) -> np.ndarray:
    """(C, H, W) logits -> (C, H, W) uint8 mask, 1 where logits > value."""
    return (logits > value).astype(np.uint8)


def mask_stats(logits: np.ndarray, value: float = 0.0, offset: float = 1.0) -> np.ndarray:
    """(C, H, W) logits -> (C, 8) uint32: counts above value + offset, above value - offset
    and above value (thresholds in float32), then the box x0, y0, x1, y1 of the pixels above
    value (inclusive; 0xffffffff, 0xffffffff, 0, 0 if none), then 0."""
    c = logits.shape[0]
    out = np.zeros((c, 8), np.uint32)
    hi, lo, at = (np.float32(t) for t in (value + offset, value - offset, value))
    for i, plane in enumerate(logits):
        on = plane > at
        ys, xs = np.nonzero(on)
        box = (xs.min(), ys.min(), xs.max(), ys.max()) if on.any() else (2**32 - 1,) * 2 + (0, 0)
        out[i] = ((plane > hi).sum(), (plane > lo).sum(), on.sum(), *box, 0)
    return out
