"""TinyViT-5M (MobileSAM's image encoder) as ONNX nodes, mirroring `model/tiny_vit.py`.

Convolutions run on NCHW maps; the TinyViT blocks keep their token maps NHWC (1, H, W, C),
the official code's (1, L, C) tokens, so that LayerNorm and Linear act on the last axis.
"""

from __future__ import annotations

from ..offload.planner import STAGES
from ..weights.layout import (
    DEPTHS,
    EMBED_DIMS,
    IMG_SIZE,
    MBCONV_EXPAND_RATIO,
    MLP_RATIO,
    NUM_HEADS,
    PROMPT_EMBED_DIM,
    WINDOW_SIZES,
    merging_stride,
)
from .params import Params

LN_EPS = 1e-5
LN2D_EPS = 1e-6


def _stage_resolutions() -> tuple[int, ...]:
    """Token grid side entering layers.0 .. layers.3: 256, 128, 64, 64 for MobileSAM."""
    res = [IMG_SIZE // 4]
    for out_dim in EMBED_DIMS[1:]:
        res.append(res[-1] // merging_stride(out_dim))
    return tuple(res)


STAGE_RES = _stage_resolutions()


def image_encoder(p: Params, x: str, prefix: str = "image_encoder") -> str:
    """x: (1, 3, 1024, 1024) normalised, padded image -> (1, 256, 64, 64) embeddings."""
    x = p.b.nhwc(x)
    for index in range(len(STAGES)):
        x = encoder_stage(p, index, x, prefix)
    return p.b.nchw(x)


def encoder_stage(p: Params, index: int, x: str, prefix: str = "image_encoder") -> str:
    """Stage `index` of `STAGES` (model/tiny_vit.py's boundaries) on its NHWC boundary map
    (1, H, W, C) -> the next boundary map, NHWC: (1, 256, 256, 64) after patch_embed, (1, 128,
    128, 128) after layers.0, (1, 64, 64, 160 | 320 | 320) after layers.1..3, (1, 64, 64, 256)
    after the neck."""
    b, name = p.b, STAGES[index]
    if name == "patch_embed":
        first = EMBED_DIMS[0]
        with b.scope(f"{prefix}.patch_embed"):
            conv0 = _conv_bn(p, f"{prefix}.patch_embed.seq.0", b.nchw(x), 3, first // 2, 3, 2)
            x = _conv_bn(p, f"{prefix}.patch_embed.seq.2", b.gelu(conv0), first // 2, first, 3, 2)
        return b.nhwc(x)
    if name == "layers.0":
        first, x = EMBED_DIMS[0], b.nchw(x)
        for i in range(DEPTHS[0]):
            x = _mbconv(p, f"{prefix}.layers.0.blocks.{i}", x, first)
        return b.nhwc(_patch_merging(p, f"{prefix}.layers.0.downsample", x, first, EMBED_DIMS[1]))
    if name == "neck":
        return _neck(p, f"{prefix}.neck", x, EMBED_DIMS[3])
    i = index - 1
    dim, res = EMBED_DIMS[i], STAGE_RES[i]
    for j in range(DEPTHS[i]):
        block = f"{prefix}.layers.{i}.blocks.{j}"
        x = _tiny_vit_block(p, block, x, res, dim, NUM_HEADS[i], WINDOW_SIZES[i])
    if i < 3:
        merged = _patch_merging(
            p, f"{prefix}.layers.{i}.downsample", b.nchw(x), dim, EMBED_DIMS[i + 1]
        )
        x = b.nhwc(merged)
    return x


def _conv_bn(
    p: Params,
    prefix: str,
    x: str,
    c_in: int,
    c_out: int,
    k: int = 1,
    stride: int = 1,
    groups: int = 1,
) -> str:
    weight, bias = p.conv_bn(prefix, c_in, c_out, k, groups)
    return p.b.conv(x, weight, bias, k, stride=stride, padding=k // 2, groups=groups)


def _mbconv(p: Params, prefix: str, x: str, dim: int) -> str:
    b, hidden = p.b, dim * MBCONV_EXPAND_RATIO
    with b.scope(prefix):
        h = b.gelu(_conv_bn(p, f"{prefix}.conv1", x, dim, hidden))
        h = b.gelu(_conv_bn(p, f"{prefix}.conv2", h, hidden, hidden, 3, groups=hidden))
        # The official block applies its last GELU after the shortcut is added.
        return b.gelu(b.add(_conv_bn(p, f"{prefix}.conv3", h, hidden, dim), x))


def _patch_merging(p: Params, prefix: str, x: str, dim: int, out_dim: int) -> str:
    """NCHW in and out (see merging_stride)."""
    b = p.b
    stride = merging_stride(out_dim)
    with b.scope(prefix):
        x = b.gelu(_conv_bn(p, f"{prefix}.conv1", x, dim, out_dim))
        x = _conv_bn(p, f"{prefix}.conv2", x, out_dim, out_dim, 3, stride=stride, groups=out_dim)
        return _conv_bn(p, f"{prefix}.conv3", b.gelu(x), out_dim, out_dim)


def _tiny_vit_block(
    p: Params, prefix: str, x: str, res: int, dim: int, heads: int, window: int
) -> str:
    """x: (1, res, res, dim) NHWC -> the same shape."""
    b = p.b
    with b.scope(f"{prefix}.attn"):
        attn = _window_attention(p, f"{prefix}.attn", x, res, dim, heads, window)
        x = b.add(x, attn)
    with b.scope(f"{prefix}.local_conv"):
        x = b.nhwc(_conv_bn(p, f"{prefix}.local_conv", b.nchw(x), dim, dim, 3, groups=dim))
    with b.scope(f"{prefix}.mlp"):
        norm = p.layer_norm(f"{prefix}.mlp.norm", dim)
        fc1 = p.linear(f"{prefix}.mlp.fc1", dim, dim * MLP_RATIO)
        fc2 = p.linear(f"{prefix}.mlp.fc2", dim * MLP_RATIO, dim)
        hidden = b.gelu(b.linear(b.layer_norm(x, *norm, eps=LN_EPS), *fc1))
        return b.add(b.linear(hidden, *fc2), x)


def _window_attention(
    p: Params, prefix: str, x: str, res: int, dim: int, heads: int, window: int
) -> str:
    """Windowed attention with the learned relative-position bias (attn_ratio 1).

    The map is zero-padded to whole windows; padded tokens pass through the LayerNorm
    (becoming its bias) and take part in attention unmasked, then are cropped, as in the
    official code."""
    b = p.b
    key_dim = dim // heads
    norm = p.layer_norm(f"{prefix}.norm", dim)
    qkv_w, qkv_b = p.linear(f"{prefix}.qkv", dim, 3 * dim)
    proj = p.linear(f"{prefix}.proj", dim, dim)
    bias = p.attention_bias(f"{prefix}.attention_biases", heads, window)

    pad = -res % window
    padded, grid = res + pad, (res + pad) // window
    if pad:
        x = b("Pad", x, b.const([0, 0, 0, 0, 0, pad, pad, 0]))
    # (1, Hp, Wp, C) -> (windows, window * window, C), windows in row-major order.
    x = b.reshape(x, (1, grid, window, grid, window, dim))
    x = b.reshape(b.transpose(x, (0, 1, 3, 2, 4, 5)), (grid * grid, window * window, dim))
    qkv = b.linear(b.layer_norm(x, *norm, eps=LN_EPS), qkv_w, qkv_b)
    # Per token the qkv Linear's output is grouped by head as [q | k | v].
    qkv = b.transpose(b.reshape(qkv, (0, 0, heads, 3 * key_dim)), (0, 2, 1, 3))
    q, k, v = b.op("Split", qkv, b.const([key_dim] * 3), outputs=3, axis=-1)
    out = b.linear(b.attend(q, k, v, heads, key_dim, bias), *proj)  # (windows, N, C)
    out = b.reshape(out, (1, grid, grid, window, window, dim))
    out = b.reshape(b.transpose(out, (0, 1, 3, 2, 4, 5)), (1, padded, padded, dim))
    return b.slice(out, (1, 2), (0, 0), (res, res)) if pad else out


def _neck(p: Params, prefix: str, x: str, c_in: int) -> str:
    """(1, 64, 64, 320) NHWC -> (1, 64, 64, 256) NHWC; LayerNorm2d runs on NHWC maps."""
    b, dim = p.b, PROMPT_EMBED_DIM
    with b.scope(prefix):
        conv0 = b.weight(
            f"{prefix}.0.weight_t",
            p.array(f"{prefix}.0.weight", (dim, c_in, 1, 1)).reshape(dim, c_in).T,
        )
        x = b.layer_norm(b.linear(x, conv0), *p.layer_norm(f"{prefix}.1", dim), eps=LN2D_EPS)
        conv2, _ = p.conv(f"{prefix}.2", dim, dim, 3, bias=False)
        x = b.nhwc(b.conv(b.nchw(x), conv2, None, 3, padding=1))
        return b.layer_norm(x, *p.layer_norm(f"{prefix}.3", dim), eps=LN2D_EPS)
