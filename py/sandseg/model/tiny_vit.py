"""TinyViT-5M (MobileSAM's `vit_t` image encoder) as an ordered list of named stages.

Stage boundaries (`patch_embed`, `layers.0` .. `layers.3`, `neck`) are where offloading may
cut the model. Every stage maps a channels-last map (H, W, C) to the next; the official
code's token sequences (L, C) are the same memory as (H, W, C).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from .. import ops
from ..gpu import Tensor

# The architecture's hyper-parameters live with the checkpoint layout derived from them.
from ..weights.layout import (
    DEPTHS,
    EMBED_DIMS,
    EMBEDDINGS_SHAPE,
    IMG_SIZE,
    MBCONV_EXPAND_RATIO,
    MLP_RATIO,
    NUM_HEADS,
    PROMPT_EMBED_DIM,
    WINDOW_SIZES,
    merging_stride,
)
from .params import WeightStore

NECK_DIM = PROMPT_EMBED_DIM


class Conv2dBN:
    """Conv2d (no bias) + BatchNorm, folded at load; 1x1 convolutions run as a matmul."""

    def __init__(
        self,
        store: WeightStore,
        prefix: str,
        c_in: int,
        c_out: int,
        k: int = 1,
        stride: int = 1,
        groups: int = 1,
    ) -> None:
        self.weight, self.bias = store.conv_bn(prefix, c_in, c_out, k, groups)
        self.k, self.stride, self.groups, self.c_in, self.c_out = k, stride, groups, c_in, c_out
        if k == 1 and groups == 1:
            self.weight = self.weight.reshape(c_in, c_out)
        elif groups == c_in == c_out:
            self.weight = self.weight.reshape(k, k, c_out)

    def __call__(self, x: Tensor, act: str | None = None, residual: Tensor | None = None) -> Tensor:
        if self.k == 1 and self.groups == 1:
            return ops.linear(x, self.weight, self.bias, act=act, residual=residual)
        if self.groups == self.c_in == self.c_out:
            return ops.conv2d_depthwise(
                x,
                self.weight,
                self.bias,
                stride=self.stride,
                padding=self.k // 2,
                act=act,
                residual=residual,
            )
        return ops.conv2d(
            x,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.k // 2,
            groups=self.groups,
            act=act,
            residual=residual,
        )


class PatchEmbed:
    def __init__(self, store: WeightStore, prefix: str) -> None:
        n = EMBED_DIMS[0]
        self.conv0 = Conv2dBN(store, f"{prefix}.seq.0", 3, n // 2, 3, stride=2)
        self.conv2 = Conv2dBN(store, f"{prefix}.seq.2", n // 2, n, 3, stride=2)

    def __call__(self, x: Tensor) -> Tensor:  # (1024, 1024, 3) -> (256, 256, 64)
        return self.conv2(self.conv0(x, act="gelu"))


class MBConv:
    def __init__(self, store: WeightStore, prefix: str, dim: int) -> None:
        hidden = dim * MBCONV_EXPAND_RATIO
        self.conv1 = Conv2dBN(store, f"{prefix}.conv1", dim, hidden)
        self.conv2 = Conv2dBN(store, f"{prefix}.conv2", hidden, hidden, 3, groups=hidden)
        self.conv3 = Conv2dBN(store, f"{prefix}.conv3", hidden, dim)

    def __call__(self, x: Tensor) -> Tensor:
        h = self.conv2(self.conv1(x, act="gelu"), act="gelu")
        # The official block applies its last GELU after the shortcut is added.
        return ops.gelu(self.conv3(h, residual=x))


class PatchMerging:
    def __init__(self, store: WeightStore, prefix: str, dim: int, out_dim: int) -> None:
        stride = merging_stride(out_dim)
        self.conv1 = Conv2dBN(store, f"{prefix}.conv1", dim, out_dim)
        self.conv2 = Conv2dBN(
            store, f"{prefix}.conv2", out_dim, out_dim, 3, stride=stride, groups=out_dim
        )
        self.conv3 = Conv2dBN(store, f"{prefix}.conv3", out_dim, out_dim)

    def __call__(self, x: Tensor) -> Tensor:
        return self.conv3(self.conv2(self.conv1(x, act="gelu"), act="gelu"))


class Attention:
    """Windowed multi-head attention with a learned relative-position bias (attn_ratio 1)."""

    def __init__(self, store: WeightStore, prefix: str, dim: int, heads: int, window: int) -> None:
        self.heads, self.key_dim = heads, dim // heads
        self.norm = store.layer_norm(f"{prefix}.norm", dim)
        self.qkv = store.linear(f"{prefix}.qkv", dim, 3 * dim)
        self.proj = store.linear(f"{prefix}.proj", dim, dim)
        self.bias = store.attention_bias(f"{prefix}.attention_biases", heads, window)

    def __call__(self, windows: Tensor) -> Tensor:  # (nW, N, C) -> (nW, N, C)
        x = ops.layer_norm(windows, *self.norm)
        qkv = ops.linear(x, *self.qkv)  # (nW, N, heads * (q | k | v))
        out = ops.qkv_packed(
            qkv, heads=self.heads, key_dim=self.key_dim, v_dim=self.key_dim, bias=self.bias
        )
        return ops.linear(out, *self.proj)


class TinyViTBlock:
    def __init__(self, store: WeightStore, prefix: str, dim: int, heads: int, window: int) -> None:
        self.window = window
        self.attn = Attention(store, f"{prefix}.attn", dim, heads, window)
        self.local_conv = Conv2dBN(store, f"{prefix}.local_conv", dim, dim, 3, groups=dim)
        self.mlp_norm = store.layer_norm(f"{prefix}.mlp.norm", dim)
        self.fc1 = store.linear(f"{prefix}.mlp.fc1", dim, dim * MLP_RATIO)
        self.fc2 = store.linear(f"{prefix}.mlp.fc2", dim * MLP_RATIO, dim)

    def __call__(self, x: Tensor) -> Tensor:  # (H, W, C)
        h, w, _ = x.shape
        # Pad to whole windows; padded tokens pass through the attention's LayerNorm (becoming
        # its bias) and take part in attention unmasked, as in the official code.
        windows = ops.window_partition(x, self.window)
        x = ops.window_reverse(self.attn(windows), h, w, residual=x)
        x = self.local_conv(x)
        hidden = ops.linear(ops.layer_norm(x, *self.mlp_norm), *self.fc1, act="gelu")
        return ops.linear(hidden, *self.fc2, residual=x)


@dataclass(frozen=True)
class Step:
    """One recorded encoder block: `x` is its output; when `last`, the output of `stage`."""

    stage: str
    block: int
    last: bool
    x: Tensor


@dataclass
class Stage:
    """A named piece of the encoder; `run` maps the previous boundary tensor to the next."""

    name: str
    run: Callable[[Tensor], Tensor]
    output_shape: tuple[int, int, int]


class TinyViT:
    """The image encoder: (1024, 1024, 3) normalised image -> (64, 64, 256) embeddings."""

    def __init__(self, store: WeightStore, prefix: str = "image_encoder") -> None:
        self.stages: list[Stage] = []
        res = IMG_SIZE // 4
        self.stages.append(
            Stage(
                "patch_embed", PatchEmbed(store, f"{prefix}.patch_embed"), (res, res, EMBED_DIMS[0])
            )
        )
        # layers.0: MBConv blocks, then merging to the next width.
        blocks = [
            MBConv(store, f"{prefix}.layers.0.blocks.{i}", EMBED_DIMS[0]) for i in range(DEPTHS[0])
        ]
        merge = PatchMerging(store, f"{prefix}.layers.0.downsample", EMBED_DIMS[0], EMBED_DIMS[1])
        res //= 2
        self.stages.append(
            Stage("layers.0", _Sequence([*blocks, merge]), (res, res, EMBED_DIMS[1]))
        )
        for i in range(1, 4):
            dim = EMBED_DIMS[i]
            layers: list[Callable[[Tensor], Tensor]] = [
                TinyViTBlock(
                    store, f"{prefix}.layers.{i}.blocks.{j}", dim, NUM_HEADS[i], WINDOW_SIZES[i]
                )
                for j in range(DEPTHS[i])
            ]
            out_dim = dim
            if i < 3:
                out_dim = EMBED_DIMS[i + 1]
                layers.append(PatchMerging(store, f"{prefix}.layers.{i}.downsample", dim, out_dim))
                res //= merging_stride(out_dim)
            self.stages.append(Stage(f"layers.{i}", _Sequence(layers), (res, res, out_dim)))
        self.stages.append(
            Stage("neck", Neck(store, f"{prefix}.neck", EMBED_DIMS[3]), EMBEDDINGS_SHAPE)
        )
        # The unused classifier head of the checkpoint is not loaded.

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def blocks(self, index: int) -> Sequence[Callable[[Tensor], Tensor]]:
        """Stage `index` as the blocks it runs one after another (a single callable for a
        stage without blocks): the units a caller may submit separately (GP-5)."""
        run = self.stages[index].run
        return run.parts if isinstance(run, _Sequence) else [run]

    def steps(self, x: Tensor, start: int = 0, stop: int | None = None) -> Iterator[Step]:
        """Record stages [start, stop) on the boundary tensor that enters stage `start`, one
        block at a time, yielding after each: the one encoder loop. Nothing is submitted here;
        each driver decides what happens between blocks (the browser submits and awaits each,
        GP-5; the server checks for a cancelled job; `run` records them all)."""
        for index, stage in enumerate(self.stages[start:stop], start=start):
            blocks = self.blocks(index)
            for number, block in enumerate(blocks):
                x = block(x)
                yield Step(stage.name, number, number == len(blocks) - 1, x)

    def run(
        self,
        x: Tensor,
        start: int = 0,
        stop: int | None = None,
        after_stage: Callable[[str], None] | None = None,
        between_blocks: Callable[[str], None] | None = None,
    ) -> Tensor:
        """Run stages [start, stop) on the boundary tensor that enters stage `start`.

        `after_stage(name)` is called once each stage is submitted (the server times stages
        there); `between_blocks(name)` after each block of a stage made of blocks is
        submitted (the server stops the work of a client that went away there)."""
        for step in self.steps(x, start, stop):
            x = step.x
            if between_blocks is not None:
                x.device.submit()
                between_blocks(step.stage)
            if step.last:
                x.device.submit()
                if after_stage is not None:
                    after_stage(step.stage)
        return x


class Neck:
    def __init__(self, store: WeightStore, prefix: str, c_in: int) -> None:
        w, _ = store.conv(f"{prefix}.0", c_in, NECK_DIM, 1, bias=False)
        self.conv0 = w.reshape(c_in, NECK_DIM)
        self.norm1 = store.layer_norm(f"{prefix}.1", NECK_DIM)
        self.conv2, _ = store.conv(f"{prefix}.2", NECK_DIM, NECK_DIM, 3, bias=False)
        self.norm3 = store.layer_norm(f"{prefix}.3", NECK_DIM)

    def __call__(self, x: Tensor) -> Tensor:  # (64, 64, 320) -> (64, 64, 256)
        x = ops.layer_norm(ops.linear(x, self.conv0), *self.norm1, eps=1e-6)
        x = ops.conv2d(x, self.conv2, None, padding=1)
        return ops.layer_norm(x, *self.norm3, eps=1e-6)


class _Sequence:
    def __init__(self, parts: Sequence[Callable[[Tensor], Tensor]]) -> None:
        self.parts = parts

    def __call__(self, x: Tensor) -> Tensor:
        for part in self.parts:
            x = part(x)
        return x
