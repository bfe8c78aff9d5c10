"""Pre- and post-processing on the host (Pillow and numpy), for runtimes without the WGSL
kernels: the official code's own operations, in float32.

- pre: resize the longest side to 1024 with PIL's bilinear (antialiased when shrinking),
  normalise with SAM's mean and std, zero-pad right and bottom -> (1024, 1024, 3);
- post: low-res logits (C, 256, 256) -> bilinear (align_corners=False) to 1024 x 1024, crop to
  the resized image, bilinear to the original (H, W); masks are logits > 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..model import ImageInfo
from ..ops import resize_longest_side
from ..predictor import InputError

SIZE = 1024
PIXEL_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
PIXEL_STD = np.array([58.395, 57.12, 57.375], np.float32)


def preprocess(image: Any) -> tuple[np.ndarray, ImageInfo]:
    """(H, W[, C]) uint8, C 1, 3 or 4 -> ((1024, 1024, 3) float32, sizes)."""
    from PIL import Image

    pixels = np.asarray(image)
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise InputError(f"image must be (H, W[, C]) uint8; got {pixels.dtype} {pixels.shape}")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 3 and pixels.shape[2] not in (3, 4):
        raise InputError(f"image must be gray, RGB or RGBA; got {pixels.shape[2]} channels")
    h, w = pixels.shape[:2]
    if h == 0 or w == 0:
        raise InputError(f"image is empty: {h}x{w}")
    new_h, new_w = resize_longest_side(h, w, SIZE)
    # PIL's convert("RGB") replicates gray and drops alpha, as the WGSL pre-processing does.
    rgb = Image.fromarray(np.ascontiguousarray(pixels)).convert("RGB")
    resized = np.asarray(rgb.resize((new_w, new_h), Image.Resampling.BILINEAR))
    x = np.zeros((SIZE, SIZE, 3), np.float32)
    x[:new_h, :new_w] = (resized.astype(np.float32) - PIXEL_MEAN) / PIXEL_STD
    return x, ImageInfo((h, w), (new_h, new_w))


def upscale(low_res: np.ndarray, info: ImageInfo) -> np.ndarray:
    """(C, 256, 256) logits -> (C, H, W) logits at the original size (SAM's postprocess)."""
    h, w = info.original
    rh, rw = info.resized
    # Resize to 1024 x 1024 and crop to the resized image: only the rows and columns kept.
    x = _resize_axis(low_res, 1, SIZE, rh)
    x = _resize_axis(x, 2, SIZE, rw)
    return _resize_axis(_resize_axis(x, 1, h, h), 2, w, w)


def _resize_axis(x: np.ndarray, axis: int, n_out: int, keep: int) -> np.ndarray:
    """PyTorch's 1-D bilinear resize along `axis` to n_out samples, align_corners=False
    (source (i + 0.5) * n_in / n_out - 0.5, clamped at 0), keeping the first `keep`."""
    n_in = x.shape[axis]
    src = np.maximum((np.arange(keep, dtype=np.float32) + 0.5) * np.float32(n_in / n_out) - 0.5, 0)
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    shape = [1, 1, 1]
    shape[axis] = keep
    frac = (src - i0).astype(np.float32).reshape(shape)
    return np.take(x, i0, axis) * (1 - frac) + np.take(x, i1, axis) * frac
