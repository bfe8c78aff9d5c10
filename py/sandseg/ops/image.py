"""Image and mask resampling: SAM's preprocessing (PIL-exact resize, normalise and pad) and
bilinear mask upscaling (PyTorch-compatible)."""

from __future__ import annotations

import functools
import math
import struct

from ..gpu import Tensor
from ._common import MAX_GROUPS, ceil_div, check, check_f32, pack

WG = 64
# PIL's fixed point for 8-bit resampling: 32 - 8 - 2 fraction bits (libImaging/Resample.c).
PRECISION_BITS = 22
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)


def resize_bilinear(
    x: Tensor, out_h: int, out_w: int, *, crop_h: int | None = None, crop_w: int | None = None
) -> Tensor:
    """Bilinear resize of planar maps, torch's interpolate(mode="bilinear",
    align_corners=False, antialias=False) of the top-left crop x[:, :crop_h, :crop_w].

    x: (C, H, W) f32; crop_h <= H, crop_w <= W (default the whole map; cropping reads in
    place, no copy). Returns (C, out_h, out_w).
    """
    op = "resize_bilinear"
    check_f32(op, x=x)
    check(x.ndim == 3, op, f"x must be (C, H, W), got {x.shape}")
    channels, in_h, in_w = x.shape
    crop_h = in_h if crop_h is None else crop_h
    crop_w = in_w if crop_w is None else crop_w
    check(
        0 < crop_h <= in_h and 0 < crop_w <= in_w,
        op,
        f"crop {crop_h}x{crop_w} must be non-empty and within x {x.shape}",
    )
    check(out_h > 0 and out_w > 0, op, f"output size {out_h}x{out_w} must be positive")
    check(
        out_h <= MAX_GROUPS and channels <= MAX_GROUPS,
        op,
        f"output {channels}x{out_h}x{out_w} exceeds {MAX_GROUPS} rows or channels",
    )
    out = x.device.empty((channels, out_h, out_w))
    # PyTorch's scale is float(in) / out in single precision; packing rounds it the same way.
    params = pack(
        "IIIIIIff", in_h, in_w, crop_h, crop_w, out_h, out_w, crop_h / out_h, crop_w / out_w
    )
    grid = (ceil_div(out_w, WG), out_h, channels)
    x.device.dispatch(op, [x], [out], params, grid, {"WG": WG})
    return out


def resize_longest_side(h: int, w: int, target: int = 1024) -> tuple[int, int]:
    """SAM's ResizeLongestSide size rule: the longer side becomes `target`, rounded half up."""
    scale = target * 1.0 / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


def resize_antialias(
    image_words: Tensor, height: int, width: int, channels: int, new_h: int, new_w: int
) -> Tensor:
    """PIL's Image.resize((new_w, new_h), Image.BILINEAR) of an 8-bit image, bit for bit.

    image_words: u32 (ceil(height * width * channels / 4),), the raw row-major image bytes
    packed little-endian four per word; channels 1 (gray), 3 (RGB) or 4 (RGBA). Gray is
    replicated to RGB and alpha dropped first, as PIL's convert("RGB"). Returns (new_h, new_w,
    3) u32 holding one value 0..255 per element. Downscaling antialiases (PIL's filter support
    grows with the scale). Two dispatches at most, one per axis in Pillow's order, each
    skipped when its size does not change (one runs as a copy if neither does).
    """
    op = "resize_antialias"
    words = ceil_div(height * width * channels, 4)
    check(image_words.dtype == "u32", op, f"image_words must be u32, got {image_words.dtype}")
    check(channels in (1, 3, 4), op, f"channels must be 1, 3 or 4, got {channels}")
    check(
        height > 0 and width > 0 and new_h > 0 and new_w > 0,
        op,
        f"sizes must be positive, got {height}x{width} -> {new_h}x{new_w}",
    )
    check(
        max(height, new_h) <= MAX_GROUPS,
        op,
        f"heights {height} and {new_h} must be at most {MAX_GROUPS}",
    )
    check(
        image_words.shape == (words,),
        op,
        f"image_words must be ({words},) for a {height}x{width}x{channels} image, "
        f"got {image_words.shape}",
    )
    src, size, src_channels, packed = image_words, (height, width), channels, True
    for horizontal in resize_passes(height, width, new_h, new_w):
        out_size = (size[0], new_w) if horizontal else (new_h, size[1])
        src = _resample_pass(src, size, out_size, src_channels, packed, horizontal=horizontal)
        size, src_channels, packed = out_size, 3, False
    return src


def resize_passes(height: int, width: int, new_h: int, new_w: int) -> list[bool]:
    """Pillow's passes for a resize, in order: True resamples along x, False along y; a pass
    whose size does not change is skipped (one horizontal copy if neither changes)."""
    need_h, need_v = new_w != width, new_h != height
    # Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many
    # pixels as the width (ImagingResampleInner); the order matters through the 8-bit
    # intermediate. Older Pillow always goes horizontal first: results differ in that case only.
    if need_h and need_v and height - new_h > max(0, 2 * (width - new_w)):
        return [False, True]
    return [step for step, needed in ((True, need_h or not need_v), (False, need_v)) if needed]


def _resample_pass(
    src: Tensor,
    in_size: tuple[int, int],
    out_size: tuple[int, int],
    channels: int,
    packed: bool,
    *,
    horizontal: bool,
) -> Tensor:
    """One dispatch of resize_antialias: (h, w) -> (h, new_w) or (h, w) -> (new_h, w)."""
    (in_h, in_w), (out_h, out_w) = in_size, out_size
    taps, data = pil_bilinear_table(in_w, out_w) if horizontal else pil_bilinear_table(in_h, out_h)
    table = src.device.upload(data, (len(data) // 4,), "i32")
    out = src.device.empty((out_h, out_w, 3), "u32")
    params = pack("IIIII", out_h, out_w, in_w, channels, taps)
    constants = {"WG": WG, "HORIZONTAL": horizontal, "PACKED": packed}
    grid = (ceil_div(out_w, WG), out_h)
    src.device.dispatch("resize_antialias", [src, table], [out], params, grid, constants)
    return out


@functools.lru_cache(maxsize=16)
def pil_bilinear_table(in_size: int, out_size: int) -> tuple[int, bytes]:
    """PIL's bilinear weights for one axis, as rows [lo, count, k_0 .. k_{taps-1}] of i32
    (the browser's WASM runtime resizes with the same table: browser/wasm.py).

    The documented exception to "no math on the host": WGSL has no f64, and matching PIL bit
    for bit needs its double-precision weights (precompute_coeffs and normalize_coeffs_8bpc in
    libImaging/Resample.c), rounded to fixed point exactly as PIL rounds them.
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale  # the bilinear filter's support is 1
    taps = math.ceil(support) * 2 + 1
    inv = 1.0 / filterscale
    rows: list[int] = []
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        # int() truncates toward zero like C's (int) cast.
        lo = max(int(center - support + 0.5), 0)
        count = min(int(center + support + 0.5), in_size) - lo
        weights = [max(1.0 - abs((x + lo - center + 0.5) * inv), 0.0) for x in range(count)]
        total = 0.0
        for w in weights:  # sequential sum, as in C (Python's sum() is compensated)
            total += w
        if total != 0.0:
            weights = [w / total for w in weights]
        fixed = [_to_fixed(w) for w in weights]
        rows += [lo, count, *fixed, *([0] * (taps - count))]
    return taps, struct.pack(f"<{len(rows)}i", *rows)


def _to_fixed(w: float) -> int:
    scaled = w * (1 << PRECISION_BITS)
    return int(scaled - 0.5) if w < 0 else int(scaled + 0.5)


def preprocess(
    resized: Tensor,
    *,
    size: int = 1024,
    mean: tuple[float, float, float] = SAM_PIXEL_MEAN,
    std: tuple[float, float, float] = SAM_PIXEL_STD,
) -> Tensor:
    """SAM's normalise-and-pad: (x - mean) / std per channel, zero-padded right and bottom.

    resized: (h, w, 3) u32 values 0..255 (resize_antialias's output), h, w <= size.
    Returns (size, size, 3) f32, channels-last: the image encoder's input.
    """
    op = "preprocess"
    check(resized.dtype == "u32", op, f"resized must be u32, got {resized.dtype}")
    check(
        resized.ndim == 3 and resized.shape[2] == 3,
        op,
        f"resized must be (h, w, 3), got {resized.shape}",
    )
    h, w, _ = resized.shape
    check(h <= size and w <= size, op, f"resized {resized.shape} does not fit in {size}x{size}")
    check(size <= MAX_GROUPS, op, f"size {size} exceeds {MAX_GROUPS}")
    check(all(s != 0 for s in std), op, f"std must be non-zero, got {std}")
    out = resized.device.empty((size, size, 3))
    params = pack("IIIIfffIfffI", h, w, size, 0, *mean, 0, *std, 0)
    grid = (ceil_div(size, WG), size)
    resized.device.dispatch(op, [resized], [out], params, grid, {"WG": WG})
    return out
