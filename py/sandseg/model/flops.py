"""The image encoder's work per stage, in FLOPs (a multiply-add is 2), from the architecture's
hyper-parameters: what one stage's time is scaled by to estimate a whole encode (the browser's
runtime probe, browser/runtimes.py).

Counted: every convolution, linear layer and attention product, padded attention windows
included, as tiny_vit.py runs them. Not counted: norms, activations and copies (a few per
cent of the arithmetic; memory-bound on every runtime alike).
"""

from __future__ import annotations

import math
from functools import cache

from ..weights.layout import (
    DEPTHS,
    EMBED_DIMS,
    ENCODER_STAGES,
    MBCONV_EXPAND_RATIO,
    MLP_RATIO,
    PROMPT_EMBED_DIM,
    STAGE_BOUNDARIES,
    WINDOW_SIZES,
)


def _conv(h: int, w: int, c_in_per_group: int, c_out: int, k: int = 1) -> int:
    """A convolution whose output is (h, w, c_out)."""
    return 2 * h * w * c_out * c_in_per_group * k * k


def _merging(size: int, dim: int, out_size: int, out_dim: int) -> int:
    """PatchMerging: 1x1, depthwise 3x3 (strided to out_size), 1x1."""
    return (
        _conv(size, size, dim, out_dim)
        + _conv(out_size, out_size, 1, out_dim, 3)
        + _conv(out_size, out_size, out_dim, out_dim)
    )


def _tiny_vit_block(size: int, dim: int, window: int) -> int:
    tokens = size * size
    windows = math.ceil(size / window) ** 2  # padded to whole windows
    n = window * window
    attention = windows * (2 * n * dim * 3 * dim + 2 * 2 * n * n * dim + 2 * n * dim * dim)
    local_conv = _conv(size, size, 1, dim, 3)
    mlp = 2 * 2 * tokens * dim * MLP_RATIO * dim
    return attention + local_conv + mlp


def _layer(index: int) -> int:
    """layers.<index>: its blocks at the size entering it, then PatchMerging (not the last)."""
    size, _, dim = STAGE_BOUNDARIES[index + 1]
    out_size, _, out_dim = STAGE_BOUNDARIES[index + 2]
    if index == 0:
        hidden = dim * MBCONV_EXPAND_RATIO
        mbconv = (
            _conv(size, size, dim, hidden)
            + _conv(size, size, 1, hidden, 3)
            + _conv(size, size, hidden, dim)
        )
        blocks = DEPTHS[0] * mbconv
    else:
        blocks = DEPTHS[index] * _tiny_vit_block(size, dim, WINDOW_SIZES[index])
    merging = _merging(size, dim, out_size, out_dim) if index < len(EMBED_DIMS) - 1 else 0
    return blocks + merging


@cache
def encoder_stage_flops() -> dict[str, int]:
    """FLOPs of each encoder stage, in ENCODER_STAGES order."""
    size = STAGE_BOUNDARIES[1][0]
    half = EMBED_DIMS[0] // 2
    patch_embed = _conv(2 * size, 2 * size, 3, half, 3) + _conv(size, size, half, EMBED_DIMS[0], 3)
    grid = STAGE_BOUNDARIES[-1][0]
    neck = _conv(grid, grid, EMBED_DIMS[-1], PROMPT_EMBED_DIM) + _conv(
        grid, grid, PROMPT_EMBED_DIM, PROMPT_EMBED_DIM, 3
    )
    layers = [_layer(i) for i in range(len(EMBED_DIMS))]
    return dict(zip(ENCODER_STAGES, [patch_embed, *layers, neck], strict=True))


def stage_share(stage: str) -> float:
    """`stage`'s fraction of the whole encoder's FLOPs."""
    flops = encoder_stage_flops()
    if stage not in flops:
        raise ValueError(f"unknown encoder stage {stage!r}; the stages are {', '.join(flops)}")
    return flops[stage] / sum(flops.values())
