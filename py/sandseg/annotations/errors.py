"""AnnotationError and the checks every entry point makes on its inputs."""

from __future__ import annotations

from ..inputs import InputError


class AnnotationError(InputError):
    """A document, mask or size that cannot be used; the message says what is wrong (a
    ValueError, and one of the errors the command line prints as one line)."""


def check_size(width: object, height: object) -> tuple[int, int]:
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise AnnotationError(f"image {name} must be a positive integer, got {value!r}")
    return width, height  # type: ignore[return-value]


def check_mask(mask: object, width: int, height: int, what: str) -> bytes:
    """Bytes-like row-major 0/1 mask -> bytes, or AnnotationError."""
    if not isinstance(mask, bytes | bytearray | memoryview):
        raise AnnotationError(f"{what}: mask must be bytes, got {type(mask).__name__}")
    data = bytes(mask)
    if len(data) != width * height:
        raise AnnotationError(
            f"{what}: mask has {len(data)} bytes, a {width}x{height} image needs {width * height}"
        )
    if data.translate(None, b"\x00\x01"):
        raise AnnotationError(f"{what}: mask bytes must be 0 or 1")
    return data
