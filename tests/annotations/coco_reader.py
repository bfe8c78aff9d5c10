"""pycocotools, COCO's own reader, as the judge of exported documents."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask


def annotation_mask(annotation: dict[str, Any], height: int, width: int) -> np.ndarray:
    """What pycocotools' COCO.annToMask reads from an annotation: (H, W) bool."""
    segmentation = annotation["segmentation"]
    with warnings.catch_warnings():
        # pycocotools' Cython passes copy=False to a numpy 2 array protocol that warns; the
        # decoded values are unaffected.
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        if isinstance(segmentation, list):
            rle = coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
        elif isinstance(segmentation["counts"], list):
            rle = coco_mask.frPyObjects(segmentation, height, width)
        else:
            rle = {**segmentation, "counts": segmentation["counts"].encode()}
        return coco_mask.decode(rle).astype(bool)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))
