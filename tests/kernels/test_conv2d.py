"""conv2d (shaders/conv2d.wgsl) against reference.conv.conv2d, channels-last, HWIO weights.

The blocked path's variant is pinned to the `conv2d` kernel here; test_conv2d_subgroup.py
runs the blocked-path tests again on `conv2d_subgroup`."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg.ops import OpError
from sandseg.ops.conv import conv2d
from tests.gpu_helpers import assert_close, assert_split, from_gpu, split_and_whole, to_gpu
from tests.reference import conv as ref


@pytest.fixture(autouse=True)
def blocked_kernel(monkeypatch):
    monkeypatch.setenv("SANDSEG_KERNELS", "conv2d=blocked")


def _check(device, rng, hwc, kernel, cout, *, bias=True, residual=False, **kw):
    """Random unit-normal data through the op and the reference; atol grows with sqrt(K)."""
    h, w, cin = hwc
    groups, stride, padding = kw.get("groups", 1), kw.get("stride", 1), kw.get("padding", 0)
    x = rng.standard_normal(hwc).astype(np.float32)
    wt = rng.standard_normal((kernel, kernel, cin // groups, cout)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32) if bias else None
    out_shape = (
        (h + 2 * padding - kernel) // stride + 1,
        (w + 2 * padding - kernel) // stride + 1,
        cout,
    )
    res = rng.standard_normal(out_shape).astype(np.float32) if residual else None
    expected = ref.conv2d(x, wt, b, residual=res, **kw)
    got = conv2d(
        to_gpu(device, x),
        to_gpu(device, wt),
        None if b is None else to_gpu(device, b),
        residual=None if res is None else to_gpu(device, res),
        **kw,
    )
    assert got.shape == out_shape
    k = kernel * kernel * cin // groups
    assert_close(from_gpu(got), expected, atol=1e-5 * np.sqrt(k) + 1e-5, rtol=1e-5)


def test_conv2d_patch_embed_first_conv_full_size(device, rng):
    # patch_embed.seq.0: 3x3 stride 2 pad 1, 1024x1024x3 -> 512x512x32 (0.45 GFLOP).
    _check(device, rng, (1024, 1024, 3), 3, 32, stride=2, padding=1)


@pytest.mark.parametrize(
    ("hwc", "kernel", "cout", "kw"),
    [
        # patch_embed.seq.2 (GELU follows seq.0 in the model), reduced from 512x512
        ((64, 64, 32), 3, 64, {"stride": 2, "padding": 1, "act": "gelu"}),
        ((16, 16, 256), 3, 256, {"padding": 1}),  # neck.2, reduced from 64x64
        ((16, 16, 256), 1, 256, {}),  # neck.0 (1x1, no bias in the model)
        ((256, 256, 1), 2, 4, {"stride": 2}),  # mask downscaling conv 0
        ((128, 128, 4), 2, 16, {"stride": 2}),  # mask downscaling conv 1
        ((64, 64, 16), 1, 256, {}),  # mask downscaling conv 2 (1x1)
    ],
)
def test_conv2d_mobilesam_shapes(device, rng, hwc, kernel, cout, kw):
    _check(device, rng, hwc, kernel, cout, **kw)


@pytest.mark.parametrize(
    ("hwc", "kernel", "cout", "kw"),
    [
        ((1, 1, 3), 3, 8, {"padding": 1}),  # one pixel: every tap but the centre is padding
        ((1, 1, 5), 1, 4, {}),
        ((7, 5, 3), 3, 12, {"padding": 1}),  # odd sizes; M % 8 != 0; 12 of 16 channels
        ((5, 6, 8), 3, 24, {"groups": 2}),  # two blocks of 12 channels, one per group
        ((7, 5, 6), 3, 20, {"stride": 2, "padding": 1}),  # odd input, stride 2; 16 + 4 channels
        ((9, 7, 8), 3, 5, {"stride": 2, "padding": 1}),  # Cout not a multiple of 4 (simple path)
        ((6, 6, 8), 3, 16, {"padding": 1, "groups": 2}),
        ((6, 5, 8), 3, 16, {"padding": 1, "groups": 4}),  # Cout/groups = 4: one vec4 per block
        ((5, 6, 4), 3, 8, {"padding": 1, "groups": 4}),  # Cin/groups = 1, Cout/groups = 2
        ((9, 9, 4), 5, 8, {"stride": 3, "padding": 2}),  # 5x5 kernel, stride 3
        ((4, 6, 7), 4, 4, {}),  # kernel as tall as the image, no padding
    ],
)
def test_conv2d_awkward_shapes(device, rng, hwc, kernel, cout, kw):
    _check(device, rng, hwc, kernel, cout, **kw)


@pytest.mark.parametrize("act", ["gelu", "relu", None])
@pytest.mark.parametrize("cout", [24, 6])  # the blocked path and the simple path
def test_conv2d_fused_epilogue(device, rng, act, cout):
    _check(device, rng, (9, 11, 8), 3, cout, padding=1, act=act, residual=True)


def test_conv2d_without_bias(device, rng):
    _check(device, rng, (8, 8, 16), 3, 32, padding=1, bias=False, residual=True)


def test_conv2d_many_workgroups_spill_into_grid_y(device, rng):
    # The simple path: 1024 * 1024 * 17 / 4 invocations are 69632 workgroups of 64 (> 65535).
    _check(device, rng, (1024, 1024, 1), 1, 17)


def _conv2d_nchw(x, w, b, stride, padding, groups):
    """PyTorch's Conv2d by plain loops: x (Cin, H, W), w (Cout, Cin/groups, kh, kw)."""
    _, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (wd + 2 * padding - kw) // stride + 1
    out = np.zeros((cout, ho, wo))
    for co in range(cout):
        g = co // (cout // groups)
        for oy in range(ho):
            for ox in range(wo):
                acc = float(b[co])
                for ci in range(cin_g):
                    for ky in range(kh):
                        for kx in range(kw):
                            iy, ix = oy * stride - padding + ky, ox * stride - padding + kx
                            if 0 <= iy < h and 0 <= ix < wd:
                                acc += float(x[g * cin_g + ci, iy, ix]) * float(w[co, ci, ky, kx])
                out[co, oy, ox] = acc
    return out


def test_conv2d_pytorch_layout_permuted_to_hwio(device, rng):
    x_chw = rng.standard_normal((4, 5, 7)).astype(np.float32)
    w_oihw = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)  # groups=2
    b = rng.standard_normal(6).astype(np.float32)
    expected = _conv2d_nchw(x_chw, w_oihw, b, stride=2, padding=1, groups=2)
    got = conv2d(
        to_gpu(device, x_chw.transpose(1, 2, 0)),
        to_gpu(device, w_oihw.transpose(2, 3, 1, 0)),  # (Cout, Cin/g, kh, kw) -> HWIO
        to_gpu(device, b),
        stride=2,
        padding=1,
        groups=2,
    )
    assert_close(from_gpu(got), expected.transpose(1, 2, 0), atol=1e-5)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "kw", "fragment"),
    [
        ((4, 4), (3, 3, 4, 8), {}, "must be \\(H, W, Cin\\)"),
        ((4, 4, 4), (3, 3, 4), {}, "must be \\(H, W, Cin\\)"),
        ((4, 4, 6), (3, 3, 4, 8), {}, "needs Cin/groups = 6"),
        ((4, 4, 6), (3, 3, 2, 8), {"groups": 3}, "groups=3 must divide"),
        ((4, 4, 4), (3, 3, 4, 8), {"groups": 0}, "groups=0"),
        ((2, 2, 4), (5, 5, 4, 8), {"padding": 1}, "smaller than the kernel"),
        ((4, 4, 4), (3, 3, 4, 8), {"stride": 0}, "stride >= 1"),
        ((4, 4, 4), (3, 3, 4, 8), {"padding": -1}, "padding >= 0"),
        ((4, 4, 4), (3, 3, 4, 8), {"act": "tanh"}, "unknown activation"),
    ],
)
def test_conv2d_rejects_bad_inputs_naming_them(device, x_shape, w_shape, kw, fragment):
    with pytest.raises(OpError, match=fragment) as info:
        conv2d(device.empty(x_shape), device.empty(w_shape), **kw)
    assert str(info.value).startswith("conv2d:")


def test_conv2d_rejects_bad_bias_residual_and_dtype(device):
    x, w = device.empty((4, 4, 4)), device.empty((3, 3, 4, 8))
    with pytest.raises(OpError, match="bias must be \\(8,\\)"):
        conv2d(x, w, device.empty((4,)))
    with pytest.raises(OpError, match="residual must be \\(2, 2, 8\\)"):
        conv2d(x, w, residual=device.empty((4, 4, 8)))
    with pytest.raises(OpError, match="x must be f32"):
        conv2d(device.empty((4, 4, 4), "u32"), w)


# -- GP-5: a large dispatch split into slices gives the unsplit result, bit for bit --------


def f32(rng, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "pieces"),
    [
        ((64, 64, 256), (3, 3, 256, 256), 1, 1, 6),  # the neck's 3x3, 2.4 GFLOP
        ((512, 512, 32), (3, 3, 32, 64), 2, 1, 5),  # patch_embed's second convolution
        ((40, 30, 3), (3, 3, 3, 5), 2, 1, None),  # the simple path (5 channels), per workgroup
    ],
)
def test_conv2d_split_by_invocations(
    device, rng, monkeypatch, x_shape, w_shape, stride, padding, pieces
):
    x, w, bias = f32(rng, *x_shape), f32(rng, *w_shape) * 0.1, f32(rng, w_shape[3])
    gx, gw, gbias = to_gpu(device, x), to_gpu(device, w), to_gpu(device, bias)

    def op():
        return conv2d(gx, gw, gbias, stride=stride, padding=padding, act="gelu")

    expected, got, dispatches = split_and_whole(device, monkeypatch, op, pieces)
    assert_split(expected, got, dispatches, 2, pieces or 10**6)
    want = ref.conv2d(x, w, bias, stride=stride, padding=padding, act="gelu")
    assert_close(got, want, atol=1e-4, rtol=1e-4)
