"""matmul_strided (shaders/matmul_strided.wgsl): transposed and unaligned operands."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg import ops
from tests import reference
from tests.gpu_helpers import assert_close, assert_split, split_and_whole, to_gpu
from tests.kernels.test_matmul import check_matmul


@pytest.mark.parametrize(
    ("a_shape", "b_shape", "kw"),
    [
        ((5, 7), (7, 3), {}),  # K and N not multiples of 4
        ((1, 1), (1, 1), {}),
        ((3, 64, 32), (3, 16, 32), {"trans_b": True}),  # q @ k^T per head
        ((32, 9), (32, 4), {"trans_a": True}),
        ((4, 8, 12), (12, 20), {"with_bias": True, "act": "relu"}),  # shared weight, batched
    ],
)
def test_matmul_strided_transposes_and_unaligned(device, rng, a_shape, b_shape, kw):
    check_matmul(device, rng, a_shape, b_shape, **kw)


# -- GP-5: a large dispatch split into slices gives the unsplit result, bit for bit --------


def f32(rng, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def test_strided_matmul_split_by_rows(device, rng, monkeypatch):
    # The decoder's transposed products take the strided kernel; 8 rows per workgroup.
    a, b = f32(rng, 100, 32), f32(rng, 50, 32)
    ga, gb = to_gpu(device, a), to_gpu(device, b)
    expected, got, dispatches = split_and_whole(
        device, monkeypatch, lambda: ops.matmul(ga, gb, trans_b=True), 4
    )
    assert_split(expected, got, dispatches, 2, 4)
    assert_close(got, reference.matmul(a, b, trans_b=True), atol=1e-5 * np.sqrt(32), rtol=1e-5)
