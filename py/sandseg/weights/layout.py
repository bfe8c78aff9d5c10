"""The checkpoint layout of MobileSAM `vit_t`, derived from the architecture hyper-parameters.

Key order follows PyTorch's `state_dict()`: a module's own parameters, then its buffers, then
its children in definition order. Only hyper-parameters that change a shape appear here.
"""

from __future__ import annotations

import itertools

Shape = tuple[int, ...]
Layout = dict[str, tuple[Shape, str]]

# TinyViT-5M image encoder.
EMBED_DIMS = (64, 128, 160, 320)
DEPTHS = (2, 2, 6, 2)
NUM_HEADS = (2, 4, 5, 10)
WINDOW_SIZES = (7, 7, 14, 7)
MLP_RATIO = 4
MBCONV_EXPAND_RATIO = 4
NUM_CLASSES = 1000  # the unused classifier head is still in the official checkpoint
# SAM prompt encoder and mask decoder.
PROMPT_EMBED_DIM = 256
MASK_IN_CHANS = 16
NUM_POINT_EMBEDDINGS = 4  # positive, negative, box corner 1, box corner 2
TRANSFORMER_DEPTH = 2
TRANSFORMER_MLP_DIM = 2048
ATTENTION_DOWNSAMPLE_RATE = 2
NUM_MULTIMASK_OUTPUTS = 3
IOU_HEAD_DEPTH = 3
HYPERNETWORK_MLP_DEPTH = 3
IOU_HEAD_HIDDEN_DIM = 256
# Sizes every part of the model (and the wire) agrees on.
IMG_SIZE = 1024  # the encoder's input: the long side resized to it, then padded square
EMBED_GRID = 64  # the image embedding is (EMBED_GRID, EMBED_GRID, PROMPT_EMBED_DIM)
EMBEDDINGS_SHAPE = (EMBED_GRID, EMBED_GRID, PROMPT_EMBED_DIM)
# The encoder's stages in order: the units the offload split, the runtimes and the ONNX
# graphs work in.
ENCODER_STAGES: tuple[str, ...] = (
    "patch_embed",
    "layers.0",
    "layers.1",
    "layers.2",
    "layers.3",
    "neck",
)
# Channels-last boundary tensors: STAGE_BOUNDARIES[i] enters stage i, [i + 1] leaves it.
STAGE_BOUNDARIES: tuple[tuple[int, int, int], ...] = (
    (IMG_SIZE, IMG_SIZE, 3),
    (256, 256, EMBED_DIMS[0]),
    (128, 128, EMBED_DIMS[1]),
    (64, 64, EMBED_DIMS[2]),
    (64, 64, EMBED_DIMS[3]),
    (64, 64, EMBED_DIMS[3]),
    EMBEDDINGS_SHAPE,
)
LOW_RES = 256  # the decoder's mask logits are (LOW_RES, LOW_RES)


def merging_stride(out_dim: int) -> int:
    """TinyViT PatchMerging's stride: the official code keeps 1 for out_dim 320 (and 448,
    576), so layers 2 and 3 of MobileSAM both run at 64x64; 2 otherwise."""
    return 1 if out_dim in (320, 448, 576) else 2


def _param(out: Layout, name: str, *shape: int) -> None:
    out[name] = (shape, "F32")


def _norm(out: Layout, prefix: str, dim: int) -> None:
    _param(out, f"{prefix}.weight", dim)
    _param(out, f"{prefix}.bias", dim)


def _linear(out: Layout, prefix: str, out_dim: int, in_dim: int) -> None:
    _param(out, f"{prefix}.weight", out_dim, in_dim)
    _param(out, f"{prefix}.bias", out_dim)


def _conv_bn(out: Layout, prefix: str, out_ch: int, in_per_group: int, kernel: int) -> None:
    # TinyViT's Conv2d_BN: a bias-free conv `c` followed by BatchNorm `bn`.
    _param(out, f"{prefix}.c.weight", out_ch, in_per_group, kernel, kernel)
    _norm(out, f"{prefix}.bn", out_ch)
    _param(out, f"{prefix}.bn.running_mean", out_ch)
    _param(out, f"{prefix}.bn.running_var", out_ch)
    out[f"{prefix}.bn.num_batches_tracked"] = ((), "I64")


def attention_offset_count(window: int) -> int:
    """Number of distinct (|dr|, |dc|) offsets between positions of a window x window grid."""
    points = list(itertools.product(range(window), repeat=2))
    return len({(abs(a[0] - b[0]), abs(a[1] - b[1])) for a in points for b in points})


def _mbconv(out: Layout, prefix: str, dim: int) -> None:
    hidden = dim * MBCONV_EXPAND_RATIO
    _conv_bn(out, f"{prefix}.conv1", hidden, dim, 1)
    _conv_bn(out, f"{prefix}.conv2", hidden, 1, 3)  # depthwise
    _conv_bn(out, f"{prefix}.conv3", dim, hidden, 1)


def _patch_merging(out: Layout, prefix: str, in_dim: int, out_dim: int) -> None:
    _conv_bn(out, f"{prefix}.conv1", out_dim, in_dim, 1)
    _conv_bn(out, f"{prefix}.conv2", out_dim, 1, 3)  # depthwise, stride 2 (1 for the last)
    _conv_bn(out, f"{prefix}.conv3", out_dim, out_dim, 1)


def _tiny_vit_block(out: Layout, prefix: str, dim: int, heads: int, window: int) -> None:
    key_dim = dim // heads  # attn_ratio 1: values have the same width as keys
    _param(out, f"{prefix}.attn.attention_biases", heads, attention_offset_count(window))
    _norm(out, f"{prefix}.attn.norm", dim)
    _linear(out, f"{prefix}.attn.qkv", 3 * key_dim * heads, dim)
    _linear(out, f"{prefix}.attn.proj", dim, key_dim * heads)
    _norm(out, f"{prefix}.mlp.norm", dim)
    _linear(out, f"{prefix}.mlp.fc1", dim * MLP_RATIO, dim)
    _linear(out, f"{prefix}.mlp.fc2", dim, dim * MLP_RATIO)
    _conv_bn(out, f"{prefix}.local_conv", dim, 1, 3)  # depthwise


def _image_encoder(out: Layout, prefix: str) -> None:
    first = EMBED_DIMS[0]
    _conv_bn(out, f"{prefix}.patch_embed.seq.0", first // 2, 3, 3)
    _conv_bn(out, f"{prefix}.patch_embed.seq.2", first, first // 2, 3)
    for i, (dim, depth) in enumerate(zip(EMBED_DIMS, DEPTHS, strict=True)):
        layer = f"{prefix}.layers.{i}"
        for b in range(depth):
            if i == 0:
                _mbconv(out, f"{layer}.blocks.{b}", dim)
            else:
                _tiny_vit_block(out, f"{layer}.blocks.{b}", dim, NUM_HEADS[i], WINDOW_SIZES[i])
        if i + 1 < len(EMBED_DIMS):
            _patch_merging(out, f"{layer}.downsample", dim, EMBED_DIMS[i + 1])
    last = EMBED_DIMS[-1]
    _norm(out, f"{prefix}.norm_head", last)
    _linear(out, f"{prefix}.head", NUM_CLASSES, last)
    # Neck: conv1x1 (no bias), LayerNorm2d, conv3x3 (no bias), LayerNorm2d.
    _param(out, f"{prefix}.neck.0.weight", PROMPT_EMBED_DIM, last, 1, 1)
    _norm(out, f"{prefix}.neck.1", PROMPT_EMBED_DIM)
    _param(out, f"{prefix}.neck.2.weight", PROMPT_EMBED_DIM, PROMPT_EMBED_DIM, 3, 3)
    _norm(out, f"{prefix}.neck.3", PROMPT_EMBED_DIM)


def _conv(out: Layout, prefix: str, out_ch: int, in_ch: int, kernel: int) -> None:
    _param(out, f"{prefix}.weight", out_ch, in_ch, kernel, kernel)
    _param(out, f"{prefix}.bias", out_ch)


def _prompt_encoder(out: Layout, prefix: str) -> None:
    dim = PROMPT_EMBED_DIM
    _param(out, f"{prefix}.pe_layer.positional_encoding_gaussian_matrix", 2, dim // 2)
    for i in range(NUM_POINT_EMBEDDINGS):
        _param(out, f"{prefix}.point_embeddings.{i}.weight", 1, dim)
    _param(out, f"{prefix}.not_a_point_embed.weight", 1, dim)
    quarter = MASK_IN_CHANS // 4
    _conv(out, f"{prefix}.mask_downscaling.0", quarter, 1, 2)
    _norm(out, f"{prefix}.mask_downscaling.1", quarter)
    _conv(out, f"{prefix}.mask_downscaling.3", MASK_IN_CHANS, quarter, 2)
    _norm(out, f"{prefix}.mask_downscaling.4", MASK_IN_CHANS)
    _conv(out, f"{prefix}.mask_downscaling.6", dim, MASK_IN_CHANS, 1)
    _param(out, f"{prefix}.no_mask_embed.weight", 1, dim)


def _attention(out: Layout, prefix: str, dim: int, downsample: int) -> None:
    internal = dim // downsample
    for proj in ("q_proj", "k_proj", "v_proj"):
        _linear(out, f"{prefix}.{proj}", internal, dim)
    _linear(out, f"{prefix}.out_proj", dim, internal)


def _mlp(out: Layout, prefix: str, in_dim: int, hidden: int, out_dim: int, depth: int) -> None:
    dims = [in_dim] + [hidden] * (depth - 1) + [out_dim]
    for i in range(depth):
        _linear(out, f"{prefix}.layers.{i}", dims[i + 1], dims[i])


def _mask_decoder(out: Layout, prefix: str) -> None:
    dim = PROMPT_EMBED_DIM
    down = ATTENTION_DOWNSAMPLE_RATE
    for i in range(TRANSFORMER_DEPTH):
        layer = f"{prefix}.transformer.layers.{i}"
        _attention(out, f"{layer}.self_attn", dim, 1)
        _norm(out, f"{layer}.norm1", dim)
        _attention(out, f"{layer}.cross_attn_token_to_image", dim, down)
        _norm(out, f"{layer}.norm2", dim)
        _linear(out, f"{layer}.mlp.lin1", TRANSFORMER_MLP_DIM, dim)
        _linear(out, f"{layer}.mlp.lin2", dim, TRANSFORMER_MLP_DIM)
        _norm(out, f"{layer}.norm3", dim)
        _norm(out, f"{layer}.norm4", dim)
        _attention(out, f"{layer}.cross_attn_image_to_token", dim, down)
    _attention(out, f"{prefix}.transformer.final_attn_token_to_image", dim, down)
    _norm(out, f"{prefix}.transformer.norm_final_attn", dim)
    mask_tokens = NUM_MULTIMASK_OUTPUTS + 1
    _param(out, f"{prefix}.iou_token.weight", 1, dim)
    _param(out, f"{prefix}.mask_tokens.weight", mask_tokens, dim)
    # ConvTranspose2d weights are (in, out, k, k).
    _param(out, f"{prefix}.output_upscaling.0.weight", dim, dim // 4, 2, 2)
    _param(out, f"{prefix}.output_upscaling.0.bias", dim // 4)
    _norm(out, f"{prefix}.output_upscaling.1", dim // 4)
    _param(out, f"{prefix}.output_upscaling.3.weight", dim // 4, dim // 8, 2, 2)
    _param(out, f"{prefix}.output_upscaling.3.bias", dim // 8)
    for i in range(mask_tokens):
        hypernetwork = f"{prefix}.output_hypernetworks_mlps.{i}"
        _mlp(out, hypernetwork, dim, dim, dim // 8, HYPERNETWORK_MLP_DEPTH)
    _mlp(
        out, f"{prefix}.iou_prediction_head", dim, IOU_HEAD_HIDDEN_DIM, mask_tokens, IOU_HEAD_DEPTH
    )


def mobile_sam_layout() -> Layout:
    """Ordered {key: (shape, dtype)} of the official MobileSAM `vit_t` checkpoint (439 keys).

    dtypes are safetensors names: "F32" for parameters and running statistics, "I64" for
    BatchNorm `num_batches_tracked` (shape `()`).
    """
    out: Layout = {}
    _image_encoder(out, "image_encoder")
    _prompt_encoder(out, "prompt_encoder")
    _mask_decoder(out, "mask_decoder")
    return out
