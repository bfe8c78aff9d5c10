"""layer_norm (shaders/layer_norm.wgsl) against reference.norm.layer_norm."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg.ops import OpError
from sandseg.ops.norm import WG, layer_norm
from tests.gpu_helpers import assert_close, from_gpu, to_gpu
from tests.reference import norm as ref


def _check(device, rng, shape, *, eps=1e-5, act=None, with_residual=False, offset=0.0):
    c = shape[-1]
    x = (offset + rng.standard_normal(shape)).astype(np.float32)
    w = rng.standard_normal(c).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    res = rng.standard_normal(shape).astype(np.float32) if with_residual else None
    got = layer_norm(
        to_gpu(device, x),
        to_gpu(device, w),
        to_gpu(device, b),
        eps=eps,
        act=act,
        residual=None if res is None else to_gpu(device, res),
    )
    want = ref.layer_norm(x, w, b, eps=eps, act=act, residual=res)
    assert_close(from_gpu(got), want, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("shape", "eps"),
    [
        ((16384, 128), 1e-5),  # TinyViT layers.1 MLP norm
        ((4096, 160), 1e-5),  # layers.2
        ((4096, 320), 1e-5),  # layers.3
        ((361 * 49, 128), 1e-5),  # window-padded attention input, layers.1
        ((25 * 196, 160), 1e-5),  # layers.2
        ((100 * 49, 320), 1e-5),  # layers.3
        ((64, 64, 256), 1e-6),  # neck LayerNorm2d, channels-last
        ((7, 256), 1e-5),  # decoder tokens
        ((256, 256, 4), 1e-6),  # prompt encoder mask downscaling LayerNorm2d
        ((128, 128, 16), 1e-6),
    ],
)
def test_layer_norm_model_shapes(device, rng, shape, eps):
    _check(device, rng, shape, eps=eps)


def test_layer_norm_2d_then_gelu_output_upscaling(device, rng):
    _check(device, rng, (128, 128, 64), eps=1e-6, act="gelu")


def test_layer_norm_relu_and_residual(device, rng):
    _check(device, rng, (33, 20), act="relu", with_residual=True)


def test_layer_norm_residual_on_scalar_path(device, rng):
    _check(device, rng, (9, 5), act="gelu", with_residual=True)


@pytest.mark.parametrize("shape", [(1, 1), (5, 1), (7, 3), (1, 256), (3,), (2, 3, 5)])
def test_layer_norm_awkward_shapes(device, rng, shape):
    _check(device, rng, shape)


def test_layer_norm_rows_with_a_large_mean(device, rng):
    # A mean 1e4 times the spread: E[x^2] - E[x]^2 in f32 would lose every digit.
    _check(device, rng, (300, 128), offset=1e4)
    _check(device, rng, (300, 3), offset=-1e4)


def test_layer_norm_rows_beyond_one_grid_dimension(device, rng):
    _check(device, rng, (65535 * WG + 3, 3))


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"weight": (8,)}, r"weight must be \(16,\), got \(8,\)"),
        ({"bias": (16, 1)}, r"bias must be \(16,\), got \(16, 1\)"),
        ({"residual": (4, 15)}, r"residual \(4, 15\) must match x \(4, 16\)"),
        ({"eps": 0.0}, "eps must be > 0"),
        ({"act": "tanh"}, "unknown activation 'tanh'"),
    ],
)
def test_layer_norm_rejects_bad_inputs(device, kw, fragment):
    args = {"weight": (16,), "bias": (16,), "residual": None}
    args.update({k: v for k, v in kw.items() if k in args})
    extra = {k: v for k, v in kw.items() if k in ("eps", "act")}
    with pytest.raises(OpError, match=f"^layer_norm: {fragment}"):
        layer_norm(
            device.empty((4, 16)),
            device.empty(args["weight"]),
            device.empty(args["bias"]),
            residual=None if args["residual"] is None else device.empty(args["residual"]),
            **extra,
        )


def test_layer_norm_rejects_scalars_and_non_f32(device):
    with pytest.raises(OpError, match=r"^layer_norm: x must be \(\.\.\., C\)"):
        layer_norm(device.empty(()), device.empty((1,)), device.empty((1,)))
    with pytest.raises(OpError, match=r"^layer_norm: x must be f32, got u32"):
        layer_norm(device.empty((2, 4), "u32"), device.empty((4,)), device.empty((4,)))
