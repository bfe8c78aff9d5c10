"""resize_bilinear (shaders/resize_bilinear.wgsl) against reference.resize_bilinear and the
official decoder's mask upscaling in the conformance vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sandseg.ops import OpError
from sandseg.ops.image import resize_bilinear
from tests.gpu_helpers import assert_close, from_gpu, to_gpu
from tests.reference import image as ref

CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
# Values of std 1: a lerp of lerps in f32 is within a few ulp of the float64 reference.
ATOL = 1e-5


def _check(device, rng, shape, out_h, out_w, crop_h=None, crop_w=None):
    x = rng.standard_normal(shape).astype(np.float32)
    got = resize_bilinear(to_gpu(device, x), out_h, out_w, crop_h=crop_h, crop_w=crop_w)
    assert got.shape == (shape[0], out_h, out_w)
    assert_close(from_gpu(got), ref.resize_bilinear(x, out_h, out_w, crop_h, crop_w), atol=ATOL)


def test_resize_bilinear_sam_mask_postprocessing(device, rng):
    # Low-res masks to 1024 x 1024, then the 1024 x 1023 crop back to the 770 x 769 original.
    _check(device, rng, (3, 256, 256), 1024, 1024)
    _check(device, rng, (3, 1024, 1024), 770, 769, crop_h=1024, crop_w=1023)


def test_resize_bilinear_reproduces_the_official_mask_logits(device):
    data = np.load(CONFORMANCE / "picture1_seed1234.npz")
    low_res = data["center_point__multi__low_res_masks"][0]  # (3, 256, 256)
    expected = data["center_point__multi__mask_logits"][0]  # (3, 770, 769)
    upscaled = resize_bilinear(to_gpu(device, low_res), 1024, 1024)
    got = resize_bilinear(upscaled, 770, 769, crop_h=1024, crop_w=1023)
    # PyTorch computed this in f32 too; logits are ~0.5 at most.
    assert_close(from_gpu(got), expected, atol=2e-6)


@pytest.mark.parametrize(
    ("shape", "out_h", "out_w", "crop"),
    [
        ((4, 64, 64), 256, 256, None),  # a 64 x 64 feature map upscaled 4x
        ((1, 1, 1), 5, 7, None),  # every output reads the one pixel
        ((2, 17, 13), 5, 4, None),  # downscaling (no antialias, like torch's default)
        ((3, 9, 11), 9, 11, None),  # same size: a copy
        ((2, 6, 5), 1, 1, None),
        ((1, 10, 12), 23, 5, (7, 3)),  # an odd crop, upscaled in y and downscaled in x
        ((5, 33, 65), 100, 3, (33, 64)),  # rows past one workgroup, an odd channel count
    ],
)
def test_resize_bilinear_awkward_shapes(device, rng, shape, out_h, out_w, crop):
    crop_h, crop_w = crop or (None, None)
    _check(device, rng, shape, out_h, out_w, crop_h, crop_w)


@pytest.mark.parametrize(
    ("shape", "kw", "fragment"),
    [
        ((256, 256), {}, r"x must be \(C, H, W\), got \(256, 256\)"),
        ((3, 256, 256), {"crop_h": 257}, "within x"),
        ((3, 256, 256), {"crop_w": 0}, "non-empty"),
        ((3, 256, 256), {"out_h": 0}, "must be positive"),
    ],
)
def test_resize_bilinear_rejects_bad_inputs(device, shape, kw, fragment):
    out_h = kw.pop("out_h", 8)
    with pytest.raises(OpError, match=fragment) as info:
        resize_bilinear(device.empty(shape), out_h, 8, **kw)
    assert str(info.value).startswith("resize_bilinear:")


def test_resize_bilinear_rejects_wrong_dtype(device):
    with pytest.raises(OpError, match="resize_bilinear: x must be f32"):
        resize_bilinear(device.empty((1, 4, 4), "u32"), 8, 8)
