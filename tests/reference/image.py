"""References for resize_bilinear (PyTorch's formula), resize_antialias (PIL itself) and
preprocess (SAM's normalise-and-pad), plus the byte packing the tests upload images with."""

from __future__ import annotations

import numpy as np
from PIL import Image

SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)


def _axis(in_size: int, out_size: int):
    """PyTorch's upsample_bilinear2d source indices and weights (align_corners=False).

    Like PyTorch, the source coordinate is computed in float32 from a float32 scale: its
    rounding (1e-4 of a pixel near index 1000) shows on rough data, so float64 would differ.
    """
    f32 = np.float32
    scale = f32(in_size / out_size)
    src = np.maximum(scale * (np.arange(out_size, dtype=f32) + f32(0.5)) - f32(0.5), f32(0))
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, in_size - 1)
    return i0, i1, src.astype(np.float64) - i0


def resize_bilinear(x, out_h, out_w, crop_h=None, crop_w=None):
    """x (C, H, W) -> (C, out_h, out_w): interpolate(x[:, :crop_h, :crop_w], bilinear,
    align_corners=False), float64."""
    x = np.asarray(x, dtype=np.float64)[:, :crop_h, :crop_w]
    y0, y1, wy = _axis(x.shape[1], out_h)
    x0, x1, wx = _axis(x.shape[2], out_w)
    wy, wx = wy[:, None], wx[None, :]
    top = x[:, y0][:, :, x0] * (1 - wx) + x[:, y0][:, :, x1] * wx
    bottom = x[:, y1][:, :, x0] * (1 - wx) + x[:, y1][:, :, x1] * wx
    return top * (1 - wy) + bottom * wy


def resize_antialias(image, new_h, new_w):
    """image (H, W) or (H, W, 3 or 4) uint8 -> (new_h, new_w, 3) uint8: PIL itself, after
    convert("RGB") as SAM's loading does."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]  # PIL reads (H, W) as gray, not (H, W, 1)
    rgb = Image.fromarray(np.ascontiguousarray(image)).convert("RGB")
    return np.asarray(rgb.resize((new_w, new_h), Image.BILINEAR))


def preprocess(resized, size=1024, mean=SAM_PIXEL_MEAN, std=SAM_PIXEL_STD):
    """(h, w, 3) values 0..255 -> (size, size, 3): (x - mean) / std, zero-padded."""
    h, w, _ = resized.shape
    out = np.zeros((size, size, 3))
    out[:h, :w] = (np.asarray(resized, dtype=np.float64) - mean) / std
    return out


def pack_bytes(image: np.ndarray) -> np.ndarray:
    """An 8-bit image's row-major bytes as little-endian u32 words, zero-padded to a word."""
    data = np.ascontiguousarray(image, dtype=np.uint8).tobytes()
    return np.frombuffer(data + bytes(-len(data) % 4), dtype="<u4")
