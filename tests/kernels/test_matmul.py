"""matmul (shaders/matmul.wgsl, the fast path) against reference.matmul.

These tests pin the register-blocked variant (`blocked`; its 8x8-workgroup twin is checked
at the model's shapes too); test_matmul_tiled.py and test_matmul_subgroup.py run the same
checks on the other variants, and tests/test_tuning.py the choice among them."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg import ops
from sandseg.ops import OpError
from tests import reference
from tests.gpu_helpers import assert_close, assert_split, from_gpu, split_and_whole, to_gpu


@pytest.fixture(autouse=True)
def blocked(monkeypatch):
    monkeypatch.setenv("SANDSEG_KERNELS", "matmul=blocked")


def check_matmul(device, rng, a_shape, b_shape, *, atol=2e-5, **kw):
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    n = b_shape[-2] if kw.get("trans_b") else b_shape[-1]
    bias = rng.standard_normal(n).astype(np.float32) if kw.pop("with_bias", False) else None
    want_res = kw.pop("with_residual", False)
    expected = reference.matmul(a, b, bias=bias, **kw)
    residual = rng.standard_normal(expected.shape).astype(np.float32) if want_res else None
    expected = reference.matmul(a, b, bias=bias, residual=residual, **kw)
    got = ops.matmul(
        to_gpu(device, a),
        to_gpu(device, b),
        bias=None if bias is None else to_gpu(device, bias),
        residual=None if residual is None else to_gpu(device, residual),
        **kw,
    )
    scale = np.sqrt(a.shape[-1] if not kw.get("trans_a") else a.shape[-2])
    assert_close(from_gpu(got), expected, atol=atol * scale, rtol=1e-5)


@pytest.mark.parametrize(
    ("m", "k", "n"),
    [
        (16384, 128, 512),  # TinyViT layers.1 MLP fc1
        (4096, 640, 160),  # layers.2 MLP fc2
        (4900, 160, 480),  # layers.2 qkv over 25 windows of 14x14
        (7, 256, 2048),  # two-way transformer MLP on 7 tokens
        (1, 4, 4),  # smallest aligned
        (33, 12, 20),  # rows and columns past the tile edges
    ],
)
def test_matmul_fast_path_model_and_awkward_shapes(device, rng, m, k, n):
    check_matmul(device, rng, (m, k), (k, n))


@pytest.mark.parametrize(
    ("m", "k", "n"), [(4900, 160, 480), (7, 256, 2048), (33, 12, 20), (130, 20, 68)]
)
def test_matmul_blocked8x8_variant(device, rng, monkeypatch, m, k, n):
    monkeypatch.setenv("SANDSEG_KERNELS", "matmul=blocked8x8")
    check_matmul(device, rng, (m, k), (k, n), with_bias=True, act="gelu")


@pytest.mark.parametrize("act", ["gelu", "relu", None])
def test_matmul_fused_epilogue(device, rng, act):
    check_matmul(
        device, rng, (70, 64), (64, 36), act=act, alpha=0.5, with_bias=True, with_residual=True
    )


@pytest.mark.parametrize("trans_b", [False, True])  # the fast and the strided kernel
def test_matmul_with_no_rows_is_empty(device, rng, monkeypatch, trans_b):
    # With a work budget set, so the split path sees a product of no rows too.
    monkeypatch.setattr(device, "work_budget", lambda: 1.0)
    check_matmul(device, rng, (0, 8), (12, 8) if trans_b else (8, 12), trans_b=trans_b)


def test_matmul_batched_fast_path(device, rng):
    check_matmul(device, rng, (3, 20, 8), (3, 8, 12), with_bias=True, with_residual=True)


def test_matmul_many_row_tiles_near_workgroup_limit(device, rng):
    # 65535 * 32 rows would be the limit of one grid dimension; 2**20 rows with K=N=4 keeps
    # the test small while covering a y-grid of 32768 workgroups.
    check_matmul(device, rng, (1 << 20, 4), (4, 4))


def test_linear_over_leading_dimensions(device, rng):
    x = rng.standard_normal((2, 5, 16)).astype(np.float32)
    w = rng.standard_normal((16, 8)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    got = ops.linear(to_gpu(device, x), to_gpu(device, w), to_gpu(device, b), act="gelu")
    assert got.shape == (2, 5, 8)
    assert_close(from_gpu(got), reference.matmul(x, w, bias=b, act="gelu"), atol=1e-4)


@pytest.mark.parametrize(
    ("a_shape", "b_shape", "fragment"),
    [
        ((4, 5), (6, 4), "inner dimensions differ"),
        ((4,), (4, 4), "2-D or 3-D"),
        ((2, 4, 4), (3, 4, 4), "batch of"),
    ],
)
def test_matmul_rejects_bad_shapes_naming_them(device, a_shape, b_shape, fragment):
    a = device.empty(a_shape)
    b = device.empty(b_shape)
    with pytest.raises(OpError, match=fragment) as info:
        ops.matmul(a, b)
    assert str(info.value).startswith("matmul:")
    assert str(a_shape[-1]) in str(info.value)


def test_matmul_rejects_wrong_dtype(device):
    with pytest.raises(OpError, match="must be f32"):
        ops.matmul(device.empty((4, 4), "u32"), device.empty((4, 4)))


# -- GP-5: a large dispatch split into slices gives the unsplit result, bit for bit --------


def f32(rng, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize(
    ("m", "k", "n", "pieces"),
    [
        (4096, 1280, 320, 7),  # layers.3 MLP fc2, the largest product of the encoder
        (65536, 64, 256, 5),  # layers.0 MBConv expansion
        (1000, 12, 20, None),  # 32 workgroup rows, each its own dispatch
    ],
)
def test_matmul_split_by_rows(device, rng, monkeypatch, m, k, n, pieces):
    a, b, bias, res = f32(rng, m, k), f32(rng, k, n), f32(rng, n), f32(rng, m, n)
    ga, gb, gbias, gres = (to_gpu(device, t) for t in (a, b, bias, res))

    def op():
        return ops.matmul(ga, gb, bias=gbias, residual=gres, act="gelu")

    expected, got, dispatches = split_and_whole(device, monkeypatch, op, pieces)
    grid_rows = -(-m // 32)
    assert_split(expected, got, dispatches, 2, pieces or grid_rows)
    want = reference.matmul(a, b, bias=bias, residual=res, act="gelu")
    assert_close(got, want, atol=2e-5 * np.sqrt(k), rtol=1e-5)


def test_batched_matmul_split_by_rows(device, rng, monkeypatch):
    a, b = f32(rng, 3, 70, 8), f32(rng, 3, 8, 12)
    ga, gb = to_gpu(device, a), to_gpu(device, b)
    expected, got, dispatches = split_and_whole(
        device, monkeypatch, lambda: ops.matmul(ga, gb), None
    )
    assert_split(expected, got, dispatches, 3, 3)  # 70 rows: 3 workgroup rows, each in z too
    assert_close(got, reference.matmul(a, b), atol=1e-5, rtol=1e-5)
