"""COCO polygons back to a mask, as pycocotools reads them: each polygon filled by the
even-odd rule, an annotation's polygons united. A pixel is inside when its centre
(x + 0.5, y + 0.5) is, so a polygon along pixel corners gives back exactly its pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def rasterize(polygons: Sequence[Sequence[float]], width: int, height: int) -> bytes:
    """Flat [x0, y0, x1, y1, ...] polygons (pixel-corner coordinates) -> row-major
    (height, width) 0/1 mask bytes."""
    out = bytearray(width * height)
    ones = b"\x01" * width
    for flat in polygons:
        for y, x0, x1 in _spans(flat, width, height):
            out[y * width + x0 : y * width + x1] = ones[: x1 - x0]
    return bytes(out)


def _spans(flat: Sequence[float], width: int, height: int) -> list[tuple[int, int, int]]:
    """(row, first column, one past the last) runs inside one polygon, even-odd."""
    crossings: dict[int, list[float]] = {}
    n = len(flat) // 2
    for i in range(n):
        xa, ya = flat[2 * i], flat[2 * i + 1]
        j = (i + 1) % n
        xb, yb = flat[2 * j], flat[2 * j + 1]
        if ya == yb:
            continue
        # The same edge walked either way crosses the same rows at the same x (bridges
        # cancel), so order its ends by y first.
        if ya > yb:
            xa, ya, xb, yb = xb, yb, xa, ya
        slope = (xb - xa) / (yb - ya)
        # Rows whose centre y + 0.5 lies in [ya, yb).
        for y in range(max(0, math.ceil(ya - 0.5)), min(height, math.ceil(yb - 0.5))):
            crossings.setdefault(y, []).append(xa + (y + 0.5 - ya) * slope)
    spans = []
    for y, xs in crossings.items():
        xs.sort()
        for k in range(0, len(xs) - 1, 2):
            # Columns whose centre x + 0.5 lies in [xs[k], xs[k + 1]).
            x0 = max(0, math.ceil(xs[k] - 0.5))
            x1 = min(width, math.ceil(xs[k + 1] - 0.5))
            if x1 > x0:
                spans.append((y, x0, x1))
    return spans
