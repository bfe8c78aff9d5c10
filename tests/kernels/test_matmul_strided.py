"""matmul_strided (shaders/matmul_strided.wgsl): transposed and unaligned operands."""

from __future__ import annotations

import pytest

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
