"""Data movement: `permute` (any axis order) and TinyViT's `window_partition` /
`window_reverse`. Feature maps are channels-last (H, W, C)."""

from __future__ import annotations

import math

from ..gpu import Tensor
from ._common import ceil_div, check, check_f32, grid_1d, pack

WG = 64
MAX_RANK = 6
# Elements one permute invocation copies along the innermost output axis.
RUN = 16


def permute(x: Tensor, axes: tuple[int, ...] | list[int]) -> Tensor:
    """x with its axes reordered like numpy.transpose(x, axes), as a new contiguous tensor:
    out.shape[i] == x.shape[axes[i]]. Rank 1..6, any 4-byte dtype (copied bit for bit).

    Used once at load time to bring PyTorch weights into our layouts, e.g. a convolution
    (Cout, Cin, kh, kw) -> (kh, kw, Cin, Cout) with axes (2, 3, 1, 0), a Linear (out, in) ->
    (in, out) with (1, 0), and for NCHW <-> HWC.
    """
    op = "permute"
    axes = tuple(int(a) for a in axes)
    check(1 <= x.ndim <= MAX_RANK, op, f"x must have rank 1..{MAX_RANK}, got {x.shape}")
    check(
        sorted(axes) == list(range(x.ndim)),
        op,
        f"axes {axes} must be a permutation of 0..{x.ndim - 1} for x {x.shape}",
    )
    out = x.device.empty(tuple(x.shape[a] for a in axes), x.dtype)
    dims, strides = _collapse(x.shape, axes)
    # The kernel counts axes from the innermost one.
    dims, strides = dims[::-1], strides[::-1]
    rank = len(dims)
    rows = math.prod(dims[1:])
    chunks = ceil_div(dims[0], RUN)
    # d0..d4 and s0..s4; the kernel never needs the outermost size.
    sizes = (dims + [1] * MAX_RANK)[: MAX_RANK - 1]
    steps = (strides + [0] * MAX_RANK)[: MAX_RANK - 1]
    params = pack("I" * 13, rows * chunks, chunks, strides[-1], *sizes, *steps)
    constants: dict[str, float] = {"WG": WG, "RUN": RUN, "RANK": rank}
    grid = grid_1d(rows * chunks, WG)
    x.device.dispatch("permute", [x], [out], params, grid, constants)
    return out


def _collapse(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[list[int], list[int]]:
    """The output's (sizes, strides in x), outermost first, with size-1 axes dropped and
    output axes merged where they are also adjacent in x: fewer divisions per element, and a
    transpose that moves no data becomes a plain copy."""
    x_strides = [math.prod(shape[i + 1 :]) for i in range(len(shape))]
    dims: list[int] = []
    strides: list[int] = []
    for a in axes:
        if shape[a] == 1:
            continue
        # The previous output axis directly encloses axis a in x (only size-1 axes between).
        if dims and strides[-1] == x_strides[a] * shape[a]:
            dims[-1] *= shape[a]
            strides[-1] = x_strides[a]
        else:
            dims.append(shape[a])
            strides.append(x_strides[a])
    return (dims, strides) if dims else ([1], [0])


def window_partition(x: Tensor, window: int) -> Tensor:
    """Cut an (H, W, C) map into windows of window x window tokens for windowed attention.

    The map is zero-padded at the bottom and right to (nH * window, nW * window), with
    nH = ceil(H / window), nW = ceil(W / window). Returns (nH * nW, window * window, C):
    windows row-major over the window grid, tokens row-major inside a window.
    """
    op = "window_partition"
    check_f32(op, x=x)
    check(x.ndim == 3, op, f"x must be (H, W, C), got {x.shape}")
    check(window >= 1, op, f"window must be >= 1, got {window} for x {x.shape}")
    h, w, c = x.shape
    nh, nw = ceil_div(h, window), ceil_div(w, window)
    out = x.device.empty((nh * nw, window * window, c))
    vec4 = c % 4 == 0
    cu = c // 4 if vec4 else c
    tokens = nh * nw * window * window
    params = pack("IIIIIIII", tokens, h, w, cu, window, nw, 0, 0)
    constants: dict[str, float] = {"WG": WG, "VEC4": vec4}
    x.device.dispatch("window_partition", [x], [out], params, grid_1d(tokens, WG), constants)
    return out


def window_reverse(windows: Tensor, h: int, w: int, *, residual: Tensor | None = None) -> Tensor:
    """Reassemble (nH * nW, ws * ws, C) windows into an (h, w, C) map, dropping the padding
    that window_partition added, plus `residual` (h, w, C) if given (TinyViT's x + attn(x)).

    ws comes from the windows' token count; nH = ceil(h / ws) and nW = ceil(w / ws) must
    match their number. Returns a new (h, w, C) tensor.
    """
    op = "window_reverse"
    check_f32(op, windows=windows, residual=residual)
    check(windows.ndim == 3, op, f"windows must be (nH * nW, ws * ws, C), got {windows.shape}")
    check(h >= 1 and w >= 1, op, f"h and w must be >= 1, got {h}, {w}")
    n, area, c = windows.shape
    ws = math.isqrt(area)
    check(
        ws * ws == area and ws >= 1,
        op,
        f"{area} tokens per window is not a square: {windows.shape}",
    )
    nh, nw = ceil_div(h, ws), ceil_div(w, ws)
    check(
        n == nh * nw,
        op,
        f"{n} windows of {ws}x{ws} do not tile ({h}, {w}): need {nh} x {nw}; got {windows.shape}",
    )
    if residual is not None:
        check(
            residual.shape == (h, w, c), op, f"residual must be {(h, w, c)}, got {residual.shape}"
        )
    out = windows.device.empty((h, w, c))
    vec4 = c % 4 == 0
    cu = c // 4 if vec4 else c
    params = pack("IIIIIIII", h * w, w, cu, ws, nw, 0, 0, 0)
    constants: dict[str, float] = {"WG": WG, "VEC4": vec4, "HAS_RESIDUAL": residual is not None}
    grid = grid_1d(h * w, WG)
    windows.device.dispatch("window_reverse", [windows, residual], [out], params, grid, constants)
    return out
