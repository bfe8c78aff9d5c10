"""window_partition (shaders/window_partition.wgsl) against reference.layout."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg.ops import OpError
from sandseg.ops.layout import window_partition, window_reverse
from tests.gpu_helpers import from_gpu, to_gpu
from tests.reference import layout as ref


@pytest.mark.parametrize(
    ("shape", "window", "count"),
    [
        ((128, 128, 128), 7, 361),  # layers.1: padded to 133 x 133
        ((64, 64, 160), 14, 25),  # layers.2: padded to 70 x 70
        ((64, 64, 320), 7, 100),  # layers.3: padded to 70 x 70
        ((14, 14, 8), 7, 4),  # no padding
        ((1, 1, 4), 7, 1),  # one token in a window of padding
        ((1, 1, 3), 1, 1),
        ((9, 5, 3), 4, 6),  # C not a multiple of 4: scalar path, padding both sides
        ((5, 11, 1), 3, 8),
    ],
)
def test_window_partition_model_and_awkward_shapes(device, rng, shape, window, count):
    x = rng.standard_normal(shape).astype(np.float32)
    got = from_gpu(window_partition(to_gpu(device, x), window))
    assert got.shape == (count, window * window, shape[2])
    np.testing.assert_array_equal(got, ref.window_partition(x, window))


@pytest.mark.parametrize(
    ("shape", "window"), [((128, 128, 128), 7), ((64, 64, 160), 14), ((9, 5, 3), 4)]
)
def test_window_partition_then_reverse_round_trips(device, rng, shape, window):
    x = rng.standard_normal(shape).astype(np.float32)
    res = rng.standard_normal(shape).astype(np.float32)
    windows = window_partition(to_gpu(device, x), window)
    back = from_gpu(window_reverse(windows, shape[0], shape[1]))
    np.testing.assert_array_equal(back, x)
    summed = from_gpu(window_reverse(windows, shape[0], shape[1], residual=to_gpu(device, res)))
    np.testing.assert_array_equal(summed, x + res)


@pytest.mark.parametrize(
    ("shape", "window", "fragment"),
    [
        ((4, 4), 2, r"x must be \(H, W, C\), got \(4, 4\)"),
        ((4, 4, 2), 0, r"window must be >= 1, got 0 for x \(4, 4, 2\)"),
    ],
)
def test_window_partition_rejects_bad_inputs(device, shape, window, fragment):
    with pytest.raises(OpError, match=f"^window_partition: {fragment}"):
        window_partition(device.empty(shape), window)
    with pytest.raises(OpError, match=r"^window_partition: x must be f32"):
        window_partition(device.empty((4, 4, 2), "i32"), 2)
