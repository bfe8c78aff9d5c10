"""mask_stats (shaders/mask_stats.wgsl) against reference.mask.mask_stats."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg.ops import OpError
from sandseg.ops.mask import mask_stats
from tests.gpu_helpers import from_gpu, split_and_whole, to_gpu
from tests.reference import mask as ref


def _logits(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """Noise-like logits of the decoder's scale (about +-0.1), with values exactly at the
    thresholds, a NaN and an empty plane when there are planes to spare."""
    logits = (0.1 * rng.standard_normal(shape)).astype(np.float32)
    logits.flat[::7] = 0.0
    logits.flat[3::11] = np.float32(0.05)
    if shape[0] > 1:
        logits[-1] = -1.0  # an empty mask
        logits[0, 0, -1] = np.nan
    return logits


@pytest.mark.parametrize(
    "shape",
    [
        (3, 770, 769),  # one multimask prediction at picture1's size
        (3, 64, 1023),  # a crop; the width is not a multiple of the workgroup
        (1, 1, 1),
        (5, 3, 2),  # fewer columns than invocations
    ],
)
def test_mask_stats_model_and_awkward_shapes(device, rng, shape):
    logits = _logits(rng, shape)
    got = mask_stats(to_gpu(device, logits), 0.0, 0.05)
    assert got.shape == (shape[0], 8)
    assert got.dtype == "u32"
    np.testing.assert_array_equal(from_gpu(got), ref.mask_stats(logits, 0.0, 0.05))


def test_mask_stats_box_of_one_pixel_and_of_a_corner_block(device):
    logits = np.full((2, 9, 130), -1.0, np.float32)
    logits[0, 4, 129] = 1.0
    logits[1, 7:, :3] = 2.0
    got = from_gpu(mask_stats(to_gpu(device, logits), 0.0, 1.0))
    assert got[0].tolist() == [0, 1, 1, 129, 4, 129, 4, 0]
    assert got[1].tolist() == [6, 6, 6, 0, 7, 2, 8, 0]


def test_mask_stats_split_into_plane_ranges(device, monkeypatch, rng):
    # Paced (GP-5): a budget of a third of the work gives three dispatches, same result.
    x = to_gpu(device, _logits(rng, (7, 33, 65)))
    expected, got, dispatches = split_and_whole(device, monkeypatch, lambda: mask_stats(x), 3)
    assert 3 <= dispatches <= 4, dispatches
    np.testing.assert_array_equal(got, expected)


def test_mask_stats_rejects_bad_inputs(device):
    with pytest.raises(OpError, match=r"^mask_stats: logits must be \(C, H, W\), got \(4, 4\)"):
        mask_stats(device.empty((4, 4)))
    with pytest.raises(OpError, match=r"^mask_stats: logits must be f32, got u32"):
        mask_stats(device.empty((1, 4, 4), "u32"))
    with pytest.raises(OpError, match=r"^mask_stats: offset must be finite"):
        mask_stats(device.empty((1, 4, 4)), 0.0, float("inf"))
