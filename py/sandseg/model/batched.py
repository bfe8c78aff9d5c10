"""SAM's mask decoder over a batch of prompts at once (the automatic mask generator's case).

Every linear layer runs once over the stacked rows of all prompts, attention has a batch
dimension, the upscaling runs on the prompts' maps stacked along H. What no prompt changes is
computed once per image and shared, never copied per prompt: the keys entering the
two-way transformer (image embedding + the no-mask dense embedding), the image's positional
encoding, and layer 0's projections of them (its token-to-image keys and values, its
image-to-token queries: layer 0 mixes a prompt into the image side only in its last step).
The arithmetic per prompt is the one-prompt decoder's, except that layer 0's image-side
residual is added after its out_proj instead of inside it (results within float rounding).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import ops
from ..gpu import Tensor
from ..gpu.device import MAX_STORAGE_BINDING
from ..weights.layout import EMBED_GRID, LOW_RES
from ..weights.layout import PROMPT_EMBED_DIM as DIM
from .mask_decoder import NUM_MASK_TOKENS, MaskDecoder, TwoWayAttentionBlock

# The largest tensor per prompt is the upscaled map (256, 256, 32) float32, 8 MiB: a batch
# of at most this many prompts keeps every buffer within one storage binding (GP-4).
MAX_BATCH = MAX_STORAGE_BINDING // (LOW_RES * LOW_RES * (DIM // 8) * 4)


@dataclass(frozen=True)
class SharedImage:
    """What every prompt on one image shares in the decoder: `keys` (4096, 256), the image
    embedding plus the no-mask dense embedding; `image_pe` (4096, 256); layer 0's
    token-to-image keys `t2i_k` and values `t2i_v` and its image-to-token queries `i2t_q`,
    (4096, 128) each."""

    keys: Tensor
    image_pe: Tensor
    t2i_k: Tensor
    t2i_v: Tensor
    i2t_q: Tensor


def share_image(
    decoder: MaskDecoder, image_embeddings: Tensor, image_pe: Tensor, dense: Tensor
) -> SharedImage:
    """image_embeddings, image_pe, dense: (4096, 256), dense the no-mask embedding."""
    keys = ops.add(image_embeddings, dense)
    k = ops.add_tiled(keys, image_pe)
    first = decoder.layers[0]
    t2i, i2t = first.cross_attn_token_to_image, first.cross_attn_image_to_token
    return SharedImage(keys, image_pe, t2i.project_k(k), t2i.project_v(keys), i2t.project_q(k))


def decode_batch(
    decoder: MaskDecoder, shared: SharedImage, sparse: Tensor
) -> tuple[Tensor, Tensor]:
    """sparse: (B, T, 256), each prompt's sparse embeddings, B <= MAX_BATCH.

    Returns all 4 masks' low-res logits (B, 4, 256 * 256) planar and IoU predictions (B, 4).
    """
    batch = sparse.shape[0]
    tokens = _tokens(decoder, sparse)  # (B, 5 + T, 256)
    queries, keys = _first_layer(decoder.layers[0], tokens, shared)  # keys (B, 4096, 256)
    for layer in decoder.layers[1:]:
        queries, keys = layer(queries, keys, tokens, shared.image_pe)
    queries = decoder.final_attention(queries, keys, tokens, shared.image_pe)
    upscaled = decoder.upscale(keys.reshape(batch * EMBED_GRID, EMBED_GRID, DIM))
    # (T, B, 256): each token's rows of the whole batch, contiguous.
    by_token = ops.permute(queries, (1, 0, 2))
    device = decoder.device
    hyper = device.empty((NUM_MASK_TOKENS, batch, DIM // 8))
    for i, mlp in enumerate(decoder.hypernetworks):
        device.copy(mlp(_rows(by_token, 1 + i)), hyper, dst_start=i * batch * (DIM // 8))
    # masks (B, 4, 65536) = hyper (B, 4, 32) @ upscaled (B, 65536, 32)^T, computed as
    # upscaled @ hyper^T on the fast matmul path, then made planar.
    pixels = ops.matmul(
        upscaled.reshape(batch, LOW_RES * LOW_RES, DIM // 8), ops.permute(hyper, (1, 2, 0))
    )
    masks = ops.permute(pixels, (0, 2, 1))
    return masks, decoder.iou_head(_rows(by_token, 0))


def _tokens(decoder: MaskDecoder, sparse: Tensor) -> Tensor:
    """(B, 5 + T, 256): the output tokens, then each prompt's sparse embeddings."""
    device = decoder.device
    batch, n_sparse = sparse.shape[0], sparse.shape[1]
    n_out = decoder.output_tokens.shape[0]
    tokens = device.empty((batch, n_out + n_sparse, DIM))
    for b in range(batch):
        at = b * (n_out + n_sparse) * DIM
        device.copy(decoder.output_tokens, tokens, dst_start=at)
        count = n_sparse * DIM
        device.copy(sparse, tokens, src_start=b * count, dst_start=at + n_out * DIM, count=count)
    return tokens


def _first_layer(
    layer: TwoWayAttentionBlock, tokens: Tensor, shared: SharedImage
) -> tuple[Tensor, Tensor]:
    """Layer 0 (no positional encoding in its self-attention) on the shared image side:
    TwoWayAttentionBlock.__call__ with the image-side projections taken from `shared`."""
    queries = ops.layer_norm(layer.self_attn(tokens, tokens, tokens), *layer.norm1)
    t2i = layer.cross_attn_token_to_image
    q = t2i.project_q(ops.add(queries, tokens))
    queries = ops.layer_norm(t2i.attend(q, shared.t2i_k, shared.t2i_v, queries), *layer.norm2)
    queries = layer.mlp(queries)
    i2t = layer.cross_attn_image_to_token
    q = ops.add(queries, tokens)
    attended = i2t.attend(shared.i2t_q, i2t.project_k(q), i2t.project_v(queries))
    keys = ops.layer_norm(ops.add_tiled(attended, shared.keys), *layer.norm4)
    return queries, keys


def _rows(x: Tensor, i: int) -> Tensor:
    """Block i of x (N, B, C): (B, C)."""
    _, batch, channels = x.shape
    rows = x.device.empty((batch, channels))
    x.device.copy(x, rows, src_start=i * batch * channels, count=batch * channels)
    return rows
