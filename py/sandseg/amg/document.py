"""The COCO-style document of the mask generator's records, as `sandseg everything` writes it
and POST /api/v1/images/{sha}/everything answers it: {"image": {"file_name", "height",
"width"}, "annotations": [{"segmentation": {"size": [H, W], "counts": str}, "area", "bbox",
"predicted_iou", "point_coords", "stability_score", "crop_box"}, ...]} (records generated with
output_mode="coco_rle"), in the generator's order. Standard library only.
"""

from __future__ import annotations

import json
import math
from typing import Any


def coco_document(
    records: list[dict[str, Any]], file_name: str, height: int, width: int
) -> dict[str, Any]:
    return {
        "image": {"file_name": file_name, "height": height, "width": width},
        "annotations": [json_safe(r) for r in records],
    }


def to_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, allow_nan=False).encode()


def json_safe(record: dict[str, Any]) -> dict[str, Any]:
    """A stability score of 0/0 (an empty mask, kept only with no stability threshold) is
    NaN, which JSON cannot hold: null instead."""
    score = record["stability_score"]
    return {**record, "stability_score": None if math.isnan(score) else score}
