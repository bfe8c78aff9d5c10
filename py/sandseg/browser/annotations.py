"""The page's objects in and out of annotation formats (sandseg.annotations), for the worker.

Requests come from web/annotations.js as JS objects: {fileName, width, height, objects:
[{name, mask: Uint8Array (height * width, 0/1, row-major), iou: number | null}]}. Each
function reads them into plain Python values first (`read_request`), so the native tests can
check the conversion without a browser.
"""

from __future__ import annotations

import json
from typing import Any

from pyodide.ffi import to_js

from ..annotations import coco_document, label_png, objects_from_coco
from ..predictor import InputError
from . import marshal


def read_request(js_request: Any) -> dict[str, Any]:
    """{file_name, width, height, objects: [{name, mask: bytes, iou}]}, each mask checked to
    hold width * height bytes."""
    width, height = int(js_request.width), int(js_request.height)
    objects = []
    for index, item in enumerate(js_request.objects):
        mask = item.mask.to_bytes()
        if len(mask) != width * height:
            raise InputError(
                f"object {index + 1} ({item.name}) has a {len(mask)}-byte mask; the image needs "
                f"{width} x {height} = {width * height}"
            )
        iou = item.iou
        objects.append({"name": str(item.name), "mask": mask, "iou": _number_or_none(iou)})
    return {
        "file_name": str(js_request.fileName),
        "width": width,
        "height": height,
        "objects": objects,
    }


def coco_json(js_request: Any, segmentation: str = "rle", tolerance: float = 1.0) -> str:
    """The objects as one COCO document (JSON text): one image, one category per name;
    segmentation "rle" (compressed, exact) or "polygon" (outer contours and holes,
    simplified at `tolerance` pixels: sandseg.annotations)."""
    request = read_request(js_request)
    document = coco_document(**request, segmentation=segmentation, tolerance=tolerance)
    return json.dumps(document, separators=(",", ":"))


def label_image(js_request: Any) -> Any:
    """The objects as an 8-bit PNG (a JS Uint8Array): 0 background, k for object k."""
    request = read_request(js_request)
    masks = [item["mask"] for item in request["objects"]]
    return to_js(memoryview(label_png(request["width"], request["height"], masks)))


def import_coco(text: str, width: int, height: int, file_name: str) -> Any:
    """A COCO document (JSON text) for the open image -> [{name, mask: Uint8Array, iou}]."""
    objects = read_coco(text, width, height, file_name)
    return marshal.js_object([{**o, "mask": to_js(memoryview(o["mask"]))} for o in objects])


def read_coco(text: str, width: int, height: int, file_name: str) -> list[dict[str, Any]]:
    """import_coco's plain values: [{name, mask: height * width bytes, iou}]. The document
    must name the open image (`file_name`) and have its size."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise InputError(f"the file is not JSON ({exc}); choose a COCO .json file") from None
    images = document.get("images") if isinstance(document, dict) else None
    if isinstance(images, list):
        names = [i.get("file_name") for i in images if isinstance(i, dict)]
        if names and file_name not in names:
            listed = ", ".join(repr(n) for n in names[:3])
            raise InputError(
                f"the document is for {listed}, not the open image {file_name!r}; "
                "open that image first, or choose the document made for this one"
            )
    return objects_from_coco(document, width=width, height=height, file_name=file_name)


def _number_or_none(value: Any) -> float | None:
    if value is None or not isinstance(value, (int, float)):
        return None
    return float(value)
