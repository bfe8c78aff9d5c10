"""Image uploads -> pixels, at the server's edge (Pillow; never in the core).

Decoded as the browser decodes for the page: pixel values as stored, EXIF orientation
applied, so prompts placed on the page land on the same pixels. The size is checked from the
header before any pixel is decoded (no decompression bombs).
"""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np

from ..offload.messages import decode_image
from ..predictor import MAX_IMAGE_PIXELS, InputError, check_image_size
from .http_errors import ApiError

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
PIXELS_TYPE = "application/octet-stream"
# What Pillow raises on bytes it cannot decode: the body's fault (422). Besides OSError
# (UnidentifiedImageError, truncated data) and ValueError (our InputError too) it raises
# SyntaxError (a PNG chunk header inside the pixel data, EXIF that is not TIFF) and
# struct.error (a BigTIFF EXIF header cut short), as the API fuzzer found (SV-7). Anything
# else is a server bug: a 500, not a 422 that would blame the upload.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, struct.error, EOFError)


def decode_upload(body: bytes, media_type: str) -> np.ndarray:
    """An uploaded image (JPEG/PNG/WebP file, or safetensors pixels) -> (H, W, C) uint8."""
    if media_type == PIXELS_TYPE:
        pixels, h, w, c = decode_image(body)
        _check_size(w, h)
        return np.frombuffer(pixels, np.uint8).reshape(h, w, c)
    return _decode_file(body, media_type)


def _decode_file(body: bytes, media_type: str) -> np.ndarray:
    from PIL import Image, ImageOps

    kind = media_type.split("/")[1].upper()
    try:
        with warnings.catch_warnings():
            # Our own size check below replaces Pillow's bomb warning; its UserWarnings are
            # about the upload's own damage (corrupt EXIF, skipped tags) and it decodes on.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.simplefilter("ignore", UserWarning)
            with Image.open(io.BytesIO(body), formats=[kind]) as opened:
                _check_size(*opened.size)
                opened.load()
                image = ImageOps.exif_transpose(opened)
                if image.mode not in ("RGB", "RGBA", "L"):
                    image = image.convert("RGB")
                return np.asarray(image)
    except Image.DecompressionBombError:
        # Pillow refuses the largest sizes from the header before our own check sees them.
        raise ApiError(
            422,
            f"the image is over {MAX_IMAGE_PIXELS / 1e6:.1f} MP, the most the runtime takes: "
            "downscale it first",
        ) from None
    except DECODE_ERRORS:
        raise ApiError(
            422, f"the body is not a readable {kind} image (declared as {media_type})"
        ) from None


def _check_size(width: int, height: int) -> None:
    try:
        check_image_size(width, height)
    except InputError as exc:
        raise ApiError(422, str(exc)) from None
