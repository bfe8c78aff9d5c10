"""Mask post-processing: `threshold` logits into packed binary masks."""

from __future__ import annotations

import math

from ..gpu import Tensor
from ._common import MAX_GROUPS, ceil_div, check, check_f32, grid_1d, pack

WG = 64


def threshold(logits: Tensor, value: float = 0.0) -> Tensor:
    """Binary masks `logits > value`, packed 4 pixels per u32 word.

    logits: (C, H, W) f32, planar. Returns a u32 tensor (C, ceil(H * W / 4)): byte j of
    word i of channel c is 1 if pixel 4 * i + j of that channel (row-major, i.e.
    y * W + x) is set, else 0. Read back as little-endian bytes, each channel's row of
    words holds its H * W mask bytes followed by up to 3 zero bytes.
    """
    op = "threshold"
    check_f32(op, logits=logits)
    check(logits.ndim == 3, op, f"logits must be (C, H, W), got {logits.shape}")
    check(math.isfinite(value), op, f"value must be finite, got {value} for {logits.shape}")
    c, h, w = logits.shape
    # Channels are the grid's z dimension.
    check(c <= MAX_GROUPS, op, f"at most {MAX_GROUPS} channels, got {logits.shape}")
    words = ceil_div(h * w, 4)
    out = logits.device.empty((c, words), "u32")
    x, y, _ = grid_1d(words, WG)
    params = pack("IIfI", h * w, words, value, 0)
    logits.device.dispatch("threshold", [logits], [out], params, (x, y, c), {"WG": WG})
    return out
