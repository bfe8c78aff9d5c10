"""What users hand the predictor, checked once: images (8-bit pixel buffers) and prompts.

A `Prompt` holds SamPredictor.predict's fields in original-image pixels. It is built once,
where a prompt enters (`Prompt.of` from the SamPredictor-shaped arguments, the offload wire
format, the page's JS object), and every layer after that passes it along unchanged: the
predictor, the runtimes, the offload session, the server.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from typing import Any

from .gpu.device import MAX_STORAGE_BINDING
from .model import ImageInfo
from .ops import resize_longest_side
from .weights.layout import IMG_SIZE, LOW_RES

# Points in one prompt: the decoder's cost grows with them and a decode cannot be stopped
# midway (seconds per thousand points on a CPU adapter).
MAX_PROMPT_POINTS = 1024
# The largest image-sized tensor is the (3, H, W) float32 mask logits: 12 bytes a pixel.
MAX_IMAGE_PIXELS = MAX_STORAGE_BINDING // 12
# A low-res mask input: (1, 256, 256) float32.
MASK_INPUT_BYTES = LOW_RES * LOW_RES * 4


class InputError(ValueError):
    """An image or prompt that cannot be used; the message says what is wrong."""


@dataclass(frozen=True)
class Prompt:
    """point_coords: (x, y) per point with point_labels 1 (foreground) or 0 (background);
    box: (x0, y0, x1, y1); mask_input: a (1, 256, 256) float32 low-res mask from an earlier
    prediction, little-endian bytes. At least one point or a box."""

    point_coords: tuple[tuple[float, float], ...] | None = None
    point_labels: tuple[int, ...] | None = None
    box: tuple[float, float, float, float] | None = None
    mask_input: bytes | None = None
    multimask_output: bool = True

    @classmethod
    def of(
        cls,
        point_coords: Any = None,
        point_labels: Any = None,
        box: Any = None,
        mask_input: Any = None,
        multimask_output: bool = True,
    ) -> Prompt:
        """From SamPredictor.predict's arguments (lists, tuples or numpy arrays); raises
        InputError naming what is wrong. Where the numbers lie is checked by `check`."""
        if (point_coords is None) != (point_labels is None):
            raise InputError("point_coords and point_labels must be given together")
        coords = labels = None
        if point_coords is not None:
            coords = tuple((x, y) for x, y in _rows(point_coords, 2, "point_coords"))
            labels = _labels(point_labels, len(coords))
        corners = None
        if box is not None:
            rows = _rows([box] if _is_flat(box) else box, 4, "box")
            if len(rows) != 1:
                raise InputError("box must be one (x0, y0, x1, y1)")
            x0, y0, x1, y1 = rows[0]
            if x1 < x0 or y1 < y0:
                raise InputError(
                    f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) must have x0 <= x1 and y0 <= y1"
                )
            corners = (x0, y0, x1, y1)
        if not coords and corners is None:
            raise InputError("give at least one point or a box")
        return cls(coords, labels, corners, _mask_bytes(mask_input), bool(multimask_output))

    def check(self, image_size: tuple[int, int]) -> None:
        """Raise InputError if a point or box corner lies outside an image of image_size
        (H, W)."""
        h, w = image_size
        corners = [] if self.box is None else [self.box[:2], self.box[2:]]
        for what, points in (("point", self.point_coords or ()), ("box corner", corners)):
            for x, y in points:
                if not (0 <= x <= w and 0 <= y <= h):
                    raise InputError(
                        f"{what} ({x:g}, {y:g}) is outside the image [0, {w}] x [0, {h}]"
                    )

    def tokens(self, info: ImageInfo) -> tuple[list[tuple[float, float]], list[int]]:
        """1024-space coordinates and labels in SAM's token order: points, then a padding
        point (label -1) if there is no box, then the box's two corners (labels 2, 3)."""
        self.check(info.original)
        h, w = info.original
        sx, sy = info.resized[1] / w, info.resized[0] / h
        coords = [(x * sx, y * sy) for x, y in self.point_coords or ()]
        labels = list(self.point_labels or ())
        if self.point_coords is not None and self.box is None:
            coords.append((0.0, 0.0))
            labels.append(-1)
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            coords += [(x0 * sx, y0 * sy), (x1 * sx, y1 * sy)]
            labels += [2, 3]
        # Match the official float32 rounding of the scaled coordinates.
        rounded = array("f", (v for xy in coords for v in xy)).tolist()
        return list(zip(rounded[0::2], rounded[1::2], strict=True)), labels


def check_prompts(
    image_size: tuple[int, int], point_coords: Any = None, point_labels: Any = None, box: Any = None
) -> None:
    """Raise InputError if the prompts cannot be used on an image of image_size (H, W); lets
    callers refuse bad prompts before spending time on the encoder."""
    Prompt.of(point_coords, point_labels, box).check(image_size)


def image_info(height: int, width: int) -> ImageInfo:
    """An image's sizes: original (H, W) and resized so that its longest side is 1024."""
    return ImageInfo((height, width), resize_longest_side(height, width, IMG_SIZE))


def image_bytes(image: Any, image_format: str) -> tuple[bytes, int, int, int]:
    """An 8-bit (H, W[, C]) buffer (numpy array, memoryview) -> (RGB-ordered pixels, H, W, C)."""
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


def _is_flat(box: Any) -> bool:
    return len(box) == 4 and not hasattr(box[0], "__len__")


def _rows(value: Any, width: int, what: str) -> list[tuple[float, ...]]:
    rows = value.tolist() if hasattr(value, "tolist") else value
    try:
        rows = [tuple(float(v) for v in row) for row in rows]
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a list of {width} numbers per row") from None
    if any(len(row) != width for row in rows):
        raise InputError(f"{what} must have {width} numbers per row")
    if not all(math.isfinite(v) for row in rows for v in row):
        raise InputError(f"{what} must be finite numbers")
    return rows


def _labels(point_labels: Any, count: int) -> tuple[int, ...]:
    if count > MAX_PROMPT_POINTS:
        raise InputError(
            f"point_coords has {count} points; a prompt takes at most {MAX_PROMPT_POINTS}"
        )
    try:
        raw = point_labels.tolist() if hasattr(point_labels, "tolist") else list(point_labels)
    except TypeError:
        raise InputError("point_labels must be a list of 1 and 0, one per point") from None
    if len(raw) != count:
        raise InputError(f"point_labels has {len(raw)} labels for {count} points")
    for label in raw:
        if label not in (0, 1):
            raise InputError(
                f"point labels must be 1 (foreground) or 0 (background); got {label!r}"
            )
    return tuple(int(label) for label in raw)


def _mask_bytes(mask_input: Any) -> bytes | None:
    if mask_input is None:
        return None
    if isinstance(mask_input, bytes | bytearray):
        data = bytes(mask_input)
        if len(data) == MASK_INPUT_BYTES:
            return data
        raise InputError(f"mask_input must be (1, 256, 256) float32: {len(data)} bytes given")
    try:
        view = memoryview(mask_input)
    except TypeError:
        raise InputError(
            f"mask_input must be a float32 (1, 256, 256) array; got {type(mask_input).__name__}"
        ) from None
    if view.format not in ("f", "<f", "=f") or view.nbytes != MASK_INPUT_BYTES:
        raise InputError(
            f"mask_input must be float32 of shape (1, 256, 256); got {view.format!r} {view.shape}"
        )
    return view.tobytes()
