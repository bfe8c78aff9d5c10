"""attention (shaders/attention.wgsl) against reference.attention, via both entry points."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from sandseg.ops import OpError
from sandseg.ops.attention import attention, qkv_packed
from tests.gpu_helpers import assert_close, assert_split, from_gpu, split_and_whole, to_gpu
from tests.reference import multihead as ref

# The module, not the function of the same name that sandseg.ops may re-export.
attention_module = importlib.import_module("sandseg.ops.attention")

# Outputs are convex combinations of v rows (std 1): f32 accumulation over <= 4096 keys.
ATOL = 1e-5


def _normal(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize(
    ("windows", "tokens", "heads"),
    [
        (361, 49, 4),  # TinyViT layers.1: 19 x 19 windows of 7 x 7, dim 128
        (25, 196, 5),  # layers.2: 5 x 5 windows of 14 x 14, dim 160
        (100, 49, 10),  # layers.3: 10 x 10 windows of 7 x 7, dim 320
    ],
)
def test_qkv_packed_tinyvit_windows(device, rng, windows, tokens, heads):
    kd = dv = 32
    qkv = _normal(rng, windows, tokens, heads * (2 * kd + dv))
    bias = _normal(rng, heads, tokens, tokens)
    got = qkv_packed(
        to_gpu(device, qkv), heads=heads, key_dim=kd, v_dim=dv, bias=to_gpu(device, bias)
    )
    expected = ref.attention(*ref.split_packed_qkv(qkv, heads, kd, dv), bias=bias)
    assert_close(from_gpu(got), expected, atol=ATOL)


@pytest.mark.parametrize(
    ("nq", "nk", "dim", "heads"),
    [
        (7, 7, 256, 8),  # two-way transformer self-attention on 5 output tokens + 2 points
        (5, 5, 256, 8),
        (9, 9, 256, 8),
        (7, 4096, 128, 8),  # token-to-image (internal dim 128 after downsample rate 2)
        (4096, 7, 128, 8),  # image-to-token
    ],
)
def test_attention_sam_two_way_transformer(device, rng, nq, nk, dim, heads):
    q, k, v = _normal(rng, 1, nq, dim), _normal(rng, 1, nk, dim), _normal(rng, 1, nk, dim)
    dh = dim // heads
    got = attention(
        to_gpu(device, q), to_gpu(device, k), to_gpu(device, v), heads=heads, head_dim=dh
    )
    expected = ref.attention(*(ref.split_heads(t, heads) for t in (q, k, v)))
    assert_close(from_gpu(got), expected, atol=ATOL)


@pytest.mark.parametrize("rows", [1, 3, 8])
@pytest.mark.parametrize(
    ("batch", "nq", "nk", "heads", "dh", "dv"),
    [
        (1, 1, 1, 1, 4, 4),  # one key: the output is that key's value
        (2, 1, 13, 3, 8, 8),
        (3, 13, 1, 2, 12, 12),
        (2, 70, 33, 1, 12, 20),  # head and value sizes differ; rows past one workgroup
        (1, 3, 131, 5, 28, 4),
    ],
)
def test_attention_awkward_shapes(device, rng, monkeypatch, rows, batch, nq, nk, heads, dh, dv):
    # Force each rows-per-invocation variant, including a last block of rows past Nq.
    monkeypatch.setattr(attention_module, "ROWS", rows)
    monkeypatch.setattr(attention_module, "MIN_INVOCATIONS", 0)
    q = _normal(rng, batch, nq, heads * dh)
    k = _normal(rng, batch, nk, heads * dh)
    v = _normal(rng, batch, nk, heads * dv)
    bias = _normal(rng, heads, nq, nk)
    got = attention(
        *(to_gpu(device, t) for t in (q, k, v)),
        heads=heads,
        head_dim=dh,
        v_dim=dv,
        bias=to_gpu(device, bias),
        scale=0.3,
    )
    expected = ref.attention(
        ref.split_heads(q, heads),
        ref.split_heads(k, heads),
        ref.split_heads(v, heads),
        bias=bias,
        scale=0.3,
    )
    assert_close(from_gpu(got), expected, atol=ATOL)


@pytest.mark.parametrize("dh", [4, 8, 12, 16, 20, 24, 28, 32])
def test_attention_every_head_size_2d_inputs(device, rng, dh):
    q, k, v = _normal(rng, 6, 2 * dh), _normal(rng, 11, 2 * dh), _normal(rng, 11, 2 * dh)
    got = attention(*(to_gpu(device, t) for t in (q, k, v)), heads=2, head_dim=dh)
    assert got.shape == (6, 2 * dh)
    expected = ref.attention(*(ref.split_heads(t[None], 2) for t in (q, k, v)))[0]
    assert_close(from_gpu(got), expected, atol=ATOL)


@pytest.mark.parametrize(
    ("batch", "nq", "nk", "dim", "heads", "shared"),
    [
        (3, 7, 4096, 128, 8, "kv"),  # layer 0 token-to-image: the image keys shared by prompts
        (3, 4096, 7, 128, 8, "q"),  # layer 0 image-to-token: the image queries shared
        (2, 13, 5, 24, 2, "k"),  # awkward: one operand shared, rows past one workgroup
        (5, 1, 1, 4, 1, "qv"),
    ],
)
def test_attention_2d_operands_are_shared_by_the_batch(
    device, rng, batch, nq, nk, dim, heads, shared
):
    q = _normal(rng, batch, nq, dim)
    k, v = _normal(rng, batch, nk, dim), _normal(rng, batch, nk, dim)
    # A shared operand: the same rows for every batch, passed once as 2-D.
    q, k, v = (
        np.broadcast_to(t[:1], t.shape).copy() if name in shared else t
        for name, t in zip("qkv", (q, k, v), strict=True)
    )
    args = [
        to_gpu(device, t[0] if name in shared else t)
        for name, t in zip("qkv", (q, k, v), strict=True)
    ]
    got = attention(*args, heads=heads, head_dim=dim // heads)
    assert got.shape == (batch, nq, dim)
    expected = ref.attention(*(ref.split_heads(t, heads) for t in (q, k, v)))
    assert_close(from_gpu(got), expected, atol=ATOL)


def test_attention_offsets_and_strides_pick_interleaved_heads(device, rng):
    # Two heads of 8 at columns 4..12 and 20..28 of 32-wide rows; everything else is noise.
    q, k, v = _normal(rng, 2, 5, 32), _normal(rng, 2, 9, 32), _normal(rng, 2, 9, 32)
    got = attention(
        *(to_gpu(device, t) for t in (q, k, v)),
        heads=2,
        head_dim=8,
        offsets=(4, 4, 4),
        head_strides=(16, 16, 16),
    )
    picked = [np.stack([t[..., 4:12], t[..., 20:28]], axis=1) for t in (q, k, v)]
    assert_close(from_gpu(got), ref.attention(*picked), atol=ATOL)


def test_attention_softmax_is_stable_for_large_scores(device, rng):
    # Scores spanning +-1e3: a naive exp overflows; the online max must rescale correctly,
    # including when the max arrives late (increasing bias along the keys).
    q, k, v = _normal(rng, 1, 16, 16), _normal(rng, 1, 64, 16), _normal(rng, 1, 64, 16)
    bias = (np.linspace(-1000, 1000, 64)[None, None, :] + 50 * _normal(rng, 1, 16, 64)).astype(
        np.float32
    )
    got = attention(
        *(to_gpu(device, t) for t in (q, k, v)), heads=1, head_dim=16, bias=to_gpu(device, bias)
    )
    expected = ref.attention(*(ref.split_heads(t, 1) for t in (q, k, v)), bias=bias)
    assert_close(from_gpu(got), expected, atol=ATOL)


@pytest.mark.parametrize(
    ("shapes", "kw", "fragment"),
    [
        (((1, 7, 256), (1, 9, 256), (1, 8, 256)), {}, "key counts differ"),
        (((2, 7, 256), (1, 9, 256), (1, 9, 256)), {}, "batch and key counts differ"),
        (((256,), (1, 9, 256), (1, 9, 256)), {}, "must be 2-D \\(N, C\\) or 3-D"),
        (((3, 7, 256), (1, 9, 256), (1, 9, 256)), {}, "batch and key counts differ"),
        (((1, 7, 128), (1, 9, 128), (1, 9, 128)), {"head_dim": 64}, "head_dim must be"),
        (((1, 7, 128), (1, 9, 128), (1, 9, 128)), {"head_dim": 6}, "head_dim must be"),
        (((1, 7, 128), (1, 9, 128), (1, 9, 128)), {"heads": 9}, "no room for 9 heads"),
        (((1, 7, 30), (1, 9, 30), (1, 9, 30)), {"heads": 1, "head_dim": 8}, "multiples of 4"),
        (((1, 7, 128), (1, 9, 128), (1, 9, 128)), {"bias_shape": (8, 9, 7)}, "bias must be"),
    ],
)
def test_attention_rejects_bad_inputs_naming_shapes(device, shapes, kw, fragment):
    kw = {"heads": 8, "head_dim": 16, **kw}
    bias_shape = kw.pop("bias_shape", None)
    bias = device.empty(bias_shape) if bias_shape else None
    q, k, v = (device.empty(s) for s in shapes)
    with pytest.raises(OpError, match=fragment) as info:
        attention(q, k, v, bias=bias, **kw)
    assert str(info.value).startswith("attention:")


def test_qkv_packed_rejects_wrong_width(device):
    with pytest.raises(OpError, match=r"qkv_packed: qkv must be .* got \(4, 49, 380\)"):
        qkv_packed(device.empty((4, 49, 380)), heads=4, key_dim=32, v_dim=32)


def test_attention_rejects_wrong_dtype(device):
    t = device.empty((1, 4, 8))
    with pytest.raises(OpError, match="attention: k must be f32"):
        attention(t, device.empty((1, 4, 8), "u32"), t, heads=1, head_dim=8)


# -- GP-5: a large dispatch split into slices gives the unsplit result, bit for bit --------


@pytest.mark.parametrize(
    ("windows", "tokens", "heads", "pieces"),
    [
        (25, 196, 5, 4),  # layers.2: 5 x 5 windows of 14 x 14, the longest attention
        (7, 9, 2, None),  # every window its own dispatch
    ],
)
def test_attention_split_by_windows(device, rng, monkeypatch, windows, tokens, heads, pieces):
    kd = dv = 32
    qkv = _normal(rng, windows, tokens, heads * (2 * kd + dv))
    bias = _normal(rng, heads, tokens, tokens)
    gqkv, gbias = to_gpu(device, qkv), to_gpu(device, bias)

    def op():
        return qkv_packed(gqkv, heads=heads, key_dim=kd, v_dim=dv, bias=gbias)

    expected, got, dispatches = split_and_whole(device, monkeypatch, op, pieces)
    assert_split(expected, got, dispatches, 2, pieces or windows)
    want = ref.attention(*ref.split_packed_qkv(qkv, heads, kd, dv), bias=bias)
    assert_close(got, want, atol=1e-5)
