"""The indexed label map as an 8-bit grayscale PNG (zlib + struct, no Pillow): 0 background,
k where object k (1-based) is, later objects over earlier ones."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

from .errors import AnnotationError, check_mask, check_size

MAX_OBJECTS = 255  # one byte a pixel
_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def label_png(width: int, height: int, masks: Sequence[bytes]) -> bytes:
    """Row-major (height, width) 0/1 masks, in object order -> PNG bytes."""
    if len(masks) > MAX_OBJECTS:
        raise AnnotationError(
            f"a label PNG holds at most {MAX_OBJECTS} objects (one byte a pixel); got "
            f"{len(masks)}: export COCO JSON instead"
        )
    return encode_png(width, height, label_map(width, height, masks))


def label_map(width: int, height: int, masks: Sequence[bytes]) -> bytes:
    """The (height, width) label bytes: 0, or the number of the last object covering a pixel."""
    check_size(width, height)
    size = width * height
    everything = (1 << (8 * size)) - 1
    labels = 0
    # Whole maps as integers, one byte a pixel: a 0/1 mask times k is 0/k in every byte
    # (no carries), times 255 selects the pixels to overwrite.
    for k, mask in enumerate(masks, start=1):
        bits = int.from_bytes(check_mask(mask, width, height, f"object {k}"))
        labels = (labels & (everything ^ (bits * 255))) | bits * k
    return labels.to_bytes(size)


def encode_png(width: int, height: int, pixels: bytes) -> bytes:
    """8-bit grayscale PNG of row-major pixels, no filtering."""
    rows = b"".join(b"\x00" + pixels[y * width : (y + 1) * width] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"".join(
        [
            _SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(rows, 6)),
            _chunk(b"IEND", b""),
        ]
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
