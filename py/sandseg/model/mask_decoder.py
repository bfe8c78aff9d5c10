"""SAM's mask decoder: a two-way transformer between prompt tokens and the image embedding,
output upscaling, hypernetwork MLPs and the IoU head."""

from __future__ import annotations

import itertools

from .. import ops
from ..gpu import Tensor
from ..weights.layout import EMBED_GRID, NUM_MULTIMASK_OUTPUTS
from ..weights.layout import PROMPT_EMBED_DIM as DIM
from ..weights.layout import TRANSFORMER_DEPTH as DEPTH
from ..weights.layout import TRANSFORMER_MLP_DIM as MLP_DIM
from .params import WeightStore

HEADS = 8  # changes no weight shape, so the layout does not know it
NUM_MASK_TOKENS = NUM_MULTIMASK_OUTPUTS + 1  # the single-mask output's token first


class Attention:
    """SAM's attention with an internal dimension reduced by `downsample`."""

    def __init__(self, store: WeightStore, prefix: str, downsample: int = 1) -> None:
        inner = DIM // downsample
        self.head_dim = inner // HEADS
        self.q = store.linear(f"{prefix}.q_proj", DIM, inner)
        self.k = store.linear(f"{prefix}.k_proj", DIM, inner)
        self.v = store.linear(f"{prefix}.v_proj", DIM, inner)
        self.out = store.linear(f"{prefix}.out_proj", inner, DIM)

    def __call__(self, q: Tensor, k: Tensor, v: Tensor, residual: Tensor | None = None) -> Tensor:
        return self.attend(self.project_q(q), self.project_k(k), self.project_v(v), residual)

    # The projections apart, so that a batch of prompts can project what they share once.
    def project_q(self, x: Tensor) -> Tensor:
        return ops.linear(x, *self.q)

    def project_k(self, x: Tensor) -> Tensor:
        return ops.linear(x, *self.k)

    def project_v(self, x: Tensor) -> Tensor:
        return ops.linear(x, *self.v)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, residual: Tensor | None = None) -> Tensor:
        """Attention on projected q, k, v (a 2-D one is shared by a 3-D batch), then out_proj."""
        out = ops.attention(q, k, v, heads=HEADS, head_dim=self.head_dim)
        return ops.linear(out, *self.out, residual=residual)


class TwoWayAttentionBlock:
    def __init__(self, store: WeightStore, prefix: str, skip_first_layer_pe: bool) -> None:
        self.skip_first_layer_pe = skip_first_layer_pe
        self.self_attn = Attention(store, f"{prefix}.self_attn")
        self.norm1 = store.layer_norm(f"{prefix}.norm1", DIM)
        self.cross_attn_token_to_image = Attention(store, f"{prefix}.cross_attn_token_to_image", 2)
        self.norm2 = store.layer_norm(f"{prefix}.norm2", DIM)
        self.lin1 = store.linear(f"{prefix}.mlp.lin1", DIM, MLP_DIM)
        self.lin2 = store.linear(f"{prefix}.mlp.lin2", MLP_DIM, DIM)
        self.norm3 = store.layer_norm(f"{prefix}.norm3", DIM)
        self.norm4 = store.layer_norm(f"{prefix}.norm4", DIM)
        self.cross_attn_image_to_token = Attention(store, f"{prefix}.cross_attn_image_to_token", 2)

    def __call__(
        self, queries: Tensor, keys: Tensor, query_pe: Tensor, key_pe: Tensor
    ) -> tuple[Tensor, Tensor]:
        """queries, query_pe: (T, 256) or a batch (B, T, 256); keys: (4096, 256) or
        (B, 4096, 256); key_pe: (4096, 256), shared by a batch."""
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = ops.add(queries, query_pe)
            queries = self.self_attn(q, q, queries, residual=queries)
        queries = ops.layer_norm(queries, *self.norm1)
        q = ops.add(queries, query_pe)
        k = ops.add_tiled(keys, key_pe)
        queries = ops.layer_norm(
            self.cross_attn_token_to_image(q, k, keys, residual=queries), *self.norm2
        )
        queries = self.mlp(queries)
        q = ops.add(queries, query_pe)
        keys = ops.layer_norm(
            self.cross_attn_image_to_token(k, q, queries, residual=keys), *self.norm4
        )
        return queries, keys

    def mlp(self, queries: Tensor) -> Tensor:
        hidden = ops.linear(queries, *self.lin1, act="relu")
        return ops.layer_norm(ops.linear(hidden, *self.lin2, residual=queries), *self.norm3)


class MLP:
    """Linear layers with ReLU between them (none after the last)."""

    def __init__(self, store: WeightStore, prefix: str, dims: list[int]) -> None:
        self.layers = [
            store.linear(f"{prefix}.layers.{i}", a, b)
            for i, (a, b) in enumerate(itertools.pairwise(dims))
        ]

    def __call__(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = ops.linear(x, *layer, act="relu" if i < len(self.layers) - 1 else None)
        return x


class MaskDecoder:
    def __init__(self, store: WeightStore, prefix: str = "mask_decoder") -> None:
        self.device = store.device
        t = f"{prefix}.transformer"
        self.layers = [TwoWayAttentionBlock(store, f"{t}.layers.{i}", i == 0) for i in range(DEPTH)]
        self.final_attn_token_to_image = Attention(store, f"{t}.final_attn_token_to_image", 2)
        self.norm_final_attn = store.layer_norm(f"{t}.norm_final_attn", DIM)
        iou = store.host(f"{prefix}.iou_token.weight", (1, DIM)).data
        masks = store.host(f"{prefix}.mask_tokens.weight", (NUM_MASK_TOKENS, DIM)).data
        self.output_tokens = self.device.upload(iou + masks, (1 + NUM_MASK_TOKENS, DIM))
        self.upscale0 = store.conv_transpose(f"{prefix}.output_upscaling.0", DIM, DIM // 4)
        self.upscale1 = store.layer_norm(f"{prefix}.output_upscaling.1", DIM // 4)
        self.upscale3 = store.conv_transpose(f"{prefix}.output_upscaling.3", DIM // 4, DIM // 8)
        self.hypernetworks = [
            MLP(store, f"{prefix}.output_hypernetworks_mlps.{i}", [DIM, DIM, DIM, DIM // 8])
            for i in range(NUM_MASK_TOKENS)
        ]
        self.iou_head = MLP(
            store, f"{prefix}.iou_prediction_head", [DIM, DIM, DIM, NUM_MASK_TOKENS]
        )

    def __call__(
        self, image_embeddings: Tensor, image_pe: Tensor, sparse: Tensor, dense: Tensor
    ) -> tuple[Tensor, Tensor]:
        """image_embeddings, image_pe, dense: (4096, 256); sparse: (T, 256).

        Returns all 4 masks' low-res logits (4, 256 * 256) planar and IoU predictions (1, 4).
        """
        n_tokens = 1 + NUM_MASK_TOKENS + sparse.shape[0]
        tokens = self.device.empty((n_tokens, DIM))
        self.device.copy(self.output_tokens, tokens)
        self.device.copy(sparse, tokens, dst_start=self.output_tokens.numel)
        keys = ops.add(image_embeddings, dense)
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, image_pe)
        queries = self.final_attention(queries, keys, tokens, image_pe)
        upscaled = self.upscale(keys.reshape(EMBED_GRID, EMBED_GRID, DIM))

        hyper_in = self.device.empty((NUM_MASK_TOKENS, DIM // 8))
        for i, mlp in enumerate(self.hypernetworks):
            token = self._row(queries, 1 + i)
            self.device.copy(mlp(token), hyper_in, dst_start=i * (DIM // 8))
        # masks (4, 65536) = hyper_in (4, 32) @ upscaled (65536, 32)^T, computed as
        # upscaled @ hyper_in^T on the fast matmul path, then made planar.
        pixels = ops.matmul(upscaled.reshape(256 * 256, DIM // 8), ops.permute(hyper_in, (1, 0)))
        masks = ops.permute(pixels, (1, 0))
        iou = self.iou_head(self._row(queries, 0))
        return masks, iou

    def final_attention(
        self, queries: Tensor, keys: Tensor, tokens: Tensor, image_pe: Tensor
    ) -> Tensor:
        """The tokens' last look at the image: queries, tokens (T, 256) or (B, T, 256), keys
        (4096, 256) or (B, 4096, 256), image_pe (4096, 256). Returns the new queries."""
        q = ops.add(queries, tokens)
        k = ops.add_tiled(keys, image_pe)
        attended = self.final_attn_token_to_image(q, k, keys, residual=queries)
        return ops.layer_norm(attended, *self.norm_final_attn)

    def upscale(self, src: Tensor) -> Tensor:
        """(64, 64, 256) keys -> (256, 256, 32); B maps stacked along H, (B * 64, 64, 256),
        give (B * 256, 256, 32)."""
        x = ops.conv_transpose2x2(src, *self.upscale0)  # (128, 128, 64)
        x = ops.layer_norm(x, *self.upscale1, eps=1e-6, act="gelu")
        return ops.conv_transpose2x2(x, *self.upscale3, act="gelu")

    def _row(self, x: Tensor, i: int) -> Tensor:
        row = self.device.empty((1, x.shape[1]))
        self.device.copy(x, row, src_start=i * x.shape[1], count=x.shape[1])
        return row
