"""SAM's prompt encoder and mask decoder as ONNX nodes, mirroring `model/prompt_encoder.py`
and `model/mask_decoder.py`. Tokens are (1, T, 256); maps are NCHW for convolutions and NHWC
for LayerNorm2d."""

from __future__ import annotations

import itertools

import numpy as np
from onnx import TensorProto

from ..weights.layout import MASK_IN_CHANS, NUM_POINT_EMBEDDINGS
from .params import Params

DIM = 256
HEADS = 8
MLP_DIM = 2048
DEPTH = 2
NUM_MASK_TOKENS = 4  # 3 multimask outputs + 1
GRID = 64  # the image embedding is 64 x 64
INPUT_SIZE = 1024
LOW_RES = 256
LN_EPS = 1e-5
LN2D_EPS = 1e-6
GAUSSIAN = "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"


def prompt_and_mask_decoder(
    p: Params,
    embeddings: str,
    coords: str,
    labels: str,
    mask_input: str,
    has_mask: str,
    channels_last: bool = False,
) -> tuple[str, str]:
    """embeddings (1, 256, 64, 64), or (64, 64, 256) with channels_last, coords (1, N, 2) in
    1024-space, labels (1, N), mask_input (1, 1, 256, 256), has_mask (1,) -> (low-res logits
    (1, 4, 256, 256), IoU (1, 4)) of all four mask tokens."""
    b = p.b
    sparse = sparse_embeddings(p, coords, labels)
    dense = dense_embeddings(p, mask_input, has_mask)
    with b.scope("prompt_encoder.dense_pe"):
        grid = np.arange(GRID * GRID)
        cells = np.stack([grid % GRID, grid // GRID], axis=-1).astype(np.float32)
        image_pe = _fourier(p, b.const(cells[None]), p.tensor(GAUSSIAN, (2, DIM // 2)), GRID)
    # -> (1, 4096, 256) tokens, row-major over the grid.
    if channels_last:
        image = b.reshape(embeddings, (1, GRID * GRID, DIM))
    else:
        image = b.transpose(b.reshape(embeddings, (1, DIM, GRID * GRID)), (0, 2, 1))
    return mask_decoder(p, image, image_pe, sparse, dense)


# -- prompt encoder -------------------------------------------------------------------------


def _fourier(p: Params, coords: str, gaussian: str, size: int) -> str:
    """SAM's PositionEmbeddingRandom of (..., 2) pixel coordinates (x, y) in a size x size
    image: c = 2 (xy + 0.5) / size - 1, t = c @ gaussian, [sin 2 pi t, cos 2 pi t]. Whole
    turns of t are dropped before the sine, as the package's kernel does."""
    b = p.b
    c = b("Div", b.add(coords, b.const(0.5)), b.const(float(size)))
    c = b("Sub", b.mul(c, b.const(2.0)), b.const(1.0))
    t = b("MatMul", c, gaussian)
    # floor(t + 0.5) rather than Round, which onnxruntime-web's WebGPU provider lacks; the
    # two differ only at exact half turns, where both angles are +-pi.
    whole = b("Floor", b.add(t, b.const(0.5)))
    angle = b.mul(b("Sub", t, whole), b.const(2 * np.pi))
    return b("Concat", b("Sin", angle), b("Cos", angle), axis=-1)


def sparse_embeddings(p: Params, coords: str, labels: str, prefix: str = "prompt_encoder") -> str:
    """coords (1, N, 2) in 1024-space, labels (1, N) float -> (1, N, 256).

    Label -1 (the padding point) zeroes the encoding and adds `not_a_point_embed`; label k in
    0..3 adds `point_embeddings[k]` (0 negative, 1 positive, 2 and 3 box corners)."""
    b = p.b
    with b.scope(f"{prefix}.sparse"):
        rows = [p.array(f"{prefix}.not_a_point_embed.weight", (1, DIM))]
        rows += [
            p.array(f"{prefix}.point_embeddings.{i}.weight", (1, DIM))
            for i in range(NUM_POINT_EMBEDDINGS)
        ]
        table = b.weight(f"{prefix}.label_table", np.concatenate(rows))  # (5, 256)
        pe = _fourier(p, coords, p.tensor(GAUSSIAN, (2, DIM // 2)), INPUT_SIZE)
        # Labels outside [-1, 3] are clamped to the table, as in the package's kernel.
        last = float(NUM_POINT_EMBEDDINGS)
        row = b("Clip", b.add(labels, b.const(1.0)), b.const(0.0), b.const(last))
        label_rows = b("Gather", table, b("Cast", row, to=TensorProto.INT64), axis=0)
        keep = b("Cast", b("Not", b("Equal", labels, b.const(-1.0))), to=TensorProto.FLOAT)
        keep = b("Unsqueeze", keep, b.const([-1]))  # (1, N, 1)
        return b.add(b.mul(pe, keep), label_rows)


def dense_embeddings(
    p: Params, mask_input: str, has_mask: str, prefix: str = "prompt_encoder"
) -> str:
    """(1, 4096, 256): the downscaled mask_input where has_mask is 1, else `no_mask_embed`."""
    b, c4 = p.b, MASK_IN_CHANS // 4
    with b.scope(f"{prefix}.mask_downscaling"):
        x = b.conv(mask_input, *p.conv(f"{prefix}.mask_downscaling.0", 1, c4, 2), 2, stride=2)
        x = b.layer_norm(b.nhwc(x), *p.layer_norm(f"{prefix}.mask_downscaling.1", c4), LN2D_EPS)
        x = b.nchw(b.gelu(x))
        x = b.conv(x, *p.conv(f"{prefix}.mask_downscaling.3", c4, MASK_IN_CHANS, 2), 2, stride=2)
        norm4 = p.layer_norm(f"{prefix}.mask_downscaling.4", MASK_IN_CHANS)
        x = b.gelu(b.layer_norm(b.nhwc(x), *norm4, LN2D_EPS))  # (1, 64, 64, 16)
        conv6 = p.array(f"{prefix}.mask_downscaling.6.weight", (DIM, MASK_IN_CHANS, 1, 1))
        w6 = b.weight(f"{prefix}.mask_downscaling.6.weight_t", conv6.reshape(DIM, -1).T)
        bias6 = p.tensor(f"{prefix}.mask_downscaling.6.bias", (DIM,))
        masked = b.reshape(b.linear(x, w6, bias6), (1, GRID * GRID, DIM))
    no_mask = b.weight(
        f"{prefix}.no_mask_embed.weight_row", p.array(f"{prefix}.no_mask_embed.weight", (1, DIM))
    )
    use_mask = b("Greater", has_mask, b.const(0.5))
    return b("Where", use_mask, masked, no_mask)


# -- mask decoder ---------------------------------------------------------------------------


def _attention(p: Params, prefix: str, q: str, k: str, v: str, downsample: int = 1) -> str:
    """SAM's attention with an internal dimension reduced by `downsample`."""
    b, inner = p.b, DIM // downsample
    with b.scope(prefix):
        q = b.linear(q, *p.linear(f"{prefix}.q_proj", DIM, inner))
        k = b.linear(k, *p.linear(f"{prefix}.k_proj", DIM, inner))
        v = b.linear(v, *p.linear(f"{prefix}.v_proj", DIM, inner))
        out = b.attention(q, k, v, HEADS, inner // HEADS)
        return b.linear(out, *p.linear(f"{prefix}.out_proj", inner, DIM))


def _two_way_block(
    p: Params, prefix: str, queries: str, keys: str, query_pe: str, key_pe: str, skip_pe: bool
) -> tuple[str, str]:
    b = p.b
    if skip_pe:
        queries = _attention(p, f"{prefix}.self_attn", queries, queries, queries)
    else:
        q = b.add(queries, query_pe)
        queries = b.add(_attention(p, f"{prefix}.self_attn", q, q, queries), queries)
    queries = b.layer_norm(queries, *p.layer_norm(f"{prefix}.norm1", DIM), LN_EPS)
    q, k = b.add(queries, query_pe), b.add(keys, key_pe)
    attn = _attention(p, f"{prefix}.cross_attn_token_to_image", q, k, keys, 2)
    queries = b.layer_norm(b.add(attn, queries), *p.layer_norm(f"{prefix}.norm2", DIM), LN_EPS)
    with b.scope(f"{prefix}.mlp"):
        hidden = b.relu(b.linear(queries, *p.linear(f"{prefix}.mlp.lin1", DIM, MLP_DIM)))
        mlp = b.add(b.linear(hidden, *p.linear(f"{prefix}.mlp.lin2", MLP_DIM, DIM)), queries)
    queries = b.layer_norm(mlp, *p.layer_norm(f"{prefix}.norm3", DIM), LN_EPS)
    q = b.add(queries, query_pe)
    attn = _attention(p, f"{prefix}.cross_attn_image_to_token", k, q, queries, 2)
    keys = b.layer_norm(b.add(attn, keys), *p.layer_norm(f"{prefix}.norm4", DIM), LN_EPS)
    return queries, keys


def _stacked_mlps(p: Params, prefix: str, tokens: str, dims: list[int]) -> str:
    """The hypernetwork MLPs, one per mask token, as batched matmuls: tokens (4, 1, 256)."""
    b, x = p.b, tokens
    for layer, (n_in, n_out) in enumerate(itertools.pairwise(dims)):
        key = f"layers.{layer}"
        w = np.stack(
            [p.array(f"{prefix}.{i}.{key}.weight", (n_out, n_in)).T for i in range(NUM_MASK_TOKENS)]
        )
        bias = np.stack(
            [p.array(f"{prefix}.{i}.{key}.bias", (n_out,))[None] for i in range(NUM_MASK_TOKENS)]
        )
        w_name = b.weight(f"{prefix}.{key}.weight_t_stacked", w)  # (4, in, out)
        x = b.linear(x, w_name, b.weight(f"{prefix}.{key}.bias_stacked", bias))
        x = b.relu(x) if layer < len(dims) - 2 else x
    return x


def _mlp(p: Params, prefix: str, x: str, dims: list[int]) -> str:
    """Linear layers with ReLU between them (none after the last)."""
    b = p.b
    for layer, (n_in, n_out) in enumerate(itertools.pairwise(dims)):
        x = b.linear(x, *p.linear(f"{prefix}.layers.{layer}", n_in, n_out))
        x = b.relu(x) if layer < len(dims) - 2 else x
    return x


def mask_decoder(
    p: Params, image: str, image_pe: str, sparse: str, dense: str, prefix: str = "mask_decoder"
) -> tuple[str, str]:
    """image, image_pe, dense: (1, 4096, 256); sparse: (1, N, 256).

    Returns all four masks' low-res logits (1, 4, 256, 256) and IoU predictions (1, 4)."""
    b = p.b
    iou_token = p.array(f"{prefix}.iou_token.weight", (1, DIM))
    mask_tokens = p.array(f"{prefix}.mask_tokens.weight", (NUM_MASK_TOKENS, DIM))
    output_tokens = np.concatenate([iou_token, mask_tokens])[None]  # (1, 5, 256)
    tokens = b("Concat", b.weight(f"{prefix}.output_tokens", output_tokens), sparse, axis=1)
    t = f"{prefix}.transformer"
    keys, queries = b.add(image, dense), tokens
    for i in range(DEPTH):
        with b.scope(f"{t}.layers.{i}"):
            queries, keys = _two_way_block(
                p, f"{t}.layers.{i}", queries, keys, tokens, image_pe, i == 0
            )
    q, k = b.add(queries, tokens), b.add(keys, image_pe)
    attn = _attention(p, f"{t}.final_attn_token_to_image", q, k, keys, 2)
    norm = p.layer_norm(f"{t}.norm_final_attn", DIM)
    queries = b.layer_norm(b.add(attn, queries), *norm, LN_EPS)

    with b.scope(f"{prefix}.output_upscaling"):
        src = b.reshape(b.transpose(keys, (0, 2, 1)), (1, DIM, GRID, GRID))
        up0 = p.conv_transpose(f"{prefix}.output_upscaling.0", DIM, DIM // 4)
        x = b("ConvTranspose", src, *up0, kernel_shape=[2, 2], strides=[2, 2])  # (1, 64, 128, 128)
        norm1 = p.layer_norm(f"{prefix}.output_upscaling.1", DIM // 4)
        x = b.nchw(b.gelu(b.layer_norm(b.nhwc(x), *norm1, LN2D_EPS)))
        up3 = p.conv_transpose(f"{prefix}.output_upscaling.3", DIM // 4, DIM // 8)
        x = b.gelu(b("ConvTranspose", x, *up3, kernel_shape=[2, 2], strides=[2, 2]))
        upscaled = b.reshape(x, (1, DIM // 8, LOW_RES * LOW_RES))  # (1, 32, 65536)

    with b.scope(f"{prefix}.output_hypernetworks_mlps"):
        mask_queries = b.slice(queries, (1,), (1,), (1 + NUM_MASK_TOKENS,))  # (1, 4, 256)
        per_token = b.transpose(mask_queries, (1, 0, 2))  # (4, 1, 256)
        hyper = _stacked_mlps(
            p, f"{prefix}.output_hypernetworks_mlps", per_token, [DIM, DIM, DIM, DIM // 8]
        )
        hyper_in = b.transpose(hyper, (1, 0, 2))  # (1, 4, 32)
        masks = b("MatMul", hyper_in, upscaled)  # (1, 4, 65536)
        masks = b.reshape(masks, (1, NUM_MASK_TOKENS, LOW_RES, LOW_RES))
    with b.scope(f"{prefix}.iou_prediction_head"):
        iou_query = b.slice(queries, (1,), (0,), (1,))  # (1, 1, 256)
        iou = _mlp(p, f"{prefix}.iou_prediction_head", iou_query, [DIM, DIM, DIM, NUM_MASK_TOKENS])
        iou = b.reshape(iou, (1, NUM_MASK_TOKENS))
    return masks, iou
