"""conv2d_depthwise (shaders/conv2d_depthwise.wgsl) against reference.conv.conv2d_depthwise."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg.ops import OpError
from sandseg.ops.conv import conv2d_depthwise
from tests.gpu_helpers import assert_close, assert_split, from_gpu, split_and_whole, to_gpu
from tests.reference import conv as ref


def _check(device, rng, hwc, kernel=3, *, bias=True, residual=False, **kw):
    """Random unit-normal data through the op and the reference; atol grows with sqrt(K)."""
    h, w, c = hwc
    stride, padding = kw.get("stride", 1), kw.get("padding", 1)
    x = rng.standard_normal(hwc).astype(np.float32)
    wt = rng.standard_normal((kernel, kernel, c)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32) if bias else None
    out_shape = (
        (h + 2 * padding - kernel) // stride + 1,
        (w + 2 * padding - kernel) // stride + 1,
        c,
    )
    res = rng.standard_normal(out_shape).astype(np.float32) if residual else None
    expected = ref.conv2d_depthwise(x, wt, b, residual=res, **kw)
    got = conv2d_depthwise(
        to_gpu(device, x),
        to_gpu(device, wt),
        None if b is None else to_gpu(device, b),
        residual=None if res is None else to_gpu(device, res),
        **kw,
    )
    assert got.shape == out_shape
    assert_close(from_gpu(got), expected, atol=1e-5 * kernel + 1e-5, rtol=1e-5)


def test_conv2d_depthwise_mbconv_full_size(device, rng):
    # layers.0 MBConv: 3x3 stride 1 at 256x256 on the 256 hidden channels (64 MB in, 64 out).
    _check(device, rng, (256, 256, 256))


@pytest.mark.parametrize(
    ("hwc", "kw"),
    [
        ((256, 256, 128), {"stride": 2}),  # layers.0 PatchMerging -> 128x128x128
        ((128, 128, 128), {}),  # TinyViT local_conv at 128x128
        ((64, 64, 160), {}),
        ((64, 64, 320), {}),  # last PatchMerging keeps stride 1
        ((128, 128, 160), {"stride": 2}),  # PatchMerging -> 64x64x160
    ],
)
def test_conv2d_depthwise_mobilesam_shapes(device, rng, hwc, kw):
    _check(device, rng, hwc, **kw)


@pytest.mark.parametrize(
    ("hwc", "kernel", "kw"),
    [
        ((6, 6, 3), 3, {}),  # C not a multiple of 4 (simple path)
        ((7, 5, 5), 3, {"stride": 2}),
        ((1, 1, 8), 3, {}),  # one pixel: only the centre tap is inside
        ((1, 1, 3), 3, {"stride": 2}),
        ((5, 7, 12), 3, {"stride": 2}),  # odd image, stride 2
        ((5, 7, 12), 3, {}),  # Wo = 7: the last pixel group is short
        ((9, 11, 8), 5, {"padding": 2}),  # 5x5 kernel
        ((6, 9, 4), 3, {"padding": 0}),
        ((6, 9, 4), 2, {"stride": 2, "padding": 0}),
    ],
)
def test_conv2d_depthwise_awkward_shapes(device, rng, hwc, kernel, kw):
    _check(device, rng, hwc, kernel, **kw)


@pytest.mark.parametrize("act", ["gelu", "relu", None])
@pytest.mark.parametrize("c", [16, 7])  # the vec4 path and the simple path
def test_conv2d_depthwise_fused_epilogue(device, rng, act, c):
    _check(device, rng, (9, 10, c), act=act, residual=True)


def test_conv2d_depthwise_without_bias(device, rng):
    _check(device, rng, (8, 8, 8), bias=False, residual=True)


def _depthwise_nchw(x, w, b, stride, padding):
    """PyTorch's Conv2d(groups=C) by plain loops: x (C, H, W), w (C, 1, kh, kw)."""
    c, h, wd = x.shape
    _, _, kh, kw = w.shape
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (wd + 2 * padding - kw) // stride + 1
    out = np.zeros((c, ho, wo))
    for ch in range(c):
        for oy in range(ho):
            for ox in range(wo):
                acc = float(b[ch])
                for ky in range(kh):
                    for kx in range(kw):
                        iy, ix = oy * stride - padding + ky, ox * stride - padding + kx
                        if 0 <= iy < h and 0 <= ix < wd:
                            acc += float(x[ch, iy, ix]) * float(w[ch, 0, ky, kx])
                out[ch, oy, ox] = acc
    return out


def test_conv2d_depthwise_pytorch_layout_permuted(device, rng):
    x_chw = rng.standard_normal((8, 5, 7)).astype(np.float32)
    w_c1hw = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    expected = _depthwise_nchw(x_chw, w_c1hw, b, stride=2, padding=1)
    got = conv2d_depthwise(
        to_gpu(device, x_chw.transpose(1, 2, 0)),
        to_gpu(device, w_c1hw[:, 0].transpose(1, 2, 0)),  # (C, 1, kh, kw) -> (kh, kw, C)
        to_gpu(device, b),
        stride=2,
    )
    assert_close(from_gpu(got), expected.transpose(1, 2, 0), atol=1e-5)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "kw", "fragment"),
    [
        ((4, 4), (3, 3, 4), {}, "must be \\(H, W, C\\)"),
        ((4, 4, 4), (3, 3, 4, 1), {}, "must be \\(H, W, C\\)"),
        ((4, 4, 4), (3, 3, 8), {}, "must have C = 4"),
        ((1, 1, 4), (3, 3, 4), {"padding": 0}, "smaller than the kernel"),
        ((4, 4, 4), (3, 3, 4), {"stride": 0}, "stride >= 1"),
        ((4, 4, 4), (3, 3, 4), {"act": "swish"}, "unknown activation"),
    ],
)
def test_conv2d_depthwise_rejects_bad_inputs_naming_them(device, x_shape, w_shape, kw, fragment):
    with pytest.raises(OpError, match=fragment) as info:
        conv2d_depthwise(device.empty(x_shape), device.empty(w_shape), **kw)
    assert str(info.value).startswith("conv2d_depthwise:")


def test_conv2d_depthwise_rejects_bad_bias_residual_and_dtype(device):
    x, w = device.empty((4, 4, 4)), device.empty((3, 3, 4))
    with pytest.raises(OpError, match="bias must be \\(4,\\)"):
        conv2d_depthwise(x, w, device.empty((3,)))
    with pytest.raises(OpError, match="residual must be \\(2, 2, 4\\)"):
        conv2d_depthwise(x, w, stride=2, residual=device.empty((4, 4, 4)))
    with pytest.raises(OpError, match="weight must be f32"):
        conv2d_depthwise(x, device.empty((3, 3, 4), "i32"))


# -- GP-5: a large dispatch split into slices gives the unsplit result, bit for bit --------


def f32(rng, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize(
    ("x_shape", "stride", "pieces"),
    [
        ((256, 256, 256), 1, 6),  # layers.0's MBConv, the largest depthwise convolution
        ((64, 64, 160), 2, 3),  # a downsampling one
        ((9, 7, 6), 1, None),  # the simple path (6 channels), per workgroup
    ],
)
def test_conv2d_depthwise_split_by_invocations(device, rng, monkeypatch, x_shape, stride, pieces):
    x, w, bias = f32(rng, *x_shape), f32(rng, 3, 3, x_shape[2]), f32(rng, x_shape[2])
    res_shape = ((x_shape[0] - 1) // stride + 1, (x_shape[1] - 1) // stride + 1, x_shape[2])
    res = f32(rng, *res_shape)
    gx, gw, gbias, gres = (to_gpu(device, t) for t in (x, w, bias, res))

    def op():
        return conv2d_depthwise(gx, gw, gbias, stride=stride, act="gelu", residual=gres)

    expected, got, dispatches = split_and_whole(device, monkeypatch, op, pieces)
    assert_split(expected, got, dispatches, 2, pieces or 10**6)
    want = ref.conv2d_depthwise(x, w, bias, stride=stride, act="gelu", residual=res)
    assert_close(got, want, atol=1e-5, rtol=1e-5)
