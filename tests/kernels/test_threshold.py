"""threshold (shaders/threshold.wgsl) against reference.mask.threshold."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg.ops import OpError
from sandseg.ops.mask import threshold
from tests.gpu_helpers import from_gpu, to_gpu
from tests.reference import mask as ref


def _unpack(words: np.ndarray, h: int, w: int) -> np.ndarray:
    """GPU words (C, ceil(H*W/4)) -> (C, H, W) bytes, checking the padding bytes are 0."""
    c = words.shape[0]
    data = words.astype("<u4").view(np.uint8).reshape(c, -1)
    assert not data[:, h * w :].any(), "pixels past H * W must be 0"
    return data[:, : h * w].reshape(c, h, w)


@pytest.mark.parametrize(
    "shape",
    [
        (3, 770, 769),  # masks at a full original-image size; 769 is not a multiple of 4
        (1, 1024, 1024),
        (1, 1, 1),
        (2, 3, 5),  # channels that start mid-word in the logits
    ],
)
def test_threshold_model_and_awkward_shapes(device, rng, shape):
    logits = rng.standard_normal(shape).astype(np.float32)
    logits.flat[::7] = 0.0  # exactly at the threshold: not set
    got = threshold(to_gpu(device, logits))
    assert got.shape == (shape[0], -(-shape[1] * shape[2] // 4))
    assert got.dtype == "u32"
    np.testing.assert_array_equal(_unpack(from_gpu(got), *shape[1:]), ref.threshold(logits))


def test_threshold_words_beyond_one_grid_dimension(device, rng):
    # 65535 workgroups of 64 words hold 16776960 pixels; a 4100 x 4100 mask needs more.
    logits = rng.standard_normal((1, 4100, 4100)).astype(np.float32)
    got = from_gpu(threshold(to_gpu(device, logits)))
    np.testing.assert_array_equal(_unpack(got, 4100, 4100), ref.threshold(logits))


def test_threshold_at_another_value(device, rng):
    logits = rng.standard_normal((2, 17, 9)).astype(np.float32)
    got = from_gpu(threshold(to_gpu(device, logits), value=0.5))
    np.testing.assert_array_equal(_unpack(got, 17, 9), ref.threshold(logits, 0.5))


def test_threshold_rejects_bad_inputs(device):
    with pytest.raises(OpError, match=r"^threshold: logits must be \(C, H, W\), got \(4, 4\)"):
        threshold(device.empty((4, 4)))
    with pytest.raises(OpError, match=r"^threshold: logits must be f32, got u32"):
        threshold(device.empty((1, 4, 4), "u32"))
    with pytest.raises(OpError, match=r"^threshold: value must be finite"):
        threshold(device.empty((1, 4, 4)), float("nan"))
