"""The user API, shaped like the official `SamPredictor`: `set_image` once, `predict` per prompt.

Coordinates are original-image pixels (x, y); labels are 1 (foreground) and 0 (background).
The async methods are the portable API (the browser awaits them); natively, the plain
methods wrap them and convert results to numpy at the edge.
"""

from __future__ import annotations

import asyncio
import math
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .gpu import Device, Tensor, get_device
from .gpu.device import MAX_STORAGE_BINDING
from .model import ImageInfo, MobileSAM
from .ops import resize_longest_side, threshold
from .weights.layout import EMBEDDINGS_SHAPE, IMG_SIZE, LOW_RES

# Points in one prompt: the decoder's cost grows with them and a decode cannot be stopped
# midway (seconds per thousand points on a CPU adapter).
MAX_PROMPT_POINTS = 1024
# The largest image-sized tensor is the (3, H, W) float32 mask logits: 12 bytes a pixel.
MAX_IMAGE_PIXELS = MAX_STORAGE_BINDING // 12


class InputError(ValueError):
    """An image or prompt that cannot be used; the message says what is wrong."""


@dataclass(frozen=True, repr=False)
class Prediction:
    """Raw results: masks (C, H, W) 0/1 bytes; logits (C, H, W) (only when asked for) and
    low_res (C, 256, 256) little-endian float32 bytes; iou, C floats."""

    shape: tuple[int, int, int]
    masks: bytes
    logits: bytes | None
    low_res: bytes
    iou: list[float]

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
        pixels, height, width, channels = _image_bytes(image, image_format)
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
        self._info = ImageInfo((h, w), resize_longest_side(h, w, IMG_SIZE))

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
        if self._embeddings is None or self._info is None:
            raise InputError("no image is set: call set_image(image) before predict()")
        info = self._info
        coords, labels = _prompt_points(point_coords, point_labels, box, info)
        mask = _mask_input(self.device, mask_input)
        low_res, iou = self.model.decode(self._embeddings, coords, labels, mask, multimask_output)
        logits = self.model.postprocess(low_res, info)
        packed = threshold(logits, 0.0)
        count = low_res.shape[0]
        h, w = info.original
        return Prediction(
            shape=(count, h, w),
            masks=_unpack_masks(await self.device.read(packed), count, h * w),
            logits=await self.device.read(logits) if return_logits else None,
            low_res=await self.device.read(low_res),
            iou=array("f", await self.device.read(iou)).tolist(),
        )

    def record_prediction(
        self, point_coords: Any, point_labels: Any, multimask_output: bool = True
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Record one prediction from points, reading nothing back: (full-size logits
        (C, H, W), iou (1, C), low-res logits (C, 256, 256)), tensors on the GPU. For callers
        that reduce the masks on the GPU before reading (the automatic mask generator)."""
        if self._embeddings is None or self._info is None:
            raise InputError("no image is set: call set_image(image) before predict()")
        coords, labels = _prompt_points(point_coords, point_labels, None, self._info)
        low_res, iou = self.model.decode(self._embeddings, coords, labels, None, multimask_output)
        return self.model.postprocess(low_res, self._info), iou, low_res

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


def check_prompts(
    image_size: tuple[int, int], point_coords: Any = None, point_labels: Any = None, box: Any = None
) -> None:
    """Raise InputError if the prompts cannot be used on an image of image_size (H, W); lets
    callers refuse bad prompts before spending time on the encoder."""
    h, w = image_size
    _prompt_points(point_coords, point_labels, box, ImageInfo((h, w), resize_longest_side(h, w)))


def _image_bytes(image: Any, image_format: str) -> tuple[bytes, int, int, int]:
    if image_format not in ("RGB", "BGR"):
        raise InputError(f"image_format must be 'RGB' or 'BGR', got {image_format!r}")
    try:
        view = memoryview(image)
    except TypeError:
        raise InputError(
            f"image must be an 8-bit array (H, W[, C]); got {type(image).__name__}"
        ) from None
    if view.format not in ("B", "<B", "=B", "|B"):
        raise InputError(f"image must be 8-bit (uint8); got buffer format {view.format!r}")
    if view.ndim not in (2, 3):
        raise InputError(f"image must have shape (H, W) or (H, W, C); got {view.shape}")
    shape = view.shape or ()
    height, width = shape[0], shape[1]
    channels = shape[2] if view.ndim == 3 else 1
    if channels not in (1, 3, 4):
        raise InputError(f"image must be gray, RGB or RGBA (1, 3 or 4 channels); got {channels}")
    if height == 0 or width == 0:
        raise InputError(f"image is empty: {height}x{width}")
    pixels = view.tobytes()
    if image_format == "BGR" and channels >= 3:
        swapped = bytearray(pixels)
        swapped[0::channels], swapped[2::channels] = pixels[2::channels], pixels[0::channels]
        pixels = bytes(swapped)
    return pixels, height, width, channels


def _as_rows(value: Any, width: int, what: str) -> list[list[float]]:
    rows = value.tolist() if hasattr(value, "tolist") else value
    try:
        rows = [[float(v) for v in row] for row in rows]
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a list of {width} numbers per row") from None
    if any(len(row) != width for row in rows):
        raise InputError(f"{what} must have {width} numbers per row")
    if not all(math.isfinite(v) for row in rows for v in row):
        raise InputError(f"{what} must be finite numbers")
    return rows


def _prompt_points(
    point_coords: Any, point_labels: Any, box: Any, info: ImageInfo
) -> tuple[list[tuple[float, float]], list[int]]:
    """Prompts in original pixels -> 1024-space coordinates and labels, SAM's token order:
    points, then a padding point (label -1) if there is no box, then the box's two corners."""
    h, w = info.original
    sx, sy = info.resized[1] / w, info.resized[0] / h

    def check_inside(x: float, y: float, what: str) -> None:
        if not (0 <= x <= w and 0 <= y <= h):
            raise InputError(f"{what} ({x:g}, {y:g}) is outside the image [0, {w}] x [0, {h}]")

    coords: list[tuple[float, float]] = []
    labels: list[int] = []
    if (point_coords is None) != (point_labels is None):
        raise InputError("point_coords and point_labels must be given together")
    if point_coords is not None:
        points = _as_rows(point_coords, 2, "point_coords")
        if len(points) > MAX_PROMPT_POINTS:
            raise InputError(
                f"point_coords has {len(points)} points; a prompt takes at most {MAX_PROMPT_POINTS}"
            )
        raw_labels = (
            point_labels.tolist() if hasattr(point_labels, "tolist") else list(point_labels)
        )
        if len(raw_labels) != len(points):
            raise InputError(f"point_labels has {len(raw_labels)} labels for {len(points)} points")
        for (x, y), label in zip(points, raw_labels, strict=True):
            if label not in (0, 1):
                raise InputError(
                    f"point labels must be 1 (foreground) or 0 (background); got {label!r}"
                )
            check_inside(x, y, "point")
            coords.append((x * sx, y * sy))
            labels.append(int(label))
    if box is not None:
        rows = _as_rows(
            [box] if len(box) == 4 and not hasattr(box[0], "__len__") else box, 4, "box"
        )
        if len(rows) != 1:
            raise InputError("box must be one (x0, y0, x1, y1)")
        x0, y0, x1, y1 = rows[0]
        if x1 < x0 or y1 < y0:
            raise InputError(
                f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) must have x0 <= x1 and y0 <= y1"
            )
        check_inside(x0, y0, "box corner")
        check_inside(x1, y1, "box corner")
    if not coords and box is None:
        raise InputError("give at least one point or a box")
    if point_coords is not None and box is None:
        coords.append((0.0, 0.0))
        labels.append(-1)
    if box is not None:
        coords += [(x0 * sx, y0 * sy), (x1 * sx, y1 * sy)]
        labels += [2, 3]
    # Match the official float32 rounding of the scaled coordinates.
    rounded = array("f", (v for xy in coords for v in xy)).tolist()
    return list(zip(rounded[0::2], rounded[1::2], strict=True)), labels


def _mask_input(device: Device, mask_input: Any) -> Any:
    if mask_input is None:
        return None
    view = memoryview(mask_input) if not isinstance(mask_input, memoryview) else mask_input
    if view.format not in ("f", "<f", "=f") or view.nbytes != LOW_RES * LOW_RES * 4:
        raise InputError(
            f"mask_input must be float32 of shape (1, 256, 256); got {view.format!r} {view.shape}"
        )
    return device.upload(view.tobytes(), (LOW_RES, LOW_RES, 1))


def _unpack_masks(words: bytes, count: int, pixels: int) -> bytes:
    stride = -(-pixels // 4) * 4
    return b"".join(words[c * stride : c * stride + pixels] for c in range(count))


def check_image_size(width: int, height: int) -> None:
    """Refuse images the device limits cannot hold, before any work is done."""
    if width <= 0 or height <= 0:
        raise InputError(f"the image is empty ({width} x {height} pixels)")
    if width * height > MAX_IMAGE_PIXELS:
        raise InputError(
            f"the image is {width} x {height} pixels ({width * height / 1e6:.1f} MP); the "
            f"runtime takes at most {MAX_IMAGE_PIXELS / 1e6:.1f} MP: downscale it first"
        )
    # Resized to 1024 on the long side, the short side must keep at least one pixel.
    if min(width, height) * 2048 < max(width, height):
        raise InputError(f"the image is too thin to segment ({width} x {height} pixels)")
