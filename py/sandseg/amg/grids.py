"""Point grids (normalised to [0, 1]) and crop boxes, as segment-anything builds them.

Float arithmetic follows the official numpy code step by step (same operations in the same
order, in double precision), so the points are bit for bit the official ones.
"""

from __future__ import annotations

import math

Point = tuple[float, float]
Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1 and y1 exclusive


def _linspace(start: float, stop: float, n: int) -> list[float]:
    """numpy.linspace(start, stop, n) with its rounding: start + i * step, last = stop."""
    if n == 1:
        return [start]
    step = (stop - start) / (n - 1)
    values = [i * step + start for i in range(n)]
    values[-1] = stop
    return values


def build_point_grid(n_per_side: int) -> list[Point]:
    """n_per_side**2 points (x, y) evenly spaced in [0, 1]^2, row by row (y outer, x inner)."""
    offset = 1 / (2 * n_per_side)
    side = _linspace(offset, 1 - offset, n_per_side)
    return [(x, y) for y in side for x in side]


def layer_points_per_side(n_per_side: int, n_layers: int, scale_per_layer: int) -> list[int]:
    """Points per side in each crop layer: n_per_side / scale_per_layer**layer, truncated."""
    return [int(n_per_side / (scale_per_layer**i)) for i in range(n_layers + 1)]


def build_all_layer_point_grids(
    n_per_side: int, n_layers: int, scale_per_layer: int
) -> list[list[Point]]:
    """One grid per crop layer (layer 0 is the whole image)."""
    return [
        build_point_grid(n) for n in layer_points_per_side(n_per_side, n_layers, scale_per_layer)
    ]


def generate_crop_boxes(
    im_size: tuple[int, int], n_layers: int, overlap_ratio: float
) -> tuple[list[Box], list[int]]:
    """Crop boxes (x0, y0, x1, y1) and their layer: the whole image, then for layer i >= 1 a
    2**i x 2**i grid of overlapping crops, listed column by column (x outer, y inner)."""
    im_h, im_w = im_size
    short_side = min(im_h, im_w)
    boxes: list[Box] = [(0, 0, im_w, im_h)]
    layers = [0]
    for i_layer in range(n_layers):
        n_crops = 2 ** (i_layer + 1)
        overlap = int(overlap_ratio * short_side * (2 / n_crops))
        crop_w = _crop_len(im_w, n_crops, overlap)
        crop_h = _crop_len(im_h, n_crops, overlap)
        xs = [int((crop_w - overlap) * i) for i in range(n_crops)]
        ys = [int((crop_h - overlap) * i) for i in range(n_crops)]
        for x0 in xs:
            for y0 in ys:
                boxes.append((x0, y0, min(x0 + crop_w, im_w), min(y0 + crop_h, im_h)))
                layers.append(i_layer + 1)
    return boxes, layers


def _crop_len(orig_len: int, n_crops: int, overlap: int) -> int:
    return math.ceil((overlap * (n_crops - 1) + orig_len) / n_crops)


def xyxy_to_xywh(box: Box) -> list[int]:
    """(x0, y0, x1, y1) -> [x0, y0, x1 - x0, y1 - y0], as the official records give boxes."""
    x0, y0, x1, y1 = box
    return [x0, y0, x1 - x0, y1 - y0]
