"""permute (shaders/permute.wgsl) against reference.layout.permute."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sandseg.ops import OpError
from sandseg.ops.layout import permute
from tests.gpu_helpers import from_gpu, to_gpu
from tests.reference import layout as ref


def _check(device, x, axes, dtype="f32"):
    got = from_gpu(permute(to_gpu(device, x, dtype), axes))
    np.testing.assert_array_equal(got, ref.permute(x, axes))


@pytest.mark.parametrize(
    ("shape", "axes"),
    [
        ((256, 256, 3, 3), (2, 3, 1, 0)),  # neck conv weight (Cout, Cin, kh, kw) -> HWIO
        ((2048, 256), (1, 0)),  # Linear (out, in) -> (in, out)
        ((1, 64, 256, 256), (0, 2, 3, 1)),  # NCHW -> NHWC
        ((256, 256, 64), (2, 0, 1)),  # HWC -> CHW
    ],
)
def test_permute_model_layouts(device, rng, shape, axes):
    _check(device, rng.standard_normal(shape).astype(np.float32), axes)


@pytest.mark.parametrize("axes", list(itertools.permutations(range(3))))
def test_permute_every_order_of_three_axes(device, rng, axes):
    _check(device, rng.standard_normal((3, 5, 7)).astype(np.float32), axes)


@pytest.mark.parametrize(
    ("shape", "axes"),
    [
        ((5,), (0,)),
        ((1,), (0,)),
        ((1, 1, 1), (2, 0, 1)),  # a single element
        ((3, 1, 4), (2, 1, 0)),  # a dimension of 1
        ((2, 3, 4, 5, 6, 7), (5, 3, 1, 4, 0, 2)),  # rank 6, nothing merges
        ((2, 3, 4, 5, 6, 7), (0, 1, 4, 5, 2, 3)),  # rank 6, pairs merge
        ((3, 2, 2, 3, 2, 3), (1, 3, 5, 0, 2, 4)),
    ],
)
def test_permute_awkward_shapes(device, rng, shape, axes):
    _check(device, rng.standard_normal(shape).astype(np.float32), axes)


def test_permute_copies_other_dtypes_bit_for_bit(device, rng):
    x = rng.integers(0, 2**32, size=(6, 5, 4), dtype=np.uint32)
    x[0, 0, 0] = 0x7FC00001  # a NaN payload that a float path might canonicalise
    _check(device, x, (1, 2, 0), dtype="u32")


@pytest.mark.parametrize(
    ("shape", "axes", "fragment"),
    [
        ((2, 3), (0,), r"axes \(0,\) must be a permutation of 0\.\.1 for x \(2, 3\)"),
        ((2, 3), (1, 1), r"axes \(1, 1\) must be a permutation"),
        ((2, 3), (0, 2), r"axes \(0, 2\) must be a permutation"),
        ((), (), r"x must have rank 1\.\.6, got \(\)"),
        ((1,) * 7, tuple(range(7)), r"x must have rank 1\.\.6, got \(1, 1, 1, 1, 1, 1, 1\)"),
    ],
)
def test_permute_rejects_bad_axes(device, shape, axes, fragment):
    with pytest.raises(OpError, match=f"^permute: {fragment}"):
        permute(device.empty(shape), axes)
