"""Annotations of several objects on one image: COCO JSON (export and import), the indexed
label PNG, and polygons traced from masks. Standard library only (it runs in Pyodide).

Masks are row-major (height, width) bytes of 0/1, one byte a pixel. The COCO document holds
one image (id 1), one category per distinct object name (ids from 1 in order of first
appearance) and one annotation per object (ids from 1) with `area` (pixels), `bbox` [x, y, w,
h], `iscrowd` 0 and `score` (the predicted IoU) when known. `segmentation` is either

- "rle" (the default): COCO compressed RLE {"size": [h, w], "counts": str}, exact; or
- "polygon": the mask's outer contours and holes traced along pixel corners (foreground
  8-connected) and simplified with Douglas-Peucker at `tolerance` pixels (recorded in
  `info.polygon_tolerance`). COCO readers (pycocotools' annToRLE, and the tools built on it)
  *unite* an annotation's polygons, so a hole cannot be a polygon of its own: each hole is
  spliced into its outer contour by a zero-width bridge walked there and back ("keyhole"),
  with the hole running the other way round. One polygon per 8-connected piece; filled
  even-odd (pycocotools) or nonzero, the bridge cancels and the hole stays empty. An empty
  mask has no polygon and is written as RLE.

Import (`objects_from_coco`) reads both: RLE exactly (compressed or uncompressed counts),
polygons filled even-odd per polygon and united, as pycocotools reads them.
"""

from .coco import SEGMENTATIONS, bbox, coco_document, coco_polygons, objects_from_coco, polygons
from .errors import AnnotationError
from .png import MAX_OBJECTS, label_map, label_png

__all__ = [
    "MAX_OBJECTS",
    "SEGMENTATIONS",
    "AnnotationError",
    "bbox",
    "coco_document",
    "coco_polygons",
    "label_map",
    "label_png",
    "objects_from_coco",
    "polygons",
]
