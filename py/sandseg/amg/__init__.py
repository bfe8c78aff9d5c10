"""Segment everything: segment-anything's automatic mask generator on sandseg's GPU path.

grids (point grids, crop boxes), rle (COCO run-length encoding), nms (box NMS), regions
(small-region removal), params (checked parameters, RELIABILITY.md AM-1), generator (the
algorithm), cli (`sandseg everything`, native). All but cli import only the standard library.
"""

from .generator import AutomaticMaskGenerator
from .params import MAX_CROP_LAYERS, MAX_POINTS_PER_SIDE, GeneratorParams

__all__ = ["MAX_CROP_LAYERS", "MAX_POINTS_PER_SIDE", "AutomaticMaskGenerator", "GeneratorParams"]
