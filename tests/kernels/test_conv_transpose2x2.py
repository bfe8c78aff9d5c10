"""conv_transpose2x2 (shaders/conv_transpose2x2.wgsl) against reference.conv.conv_transpose2x2."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg.ops import OpError
from sandseg.ops.conv import conv_transpose2x2
from tests.gpu_helpers import assert_close, assert_split, from_gpu, split_and_whole, to_gpu
from tests.reference import conv as ref


def _check(device, rng, hwc, cout, *, bias=True, act=None):
    """Random unit-normal data through the op and the reference; atol grows with sqrt(Cin)."""
    h, w, cin = hwc
    x = rng.standard_normal(hwc).astype(np.float32)
    wt = rng.standard_normal((cin, 2, 2, cout)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32) if bias else None
    expected = ref.conv_transpose2x2(x, wt, b, act=act)
    got = conv_transpose2x2(
        to_gpu(device, x), to_gpu(device, wt), None if b is None else to_gpu(device, b), act=act
    )
    assert got.shape == (2 * h, 2 * w, cout)
    assert_close(from_gpu(got), expected, atol=1e-5 * np.sqrt(cin) + 1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("hwc", "cout"),
    [
        ((64, 64, 256), 64),  # mask decoder output_upscaling.0
        ((128, 128, 64), 32),  # output_upscaling.3
    ],
)
def test_conv_transpose2x2_mask_decoder_shapes(device, rng, hwc, cout):
    _check(device, rng, hwc, cout, act="gelu" if cout == 32 else None)


@pytest.mark.parametrize(
    ("hwc", "cout"),
    [
        ((1, 1, 1), 1),  # simple path, one element of K
        ((3, 5, 6), 5),  # Cout not a multiple of 4 (simple path)
        ((3, 5, 6), 4),  # Cin not a multiple of 4: the scalar remainder of K
        ((3, 5, 9), 12),  # a block of 16 columns starts inside one tap (i, j), ends in the next
        ((2, 3, 5), 4),  # one block covers all four taps
        ((1, 1, 4), 8),
        ((7, 3, 16), 8),  # M = 21, not a multiple of 8
    ],
)
def test_conv_transpose2x2_awkward_shapes(device, rng, hwc, cout):
    _check(device, rng, hwc, cout)


@pytest.mark.parametrize("act", ["gelu", "relu", None])
@pytest.mark.parametrize("cout", [8, 3])  # the blocked path and the simple path
def test_conv_transpose2x2_fused_epilogue(device, rng, act, cout):
    _check(device, rng, (5, 6, 12), cout, act=act)


def test_conv_transpose2x2_without_bias(device, rng):
    _check(device, rng, (4, 4, 8), 16, bias=False)


def _conv_transpose_nchw(x, w, b):
    """PyTorch's ConvTranspose2d(kernel 2, stride 2) by plain loops: x (Cin, H, W),
    w (Cin, Cout, 2, 2); every input pixel scatters into its 2x2 output patch."""
    cin, h, wd = x.shape
    cout = w.shape[1]
    out = np.zeros((cout, 2 * h, 2 * wd)) + b[:, None, None].astype(np.float64)
    for ci in range(cin):
        for y in range(h):
            for xx in range(wd):
                for co in range(cout):
                    for i in range(2):
                        for j in range(2):
                            out[co, 2 * y + i, 2 * xx + j] += float(x[ci, y, xx]) * float(
                                w[ci, co, i, j]
                            )
    return out


def test_conv_transpose2x2_pytorch_layout_permuted(device, rng):
    x_chw = rng.standard_normal((6, 3, 4)).astype(np.float32)
    w_io22 = rng.standard_normal((6, 8, 2, 2)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    expected = _conv_transpose_nchw(x_chw, w_io22, b)
    got = conv_transpose2x2(
        to_gpu(device, x_chw.transpose(1, 2, 0)),
        to_gpu(device, w_io22.transpose(0, 2, 3, 1)),  # (Cin, Cout, 2, 2) -> (Cin, 2, 2, Cout)
        to_gpu(device, b),
    )
    assert_close(from_gpu(got), expected.transpose(1, 2, 0), atol=1e-5)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "fragment"),
    [
        ((4, 4), (4, 2, 2, 8), "must be \\(H, W, Cin\\)"),
        ((4, 4, 4), (4, 3, 3, 8), "must be \\(H, W, Cin\\)"),
        ((4, 4, 4), (6, 2, 2, 8), "must have Cin = 4"),
    ],
)
def test_conv_transpose2x2_rejects_bad_inputs_naming_them(device, x_shape, w_shape, fragment):
    with pytest.raises(OpError, match=fragment) as info:
        conv_transpose2x2(device.empty(x_shape), device.empty(w_shape))
    assert str(info.value).startswith("conv_transpose2x2:")


def test_conv_transpose2x2_rejects_bad_bias_act_and_dtype(device):
    x, w = device.empty((4, 4, 4)), device.empty((4, 2, 2, 8))
    with pytest.raises(OpError, match="bias must be \\(8,\\)"):
        conv_transpose2x2(x, w, device.empty((4,)))
    with pytest.raises(OpError, match="unknown activation"):
        conv_transpose2x2(x, w, act="sigmoid")
    with pytest.raises(OpError, match="x must be f32"):
        conv_transpose2x2(device.empty((4, 4, 4), "u32"), w)


# -- GP-5: a large dispatch split into slices gives the unsplit result, bit for bit --------


@pytest.mark.parametrize(
    ("hwc", "cout", "pieces"),
    [
        ((3 * 64, 64, 256), 64, 5),  # a batch of 3 prompts' output_upscaling.0, stacked on H
        ((3, 5, 6), 5, None),  # the simple path, every workgroup its own dispatch
        ((33, 9, 16), 8, None),  # the blocked path, M = 297 not a multiple of 8: 2 workgroups
    ],
)
def test_conv_transpose2x2_split_by_workgroups(device, rng, monkeypatch, hwc, cout, pieces):
    x = rng.standard_normal(hwc).astype(np.float32)
    wt = rng.standard_normal((hwc[2], 2, 2, cout)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    gx, gw, gb = to_gpu(device, x), to_gpu(device, wt), to_gpu(device, b)

    def op():
        return conv_transpose2x2(gx, gw, gb)

    expected, got, dispatches = split_and_whole(device, monkeypatch, op, pieces)
    assert_split(expected, got, dispatches, 2, pieces or 10**6)
    assert_close(got, ref.conv_transpose2x2(x, wt, b), atol=1e-5 * np.sqrt(hwc[2]) + 1e-5)
