"""elementwise (shaders/elementwise.wgsl) through every op of sandseg.ops.elementwise."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg.ops import OpError
from sandseg.ops import elementwise as ew
from tests.gpu_helpers import assert_close, from_gpu, to_gpu
from tests.reference import pointwise as ref

# One invocation handles 4 elements on the vec4 path; this many elements overflow one grid
# dimension of 64-thread workgroups there, so the y dimension of grid_1d gets used.
VEC4_Y_GRID = 65535 * 64 * 4 + 4


def _normal(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize(
    "shape",
    [
        (4096, 256),  # image embedding + dense prompt embedding
        (1,),
        (5,),  # not a multiple of 4: scalar path
        (7, 3),
    ],
)
@pytest.mark.parametrize("op", ["add", "mul"])
def test_binary_ops_model_and_odd_sizes(device, rng, op, shape):
    a, b = _normal(rng, shape), _normal(rng, shape)
    got = getattr(ew, op)(to_gpu(device, a), to_gpu(device, b))
    assert_close(from_gpu(got), ref.elementwise(op, a, b), atol=0.0, rtol=1e-7)


@pytest.mark.parametrize(
    "shape",
    [
        (512, 512, 32),  # patch_embed's first convolution output (8.4M elements)
        (4, 3),  # count a multiple of 4 but C is not: scalar path
        (1, 1),
        (3, 5, 7),
    ],
)
def test_scale_shift_broadcasts_over_channels(device, rng, shape):
    x, s, t = _normal(rng, shape), _normal(rng, shape[-1:]), _normal(rng, shape[-1:])
    got = ew.scale_shift(to_gpu(device, x), to_gpu(device, s), to_gpu(device, t))
    assert_close(from_gpu(got), ref.elementwise("scale_shift", x, s, t), atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize(
    ("shape", "tile"),
    [
        ((3, 4096, 256), (4096, 256)),  # a batch of prompts' keys + the shared positional code
        ((2, 3, 5), (3, 5)),  # 15 elements per tile: the scalar path
        ((4, 6), (6,)),  # tile of 6 (not a multiple of 4) over a multiple-of-4 count
        ((1, 8), (1, 8)),  # one tile: plain add
        ((3, 2, 4), (4,)),
    ],
)
def test_add_tiled_repeats_b_over_leading_dimensions(device, rng, shape, tile):
    a, b = _normal(rng, shape), _normal(rng, tile)
    got = ew.add_tiled(to_gpu(device, a), to_gpu(device, b))
    assert got.shape == shape
    assert_close(from_gpu(got), ref.elementwise("add_tiled", a, b), atol=0.0, rtol=1e-7)


def test_add_tiled_equals_add_bit_for_bit(device, rng):
    # The batched decoder relies on this: each batch gets exactly what `add` gives alone.
    a, b = _normal(rng, (2, 64, 8)), _normal(rng, (64, 8))
    tiled = from_gpu(ew.add_tiled(to_gpu(device, a), to_gpu(device, b)))
    for i in range(2):
        alone = from_gpu(ew.add(to_gpu(device, a[i]), to_gpu(device, b)))
        assert np.array_equal(tiled[i], alone)


@pytest.mark.parametrize(("a", "b"), [((3, 4, 8), (5, 8)), ((8,), (2, 8)), ((4, 2), (0,))])
def test_add_tiled_rejects_shapes_that_do_not_tile(device, a, b):
    with pytest.raises(OpError, match=r"add_tiled: b's shape must be the trailing"):
        ew.add_tiled(device.empty(a), device.empty(b))


@pytest.mark.parametrize("shape", [(3, 3, 64, 128), (2, 5)])
def test_scale_shift_without_shift_folds_a_scale(device, rng, shape):
    # BatchNorm folding: a conv weight (kh, kw, Cin, Cout) scaled per output channel.
    x, s = _normal(rng, shape), _normal(rng, shape[-1:])
    got = ew.scale_shift(to_gpu(device, x), to_gpu(device, s))
    assert_close(from_gpu(got), ref.elementwise("scale_shift", x, s), atol=0.0, rtol=1e-7)


@pytest.mark.parametrize("shape", [(64, 64, 160), (2, 6), (5,)])
def test_add_bias_broadcasts_over_channels(device, rng, shape):
    x, b = _normal(rng, shape), _normal(rng, shape[-1:])
    got = ew.add_bias(to_gpu(device, x), to_gpu(device, b))
    assert_close(from_gpu(got), ref.elementwise("add_bias", x, b), atol=0.0, rtol=1e-7)


def test_add_bias_rows_beyond_one_grid_dimension(device, rng):
    # Broadcast ops run one invocation per row: 65535 * 64 + 1 rows need the y grid.
    x, b = _normal(rng, (65535 * 64 + 1, 1)), _normal(rng, (1,))
    got = ew.add_bias(to_gpu(device, x), to_gpu(device, b))
    assert_close(from_gpu(got), ref.elementwise("add_bias", x, b), atol=0.0, rtol=1e-7)


@pytest.mark.parametrize("shape", [(64, 64, 160), (7,)])
def test_gelu_matches_exact_erf_form(device, rng, shape):
    x = 3.0 * _normal(rng, shape)
    got = ew.gelu(to_gpu(device, x))
    assert_close(from_gpu(got), ref.elementwise("gelu", x), atol=2e-6, rtol=1e-5)


def test_relu_vec4_beyond_one_grid_dimension(device, rng):
    x = _normal(rng, (VEC4_Y_GRID,))
    got = ew.relu(to_gpu(device, x))
    assert_close(from_gpu(got), ref.elementwise("relu", x), atol=0.0)


def test_scale_scalar_path_beyond_one_grid_dimension(device, rng):
    x = _normal(rng, (65535 * 64 + 1,))  # odd count: one invocation per element
    got = ew.scale(to_gpu(device, x), -0.125)
    assert_close(from_gpu(got), ref.elementwise("scale", x, value=-0.125), atol=0.0)


@pytest.mark.parametrize("shape", [(4096, 256), (7,), (1,)])
def test_fill(device, shape):
    got = ew.fill(device, shape, 1.5)
    assert got.shape == shape
    assert_close(from_gpu(got), ref.elementwise("fill", shape=shape, value=1.5), atol=0.0)


def test_binary_op_rejects_mismatched_shapes(device):
    with pytest.raises(OpError, match=r"^add: .*\(4, 4\).*\(4, 5\)"):
        ew.add(device.empty((4, 4)), device.empty((4, 5)))


def test_broadcast_op_rejects_wrong_vector_length(device):
    with pytest.raises(OpError, match=r"^scale_shift: shift must be \(8,\), got \(4,\)"):
        ew.scale_shift(device.empty((2, 8)), device.empty((8,)), device.empty((4,)))
    with pytest.raises(OpError, match=r"^add_bias: x must have a channel dimension"):
        ew.add_bias(device.empty(()), device.empty((1,)))


def test_ops_reject_non_f32(device):
    with pytest.raises(OpError, match=r"^relu: x must be f32, got u32"):
        ew.relu(device.empty((4,), "u32"))
    with pytest.raises(OpError, match=r"^fill: dimensions must be >= 0"):
        ew.fill(device, (2, -1), 0.0)
