"""window_reverse (shaders/window_reverse.wgsl) against reference.layout.window_reverse."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg.ops import OpError
from sandseg.ops.layout import window_reverse
from tests.gpu_helpers import from_gpu, to_gpu
from tests.reference import layout as ref


@pytest.mark.parametrize(
    ("windows_shape", "h", "w", "with_residual"),
    [
        ((361, 49, 128), 128, 128, True),  # layers.1 attention output + block input
        ((25, 196, 160), 64, 64, True),  # layers.2
        ((100, 49, 320), 64, 64, False),  # layers.3
        ((4, 49, 8), 14, 14, True),  # no padding
        ((1, 49, 4), 1, 1, True),  # one token kept out of 49
        ((6, 16, 3), 9, 5, True),  # scalar path, padding both sides
        ((2, 1, 1), 1, 2, False),  # 1x1 windows
    ],
)
def test_window_reverse_model_and_awkward_shapes(device, rng, windows_shape, h, w, with_residual):
    windows = rng.standard_normal(windows_shape).astype(np.float32)
    c = windows_shape[2]
    res = rng.standard_normal((h, w, c)).astype(np.float32) if with_residual else None
    got = window_reverse(
        to_gpu(device, windows), h, w, residual=None if res is None else to_gpu(device, res)
    )
    assert got.shape == (h, w, c)
    np.testing.assert_array_equal(from_gpu(got), ref.window_reverse(windows, h, w, residual=res))


@pytest.mark.parametrize(
    ("windows_shape", "h", "w", "residual", "fragment"),
    [
        ((4, 48, 8), 14, 14, None, r"48 tokens per window is not a square: \(4, 48, 8\)"),
        ((4, 49, 8), 14, 15, None, r"4 windows of 7x7 do not tile \(14, 15\): need 2 x 3"),
        ((4, 49, 8), 14, 14, (14, 14, 4), r"residual must be \(14, 14, 8\), got \(14, 14, 4\)"),
        ((4, 49), 14, 14, None, r"windows must be \(nH \* nW, ws \* ws, C\), got \(4, 49\)"),
        ((4, 0, 8), 14, 14, None, r"0 tokens per window is not a square"),
        ((4, 49, 8), 0, 14, None, r"h and w must be >= 1, got 0, 14"),
    ],
)
def test_window_reverse_rejects_bad_inputs(device, windows_shape, h, w, residual, fragment):
    res = None if residual is None else device.empty(residual)
    with pytest.raises(OpError, match=f"^window_reverse: {fragment}"):
        window_reverse(device.empty(windows_shape), h, w, residual=res)
