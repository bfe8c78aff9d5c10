"""softmax (shaders/softmax.wgsl) against reference.norm.softmax."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg.ops import OpError
from sandseg.ops.norm import softmax
from tests.gpu_helpers import assert_close, from_gpu, to_gpu
from tests.reference import norm as ref


def _check(device, x):
    got = from_gpu(softmax(to_gpu(device, x)))
    assert_close(got, ref.softmax(x), atol=1e-7, rtol=2e-5)


@pytest.mark.parametrize(
    "shape",
    [
        (8, 7, 4096),  # token-to-image attention: 8 heads, 7 tokens, 64x64 keys
        (40, 196, 196),  # window attention scores: rows of 196 keys (14x14 windows of layers.2)
        (5, 1, 1),  # one-element rows: all ones
        (3, 7),  # N not a multiple of 4: scalar path
        (1, 5),
    ],
)
def test_softmax_model_and_awkward_shapes(device, rng, shape):
    _check(device, (4.0 * rng.standard_normal(shape)).astype(np.float32))


def test_softmax_large_values_and_equal_rows(device, rng):
    x = rng.standard_normal((6, 36)).astype(np.float32)
    x[0] *= 1e4  # exp would overflow without subtracting the maximum
    x[1] = 1e4 + x[1]
    x[2] = -1e4 + x[2]
    x[3] = 2.5  # equal values: exactly uniform
    x[4, 7] = 88.0  # one dominant value
    _check(device, x)
    _check(device, x[:, :35].copy())


def test_softmax_rows_sum_to_one(device, rng):
    x = (10.0 * rng.standard_normal((64, 4096))).astype(np.float32)
    got = from_gpu(softmax(to_gpu(device, x)))
    assert_close(got.sum(axis=-1, dtype=np.float64), np.ones(64), atol=1e-5)


def test_softmax_rejects_bad_inputs(device):
    with pytest.raises(OpError, match=r"^softmax: x must be \(\.\.\., N\) with N >= 1, got \(\)"):
        softmax(device.empty(()))
    with pytest.raises(
        OpError, match=r"^softmax: x must be \(\.\.\., N\) with N >= 1, got \(3, 0\)"
    ):
        softmax(device.empty((3, 0)))
    with pytest.raises(OpError, match=r"^softmax: x must be f32, got i32"):
        softmax(device.empty((3, 4), "i32"))
