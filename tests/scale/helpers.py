"""Request bodies and checks shared by the scale-out tests."""

from __future__ import annotations

import struct

from sandseg.weights.safetensors import dump_safetensors
from sandseg.weights.tensor import HostTensor

OCTETS = {"Content-Type": "application/octet-stream"}
JPEG = {"Content-Type": "image/jpeg"}


def click(x: float, y: float, label: int = 1) -> bytes:
    """One point, three masks, the best mask's low-res logits: the page's server-mode click."""
    tensors = {
        "point_coords": HostTensor("F32", (1, 2), struct.pack("<2f", x, y)),
        "point_labels": HostTensor("I32", (1,), struct.pack("<i", label)),
    }
    return dump_safetensors(tensors, {"multimask_output": "true", "low_res": "best"})


def clicks(count: int, width: int, height: int) -> list[bytes]:
    """`count` clicks spread over the image, on a fixed grid (the same in every run)."""
    return [
        click(width * (0.1 + 0.8 * ((i * 7) % count) / count), height * (0.15 + 0.7 * i / count))
        for i in range(count)
    ]
