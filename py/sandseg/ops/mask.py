"""Mask post-processing: `threshold` logits into packed binary masks; `mask_stats` for the
automatic mask generator's filters."""

from __future__ import annotations

import math

from ..gpu import Tensor
from ..gpu.device import BYTE_WORK
from ._common import MAX_GROUPS, ceil_div, check, check_f32, grid_1d, pack, slices

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


STATS_WORDS = 8


def mask_stats(logits: Tensor, value: float = 0.0, offset: float = 1.0) -> Tensor:
    """Per-plane counts and bounding box of full-size mask logits, for the mask generator.

    logits: (C, H, W) f32, planar. Returns a u32 tensor (C, 8); row c is
    [#(logit > value + offset), #(logit > value - offset), #(logit > value),
    x0, y0, x1, y1, 0]: the stability score's two counts, the mask's area and its box
    (smallest and largest column and row of a set pixel, inclusive; x0 = y0 = 0xffffffff
    and x1 = y1 = 0 for an empty mask). The thresholds are rounded to float32.
    """
    op = "mask_stats"
    check_f32(op, logits=logits)
    check(logits.ndim == 3, op, f"logits must be (C, H, W), got {logits.shape}")
    for name, v in (("value", value), ("offset", offset)):
        check(math.isfinite(v), op, f"{name} must be finite, got {v} for {logits.shape}")
    c, h, w = logits.shape
    # Planes are the grid's x dimension.
    check(c <= MAX_GROUPS, op, f"at most {MAX_GROUPS} planes, got {logits.shape}")
    device = logits.device
    out = device.empty((c, STATS_WORDS), "u32")
    # Work (see Device.dispatch): the bytes read, per plane; many planes go as several
    # dispatches, each over a range of planes (GP-5).
    work = 4.0 * h * w * BYTE_WORK
    for first, size in slices(device, work * c, c):
        params = pack("IIIIfff", h, w, first, 0, value, value + offset, value - offset)
        device.dispatch(op, [logits], [out], params, (size, 1, 1), {"WG": WG}, work * size)
    return out
