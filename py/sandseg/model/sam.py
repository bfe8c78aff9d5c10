"""MobileSAM: image encoder + prompt encoder + mask decoder, with pre- and post-processing on
the GPU. Coordinates are in original-image pixels, as in the official SamPredictor."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .. import ops
from ..gpu import Device, Tensor
from ..weights import HostTensor
from ..weights.layout import EMBED_GRID, LOW_RES
from ..weights.layout import IMG_SIZE as INPUT_SIZE
from . import batched
from .batched import SharedImage
from .mask_decoder import NUM_MASK_TOKENS, MaskDecoder
from .params import WeightStore
from .prompt_encoder import PromptEncoder
from .tiny_vit import TinyViT

# The image that start-up work (pipeline compilation, timing probes) runs on: landscape, as
# most photos are, so that the padding is exercised too.
PROBE_SIZE = (768, 1024)


def probe_image(channels: int = 4) -> tuple[bytes, int, int, int]:
    """(pixels, height, width, channels) of a PROBE_SIZE image for start-up work: a ramp, so
    that nothing downstream is constant."""
    height, width = PROBE_SIZE
    size = height * width * channels
    return bytes(range(256)) * (size // 256) + bytes(size % 256), height, width, channels


@dataclass(frozen=True)
class ImageInfo:
    """Sizes of the image being segmented: original (h, w) and resized-to-1024 (h, w)."""

    original: tuple[int, int]
    resized: tuple[int, int]


class MobileSAM:
    def __init__(
        self, device: Device, tensors: Mapping[str, HostTensor] | Callable[[str], HostTensor]
    ) -> None:
        store = WeightStore(device, tensors)
        self.device = device
        self.image_encoder = TinyViT(store)
        self.prompt_encoder = PromptEncoder(store)
        self.mask_decoder = MaskDecoder(store)
        device.submit()

    def preprocess(
        self, pixels: bytes, height: int, width: int, channels: int
    ) -> tuple[Tensor, ImageInfo]:
        """8-bit image bytes (H, W, channels) -> normalised, padded (1024, 1024, 3) input."""
        new_h, new_w = ops.resize_longest_side(height, width, INPUT_SIZE)
        words = self.device.upload(_pad4(pixels), (-(-len(pixels) // 4),), "u32")
        resized = ops.resize_antialias(words, height, width, channels, new_h, new_w)
        return ops.preprocess(resized, size=INPUT_SIZE), ImageInfo((height, width), (new_h, new_w))

    def encode(
        self,
        x: Tensor,
        start: int = 0,
        stop: int | None = None,
        after_stage: Callable[[str], None] | None = None,
        between_blocks: Callable[[str], None] | None = None,
    ) -> Tensor:
        """Encoder stages [start, stop) on the boundary tensor entering `start`; see TinyViT."""
        return self.image_encoder.run(x, start, stop, after_stage, between_blocks)

    def decode(
        self,
        embeddings: Tensor,
        coords_1024: list[tuple[float, float]],
        labels: list[int],
        mask_input: Tensor | None,
        multimask: bool,
    ) -> tuple[Tensor, Tensor]:
        """-> (low-res logits (C, 256, 256), iou (1, C))."""
        sparse = self.prompt_encoder.sparse(coords_1024, labels)
        dense = self.prompt_encoder.dense(mask_input)
        image = embeddings.reshape(EMBED_GRID * EMBED_GRID, embeddings.shape[-1])
        masks, iou = self.mask_decoder(image, self.prompt_encoder.dense_pe(), sparse, dense)
        first, count = (1, 3) if multimask else (0, 1)
        low_res = self.device.empty((count, LOW_RES, LOW_RES))
        self.device.copy(
            masks, low_res, src_start=first * LOW_RES * LOW_RES, count=count * LOW_RES * LOW_RES
        )
        iou_sel = self.device.empty((1, count))
        self.device.copy(iou, iou_sel, src_start=first, count=count)
        return low_res, iou_sel

    def share_image(self, embeddings: Tensor) -> SharedImage:
        """What decode_batch shares among all prompts on these (64, 64, 256) embeddings."""
        image = embeddings.reshape(EMBED_GRID * EMBED_GRID, embeddings.shape[-1])
        pe = self.prompt_encoder.dense_pe()
        return batched.share_image(self.mask_decoder, image, pe, self.prompt_encoder.dense(None))

    def decode_batch(
        self,
        shared: SharedImage,
        prompts: list[tuple[list[tuple[float, float]], list[int]]],
        multimask: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """Prompts without a mask input, as (coords_1024, labels) with as many tokens each,
        decoded as batches of at most batched.MAX_BATCH. -> (low-res logits (N * C, 256,
        256), prompt by prompt, and their iou (N * C,)); C = 3 with multimask, else 1."""
        if len({len(labels) for _, labels in prompts}) > 1:
            raise ValueError("decode_batch: every prompt must have as many tokens (points)")
        first, count = (1, 3) if multimask else (0, 1)
        plane = LOW_RES * LOW_RES
        low_res = self.device.empty((len(prompts) * count, LOW_RES, LOW_RES))
        iou = self.device.empty((len(prompts) * count,))
        for start in range(0, len(prompts), batched.MAX_BATCH):
            chunk = prompts[start : start + batched.MAX_BATCH]
            coords = [xy for c, _ in chunk for xy in c]
            sparse = self.prompt_encoder.sparse(coords, [x for _, ls in chunk for x in ls])
            sparse = sparse.reshape(len(chunk), -1, sparse.shape[-1])
            masks, ious = batched.decode_batch(self.mask_decoder, shared, sparse)
            for b in range(len(chunk)):
                src, dst = b * NUM_MASK_TOKENS + first, (start + b) * count
                self.device.copy(masks, low_res, src * plane, dst * plane, count * plane)
                self.device.copy(ious, iou, src, dst, count)
        return low_res, iou

    def postprocess(self, low_res: Tensor, info: ImageInfo) -> Tensor:
        """(C, 256, 256) logits -> (C, H, W) logits at the original size."""
        padded = ops.resize_bilinear(low_res, INPUT_SIZE, INPUT_SIZE)
        h, w = info.original
        return ops.resize_bilinear(padded, h, w, crop_h=info.resized[0], crop_w=info.resized[1])


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)
