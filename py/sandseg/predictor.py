"""The user API, shaped like the official `SamPredictor`: `set_image` once, `predict` per prompt.

Coordinates are original-image pixels (x, y); labels are 1 (foreground) and 0 (background).
The async methods are the portable API (the browser awaits them); natively, the plain
methods wrap them and convert results to numpy at the edge.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .gpu import Device, Tensor, get_device
from .inputs import (
    MAX_IMAGE_PIXELS,
    MAX_PROMPT_POINTS,
    InputError,
    Prompt,
    check_image_size,
    check_prompts,
    image_bytes,
    image_info,
)
from .model import ImageInfo, MobileSAM
from .model.batched import SharedImage
from .ops import threshold
from .weights.layout import EMBEDDINGS_SHAPE, LOW_RES


@dataclass(frozen=True, repr=False)
class Prediction:
    """Raw results: masks (C, H, W) 0/1 bytes; logits (C, H, W) (only when asked for) and
    low_res (C, 256, 256) little-endian float32 bytes; iou, C floats; submissions: the GPU
    submissions of the decode, in order, (what, seconds) each (GP-5; empty off the GPU)."""

    shape: tuple[int, int, int]
    masks: bytes
    logits: bytes | None
    low_res: bytes
    iou: list[float]
    submissions: tuple[tuple[str, float], ...] = ()

    def __repr__(self) -> str:
        # The default repr would format megabytes of mask bytes (asyncio does ask for it).
        return f"Prediction(shape={self.shape}, iou={self.iou})"

    @property
    def best(self) -> int:
        """The index of the mask with the highest predicted IoU (the first on a tie)."""
        return max(range(len(self.iou)), key=self.iou.__getitem__)

    def as_arrays(self) -> tuple[Any, Any, Any]:
        """Native edge: (masks (C, H, W) bool, or float32 logits when they were read back;
        iou (C,) float32; low-res logits (K, 256, 256) float32) as numpy arrays."""
        import numpy as np

        if self.logits is not None:
            masks = np.frombuffer(self.logits, np.float32).reshape(self.shape)
        else:
            masks = np.frombuffer(self.masks, np.uint8).reshape(self.shape).astype(bool)
        low_res = np.frombuffer(self.low_res, np.float32).reshape(-1, LOW_RES, LOW_RES)
        return masks, np.asarray(self.iou, np.float32), low_res


@dataclass(frozen=True)
class ImageState:
    """An encoded image: embeddings (64, 64, 256) on the GPU and the image's sizes."""

    embeddings: Tensor
    info: ImageInfo


class Predictor:
    def __init__(self, model: MobileSAM) -> None:
        self.model = model
        self.device: Device = model.device
        self._embeddings: Any = None
        self._info: ImageInfo | None = None

    @classmethod
    def from_weights(cls, path: str | Path, device: Device | None = None) -> Predictor:
        """Load a MobileSAM `.pt` checkpoint or converted `.safetensors` file.

        A `.safetensors` file with a manifest beside it (as `sandseg convert` writes) must
        match the sha256 the manifest records."""
        from .weights import load_mobile_sam

        tensors = load_mobile_sam(path)
        return cls(MobileSAM(device or get_device(), tensors))

    @property
    def is_image_set(self) -> bool:
        return self._embeddings is not None

    # -- image ----------------------------------------------------------------------------

    async def set_image_async(
        self,
        image: Any,
        image_format: str = "RGB",
        *,
        after_stage: Callable[[str], None] | None = None,
        between_blocks: Callable[[str], None] | None = None,
    ) -> None:
        """image: (H, W, 3) RGB (or BGR with image_format="BGR"), (H, W, 4) RGBA or (H, W)
        gray, 8-bit, any object with the buffer protocol (a numpy array, a memoryview).
        `after_stage(name)` is called after "preprocess" and each encoder stage is submitted,
        `between_blocks(name)` after each encoder block (see TinyViT.run)."""
        pixels, height, width, channels = image_bytes(image, image_format)
        x, info = self.model.preprocess(pixels, height, width, channels)
        if after_stage is not None:
            self.device.submit()
            after_stage("preprocess")
        embeddings = self.model.encode(x, after_stage=after_stage, between_blocks=between_blocks)
        self._embeddings, self._info = embeddings, info

    def set_image_embedding(self, embedding_hwc: bytes, original_size: tuple[int, int]) -> None:
        """Use embeddings computed elsewhere (a server, a cache): (64, 64, 256) channels-last
        float32 bytes for an image of `original_size` (H, W)."""
        h, w = original_size
        if h <= 0 or w <= 0:
            raise InputError(f"original_size must be positive, got {original_size}")
        self._embeddings = self.device.upload(embedding_hwc, EMBEDDINGS_SHAPE)
        self._info = image_info(h, w)

    def image_state(self) -> ImageState | None:
        """The current image's embeddings (on the GPU) and sizes, to restore later."""
        if self._embeddings is None or self._info is None:
            return None
        return ImageState(self._embeddings, self._info)

    def restore_image(self, state: ImageState) -> None:
        self._embeddings, self._info = state.embeddings, state.info

    def reset_image(self) -> None:
        self._embeddings = None
        self._info = None

    # -- prompts --------------------------------------------------------------------------

    async def predict_async(
        self,
        point_coords: Any = None,
        point_labels: Any = None,
        box: Any = None,
        mask_input: Any = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> Prediction:
        prompt = Prompt.of(point_coords, point_labels, box, mask_input, multimask_output)
        return await self.predict_prompt(prompt, return_logits)

    async def predict_prompt(self, prompt: Prompt, return_logits: bool = False) -> Prediction:
        """predict_async for a prompt already checked (see sandseg.inputs.Prompt)."""
        if self._embeddings is None or self._info is None:
            raise InputError("no image is set: call set_image(image) before predict()")
        info = self._info
        coords, labels = prompt.tokens(info)
        mask = None
        if prompt.mask_input is not None:
            mask = self.device.upload(prompt.mask_input, (LOW_RES, LOW_RES, 1))
        low_res, iou = self.model.decode(
            self._embeddings, coords, labels, mask, prompt.multimask_output
        )
        logits = self.model.postprocess(low_res, info)
        packed = threshold(logits, 0.0)
        count = low_res.shape[0]
        h, w = info.original
        # Submitted and awaited one submission at a time, so that each is timed (GP-5).
        done = await self.device.finish()
        return Prediction(
            shape=(count, h, w),
            masks=_unpack_masks(await self.device.read(packed), count, h * w),
            logits=await self.device.read(logits) if return_logits else None,
            low_res=await self.device.read(low_res),
            iou=array("f", await self.device.read(iou)).tolist(),
            submissions=tuple((s.label, s.seconds) for s in done),
        )

    def record_prediction(
        self, point_coords: Any, point_labels: Any, multimask_output: bool = True
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Record one prediction from points, reading nothing back: (full-size logits
        (C, H, W), iou (1, C), low-res logits (C, 256, 256)), tensors on the GPU. For callers
        that reduce the masks on the GPU before reading (the automatic mask generator)."""
        if self._embeddings is None or self._info is None:
            raise InputError("no image is set: call set_image(image) before predict()")
        coords, labels = Prompt.of(point_coords, point_labels).tokens(self._info)
        low_res, iou = self.model.decode(self._embeddings, coords, labels, None, multimask_output)
        return self.model.postprocess(low_res, self._info), iou, low_res

    def record_batch(
        self, points: list[tuple[float, float]], shared: SharedImage
    ) -> tuple[Tensor, Tensor]:
        """Record the decoding of single foreground points (x, y), three masks each, as one
        batch (MobileSAM.decode_batch), reading nothing back: (low-res logits (3N, 256, 256),
        iou (3N,)), point by point. shared: model.share_image of the current embeddings."""
        if self._embeddings is None or self._info is None:
            raise InputError("no image is set: call set_image(image) before predict()")
        prompts = [Prompt.of([point], [1]).tokens(self._info) for point in points]
        return self.model.decode_batch(shared, prompts)

    async def get_image_embedding_async(self) -> bytes:
        """The image embedding, (64, 64, 256) channels-last float32 bytes."""
        if self._embeddings is None:
            raise InputError("no image is set: call set_image(image) first")
        return await self.device.read(self._embeddings)

    # -- native conveniences (numpy at the edge) ------------------------------------------

    def set_image(self, image: Any, image_format: str = "RGB") -> None:
        asyncio.run(self.set_image_async(image, image_format))

    def predict(
        self,
        point_coords: Any = None,
        point_labels: Any = None,
        box: Any = None,
        mask_input: Any = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> tuple[Any, Any, Any]:
        """-> (masks (C, H, W) bool, or float32 logits with return_logits; iou (C,); low-res
        logits (C, 256, 256)), C = 3 with multimask_output else 1, as numpy arrays."""
        p = asyncio.run(
            self.predict_async(
                point_coords, point_labels, box, mask_input, multimask_output, return_logits
            )
        )
        return p.as_arrays()

    def get_image_embedding(self) -> Any:
        """(1, 256, 64, 64) float32, as the official predictor returns it."""
        import numpy as np

        data = asyncio.run(self.get_image_embedding_async())
        return np.frombuffer(data, np.float32).reshape(64, 64, 256).transpose(2, 0, 1)[None].copy()


def _unpack_masks(words: bytes, count: int, pixels: int) -> bytes:
    stride = -(-pixels // 4) * 4
    return b"".join(words[c * stride : c * stride + pixels] for c in range(count))


__all__ = [
    "MAX_IMAGE_PIXELS",
    "MAX_PROMPT_POINTS",
    "ImageState",
    "InputError",
    "Prediction",
    "Predictor",
    "Prompt",
    "check_image_size",
    "check_prompts",
]
