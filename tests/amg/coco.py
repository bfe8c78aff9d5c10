"""pycocotools, COCO's own RLE implementation, as the judge of our compressed masks."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask


def decode(segmentation: dict[str, Any]) -> np.ndarray:
    """{"size": [H, W], "counts": str} -> (H, W) bool, decoded by pycocotools."""
    rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode()}
    with warnings.catch_warnings():
        # pycocotools 2.0.11's Cython passes copy=False to a numpy 2 array protocol that
        # warns; the decoded values are unaffected.
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        return coco_mask.decode(rle).astype(bool)


def encode_counts(counts: dict[str, Any]) -> str:
    """An uncompressed RLE compressed by pycocotools: its counts string."""
    h, w = counts["size"]
    return coco_mask.frPyObjects(counts, h, w)["counts"].decode()
