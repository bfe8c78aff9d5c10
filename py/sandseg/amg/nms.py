"""Box non-maximum suppression with torchvision's `nms` semantics, in pure Python.

Boxes are (x0, y0, x1, y1); areas are (x1 - x0) * (y1 - y0). Boxes are visited by score,
highest first (equal scores keep their input order), and a box is dropped when its IoU with
a box kept before it exceeds the threshold. The IoU is rounded to float32 before the
comparison, as torchvision computes it in the boxes' float32. Returns kept indices in the
order visited.
"""

from __future__ import annotations

from collections.abc import Sequence
from struct import Struct

_F32 = Struct("<f")


def f32(value: float) -> float:
    """value rounded to the nearest float32, as a Python float."""
    return float(_F32.unpack(_F32.pack(value))[0])


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two (x0, y0, x1, y1) boxes in float32; 0/0 (two empty boxes) gives NaN."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    if union == 0:
        return float("nan")
    return f32(inter / union)


def nms(
    boxes: Sequence[Sequence[float]], scores: Sequence[float], iou_threshold: float
) -> list[int]:
    order = sorted(range(len(boxes)), key=lambda i: scores[i], reverse=True)
    suppressed = [False] * len(boxes)
    keep = []
    for rank, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        for j in order[rank + 1 :]:
            if not suppressed[j] and box_iou(boxes[i], boxes[j]) > iou_threshold:
                suppressed[j] = True
    return keep
