"""Objects <-> a COCO document of one image (export and import; standard library only).

An object is `{"name": str, "mask": bytes, "iou": float | None}`, the mask row-major
(height, width) bytes of 0/1. See the package docstring for the format's choices.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from ..amg import rle
from .contours import keyhole, simplify, trace
from .errors import AnnotationError, check_mask, check_size
from .raster import rasterize

SEGMENTATIONS = ("rle", "polygon")
IMAGE_ID = 1
_COUNTS_TEXT = re.compile(r"[0-o]*")  # COCO's compressed counts: characters 48..111

Flat = list[int]  # [x0, y0, x1, y1, ...], pixel-corner coordinates


def coco_document(
    *,
    file_name: str,
    width: int,
    height: int,
    objects: Sequence[dict[str, Any]],
    segmentation: str = "rle",
    tolerance: float = 1.0,
) -> dict[str, Any]:
    """Objects (in order) -> a COCO document: image 1, one category per distinct name (ids
    from 1, first appearance), one annotation per object (ids from 1)."""
    check_size(width, height)
    if segmentation not in SEGMENTATIONS:
        raise AnnotationError(f"segmentation must be one of {SEGMENTATIONS}, got {segmentation!r}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
        raise AnnotationError(f"tolerance must be a number of pixels, got {tolerance!r}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise AnnotationError(f"tolerance must be >= 0 pixels, got {tolerance!r}")
    categories: dict[str, int] = {}
    annotations = []
    for index, obj in enumerate(objects, start=1):
        name, mask, iou = _checked_object(obj, index, width, height)
        category = categories.setdefault(name, len(categories) + 1)
        encoded = rle.encode(mask, height, width)
        polygon = coco_polygons(mask, width, height, tolerance) if segmentation == "polygon" else []
        annotation: dict[str, Any] = {
            "id": index,
            "image_id": IMAGE_ID,
            "category_id": category,
            # An empty mask has no polygon: it stays RLE, which every COCO reader takes.
            "segmentation": polygon or rle.to_coco(encoded),
            "area": rle.area(encoded),
            "bbox": bbox(mask, width, height),
            "iscrowd": 0,
        }
        if iou is not None:
            annotation["score"] = iou
        annotations.append(annotation)
    return {
        "info": {
            "description": "segmented with sandseg (MobileSAM)",
            "segmentation": segmentation,
            "polygon_tolerance": float(tolerance),
            "polygon_holes": "keyhole: each hole joined to its outer contour by a bridge "
            "walked both ways, one polygon per piece of the object",
        },
        "images": [{"id": IMAGE_ID, "file_name": file_name, "width": width, "height": height}],
        "annotations": annotations,
        "categories": [
            {"id": i, "name": name, "supercategory": "object"} for name, i in categories.items()
        ],
    }


def polygons(
    mask: bytes, width: int, height: int, tolerance: float = 1.0
) -> tuple[list[Flat], list[Flat]]:
    """A mask's contours, simplified at `tolerance` pixels: (outer contours, holes) as flat
    [x0, y0, x1, y1, ...] rings in pixel-corner coordinates; outer contours run clockwise on
    screen, holes counter-clockwise. Filling all of them together with the even-odd or the
    nonzero rule (one canvas path) gives the mask back (exactly at tolerance 0)."""
    check_size(width, height)
    mask = check_mask(mask, width, height, "mask")
    outers, holes = [], []
    for region in trace(mask, width, height):
        outers.append(_flat(simplify(region.outer, tolerance)))
        holes += [_flat(simplify(hole, tolerance)) for hole in region.holes]
    return outers, holes


def coco_polygons(mask: bytes, width: int, height: int, tolerance: float = 1.0) -> list[Flat]:
    """A mask as COCO polygon segmentation: one polygon per 8-connected piece, its holes
    spliced in as keyholes (COCO unites an annotation's polygons, so a hole cannot be a
    polygon of its own); simplified at `tolerance` pixels."""
    mask = check_mask(mask, width, height, "mask")
    return [
        _flat(
            keyhole(
                simplify(region.outer, tolerance),
                [simplify(hole, tolerance) for hole in region.holes],
            )
        )
        for region in trace(mask, width, height)
    ]


def bbox(mask: bytes, width: int, height: int) -> list[int]:
    """[x, y, w, h] of the set pixels; [0, 0, 0, 0] for an empty mask."""
    rows = [y for y in range(height) if 1 in mask[y * width : (y + 1) * width]]
    if not rows:
        return [0, 0, 0, 0]
    x0, x1 = width, 0
    for y in rows:
        row = mask[y * width : (y + 1) * width]
        x0, x1 = min(x0, row.find(1)), max(x1, row.rfind(1))
    return [x0, rows[0], x1 - x0 + 1, rows[-1] - rows[0] + 1]


def objects_from_coco(
    document: Any, *, width: int, height: int, file_name: str | None = None
) -> list[dict[str, Any]]:
    """A COCO document -> `[{"name", "mask", "iou"}]` for the image of this size, in
    annotation order. The image: the one named `file_name`, else the document's only one.
    RLE (compressed or not) decodes exactly; polygons are filled even-odd and united, as
    pycocotools does. Anything unusable raises AnnotationError naming what and where."""
    check_size(width, height)
    if not isinstance(document, dict):
        raise AnnotationError("a COCO document is a JSON object with images and annotations")
    images = _field(document, "images", list, "the document")
    annotations = _field(document, "annotations", list, "the document")
    categories = _field(document, "categories", list, "the document")
    image = _pick_image(images, file_name)
    size = (_field(image, "width", int, "the image"), _field(image, "height", int, "the image"))
    if size != (width, height):
        raise AnnotationError(
            f"the document is for a {size[0]}x{size[1]} image ({image.get('file_name')!r}); "
            f"the open image is {width}x{height}"
        )
    names = {}
    for i, category in enumerate(categories, start=1):
        where = f"category {i}"
        category = _mapping(category, where)
        names[_field(category, "id", int, where)] = _field(category, "name", str, where)
    image_id = _field(image, "id", int, "the image")
    out = []
    for i, annotation in enumerate(annotations, start=1):
        where = f"annotation {i}"
        annotation = _mapping(annotation, where)
        if _field(annotation, "image_id", int, where) != image_id:
            continue
        category = _field(annotation, "category_id", int, where)
        if category not in names:
            raise AnnotationError(f"{where}: category_id {category} is not among the categories")
        segmentation = _field(annotation, "segmentation", dict | list, where)
        score: Any = annotation.get("score")
        out.append(
            {
                "name": names[category],
                "mask": _decode(segmentation, width, height, where),
                "iou": float(score) if _is_number(score) and math.isfinite(score) else None,
            }
        )
    return out


def _checked_object(obj: Any, index: int, width: int, height: int) -> tuple[str, bytes, Any]:
    where = f"object {index}"
    obj = _mapping(obj, where)
    name = _field(obj, "name", str, where)
    iou = obj.get("iou")
    if iou is not None and not (_is_number(iou) and math.isfinite(iou)):
        raise AnnotationError(f"{where}: iou must be a number or None, got {iou!r}")
    return name, check_mask(obj.get("mask"), width, height, where), iou


def _pick_image(images: list[Any], file_name: str | None) -> dict[str, Any]:
    named = [
        image
        for image in images
        if isinstance(image, dict) and file_name is not None and image.get("file_name") == file_name
    ]
    if named:
        return named[0]
    if len(images) == 1:
        return _mapping(images[0], "the image")
    which = f"none is named {file_name!r}" if file_name else "pass the open image's file name"
    raise AnnotationError(f"the document describes {len(images)} images; {which}")


def _decode(segmentation: dict[str, Any] | list[Any], width: int, height: int, where: str) -> bytes:
    if isinstance(segmentation, list):
        return rasterize(_checked_polygons(segmentation, where), width, height)
    size = _field(segmentation, "size", list, f"{where}'s segmentation")
    if size != [height, width]:
        raise AnnotationError(
            f"{where}: its RLE size is {size}, the open image needs [{height}, {width}] "
            "(height, width)"
        )
    counts = _field(segmentation, "counts", str | list, f"{where}'s segmentation")
    if isinstance(counts, str):
        if not _COUNTS_TEXT.fullmatch(counts):
            raise AnnotationError(f"{where}: RLE counts hold characters COCO never writes")
        try:
            counts = rle.string_to_counts(counts)
        except ValueError as exc:
            raise AnnotationError(f"{where}: bad RLE counts ({exc})") from None
    elif not all(isinstance(c, int) and not isinstance(c, bool) for c in counts):
        raise AnnotationError(f"{where}: uncompressed RLE counts must be integers")
    if any(c < 0 for c in counts) or sum(counts) != width * height:
        raise AnnotationError(
            f"{where}: bad RLE counts (they must be >= 0 and cover the {width * height} "
            "pixels of the image)"
        )
    return rle.decode({"size": size, "counts": counts})


def _checked_polygons(polygons: list[Any], where: str) -> list[list[float]]:
    for polygon in polygons:
        if (
            not isinstance(polygon, list)
            or len(polygon) < 6
            or len(polygon) % 2
            or not all(_is_number(v) and math.isfinite(v) for v in polygon)
        ):
            raise AnnotationError(
                f"{where}: a polygon must be a list of at least 3 x, y pairs of numbers"
            )
    return polygons


def _field(container: dict[str, Any], key: str, kind: Any, where: str) -> Any:
    if key not in container:
        raise AnnotationError(f"{where} has no {key!r}")
    value = container[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise AnnotationError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AnnotationError(f"{where} is not a JSON object")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _flat(ring: list[tuple[int, int]]) -> Flat:
    return [v for point in ring for v in point]
