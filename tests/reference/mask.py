"""Reference for threshold: the unpacked boolean mask."""

from __future__ import annotations

import numpy as np


def threshold(logits: np.ndarray, value: float = 0.0) -> np.ndarray:
    """(C, H, W) logits -> (C, H, W) uint8 mask, 1 where logits > value."""
    return (logits > value).astype(np.uint8)
