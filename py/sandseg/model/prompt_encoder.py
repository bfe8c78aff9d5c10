"""SAM's prompt encoder: points and boxes -> sparse embeddings, a mask -> dense embeddings."""

from __future__ import annotations

from array import array

from .. import ops
from ..gpu import Tensor
from ..weights.layout import EMBED_GRID as GRID
from ..weights.layout import MASK_IN_CHANS
from ..weights.layout import PROMPT_EMBED_DIM as EMBED_DIM
from .params import WeightStore


class PromptEncoder:
    def __init__(self, store: WeightStore, prefix: str = "prompt_encoder") -> None:
        self.device = store.device
        self.gaussian = store.tensor(
            f"{prefix}.pe_layer.positional_encoding_gaussian_matrix", (2, EMBED_DIM // 2)
        )
        # Label table rows: -1 (padding point) -> not_a_point_embed, 0..3 -> point_embeddings.
        rows = [store.host(f"{prefix}.not_a_point_embed.weight", (1, EMBED_DIM)).data]
        rows += [
            store.host(f"{prefix}.point_embeddings.{i}.weight", (1, EMBED_DIM)).data
            for i in range(4)
        ]
        self.label_table = self.device.upload(b"".join(rows), (5, EMBED_DIM))
        self.no_mask_embed = store.tensor(f"{prefix}.no_mask_embed.weight", (1, EMBED_DIM))
        c4 = MASK_IN_CHANS // 4
        self.mask_conv0 = store.conv(f"{prefix}.mask_downscaling.0", 1, c4, 2)
        self.mask_norm1 = store.layer_norm(f"{prefix}.mask_downscaling.1", c4)
        self.mask_conv3 = store.conv(f"{prefix}.mask_downscaling.3", c4, MASK_IN_CHANS, 2)
        self.mask_norm4 = store.layer_norm(f"{prefix}.mask_downscaling.4", MASK_IN_CHANS)
        w, b = store.conv(f"{prefix}.mask_downscaling.6", MASK_IN_CHANS, EMBED_DIM, 1)
        self.mask_conv6 = (w.reshape(MASK_IN_CHANS, EMBED_DIM), b)
        self._dense_pe: Tensor | None = None

    def dense_pe(self) -> Tensor:
        """(64 * 64, 256): the positional encoding of every image-embedding cell."""
        if self._dense_pe is None:
            self._dense_pe = ops.positional_encoding(None, self.gaussian, grid=(GRID, GRID))
        return self._dense_pe

    def sparse(self, coords_1024: list[tuple[float, float]], labels: list[int]) -> Tensor:
        """Points (and box corners, labels 2 and 3) in 1024-space -> (N, 256) embeddings.

        The caller adds the padding point (label -1) when there is no box, as SAM does.
        """
        coords = self.device.upload(
            array("f", (v for xy in coords_1024 for v in xy)).tobytes(), (len(labels), 2)
        )
        label_t = self.device.upload(array("i", labels).tobytes(), (len(labels),), "i32")
        return ops.positional_encoding(
            coords, self.gaussian, labels=label_t, label_table=self.label_table
        )

    def dense(self, mask_input: Tensor | None) -> Tensor:
        """(64 * 64, 256) dense embeddings: a low-res mask (256, 256, 1) or `no_mask_embed`."""
        if mask_input is None:
            zeros = ops.fill(self.device, (GRID * GRID, EMBED_DIM), 0.0)
            return ops.add_bias(zeros, self.no_mask_embed.reshape(EMBED_DIM))
        x = ops.conv2d(mask_input, *self.mask_conv0, stride=2)
        x = ops.layer_norm(x, *self.mask_norm1, eps=1e-6, act="gelu")
        x = ops.conv2d(x, *self.mask_conv3, stride=2)
        x = ops.layer_norm(x, *self.mask_norm4, eps=1e-6, act="gelu")
        return ops.linear(x, *self.mask_conv6).reshape(GRID * GRID, EMBED_DIM)
