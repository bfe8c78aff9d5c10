"""objects_from_coco: RLE back exactly, polygons as pycocotools fills them, and bad documents
refused with an AnnotationError that says what is wrong (never a traceback of internals)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from sandseg.amg import rle
from sandseg.annotations import AnnotationError, coco_document, objects_from_coco

from .coco_reader import annotation_mask, iou
from .shapes import H, W, shapes


def _document(segmentation: str = "rle", tolerance: float = 1.0) -> dict:
    objects = [
        {"name": name, "mask": m.astype(np.uint8).tobytes(), "iou": 0.75}
        for name, m in shapes().items()
    ]
    return coco_document(
        file_name="shapes.png",
        width=W,
        height=H,
        objects=objects,
        segmentation=segmentation,
        tolerance=tolerance,
    )


def test_rle_round_trip_is_exact():
    document = json.loads(json.dumps(_document()))
    objects = objects_from_coco(document, width=W, height=H, file_name="shapes.png")
    assert [o["name"] for o in objects] == list(shapes())
    for obj, mask in zip(objects, shapes().values(), strict=True):
        assert obj["mask"] == mask.astype(np.uint8).tobytes()
        assert obj["iou"] == 0.75


def test_uncompressed_counts_read_exactly():
    document = _document()
    for annotation, mask in zip(document["annotations"], shapes().values(), strict=True):
        annotation["segmentation"] = rle.encode(mask.astype(np.uint8).tobytes(), H, W)
        annotation["iscrowd"] = 1
    for obj, mask in zip(
        objects_from_coco(document, width=W, height=H), shapes().values(), strict=True
    ):
        assert obj["mask"] == mask.astype(np.uint8).tobytes()


def test_polygons_fill_as_pycocotools_fills_them():
    """Exact at tolerance 0; simplified, within a few boundary pixels of pycocotools (which
    samples a pixel at x + 0.4 on its 5x grid, not at the centre)."""
    for tolerance in (0.0, 1.0):
        document = _document("polygon", tolerance)
        objects = objects_from_coco(document, width=W, height=H)
        for obj, annotation, mask in zip(
            objects, document["annotations"], shapes().values(), strict=True
        ):
            ours = np.frombuffer(obj["mask"], np.uint8).reshape(H, W).astype(bool)
            theirs = annotation_mask(annotation, H, W)
            if tolerance == 0:
                assert np.array_equal(ours, mask)
            assert iou(ours, theirs) >= 0.995


def test_the_image_is_chosen_by_file_name():
    document = _document()
    other = {"id": 2, "file_name": "other.png", "width": 5, "height": 5}
    document["images"].append(other)
    document["annotations"].append({**document["annotations"][0], "id": 99, "image_id": 2})
    objects = objects_from_coco(document, width=W, height=H, file_name="shapes.png")
    assert len(objects) == len(shapes())  # the other image's annotation is not ours
    with pytest.raises(AnnotationError, match=r"2 images; none is named 'third\.png'"):
        objects_from_coco(document, width=W, height=H, file_name="third.png")


def _broken(path: list, value: object) -> dict:
    document = copy.deepcopy(_document())
    target = document
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


SEG = ["annotations", 0, "segmentation"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "a COCO document is a JSON object"),
        (_broken(["images"], KeyError), "the document has no 'images'"),
        (_broken(["images", 0, "width"], 100), r"for a 100x240 image .* the open image is 320x240"),
        (_broken(["categories"], []), "annotation 1: category_id 1 is not among"),
        (_broken(["annotations", 0, "category_id"], KeyError), "annotation 1 has no 'category_id'"),
        (_broken([*SEG], KeyError), "annotation 1 has no 'segmentation'"),
        (_broken([*SEG], "x"), "annotation 1: 'segmentation' has the wrong type"),
        (_broken([*SEG, "size"], [10, 10]), r"annotation 1: its RLE size is \[10, 10\]"),
        (_broken([*SEG, "counts"], "0`"), r"annotation 1: bad RLE counts \(COCO RLE string ends"),
        (_broken([*SEG, "counts"], "~~~"), "annotation 1: RLE counts hold characters"),
        (_broken([*SEG, "counts"], "52"), "annotation 1: bad RLE counts"),
        (_broken([*SEG, "counts"], [5, -5, W * H]), "annotation 1: bad RLE counts"),
        (_broken([*SEG, "counts"], [1.5, W * H]), "uncompressed RLE counts must be integers"),
        (_broken([*SEG], [[1, 2, 3, 4]]), "annotation 1: a polygon must be a list of at least 3"),
        (_broken([*SEG], [[0, 0, 5, "a", 5, 5]]), "a polygon must be"),
        (_broken(["annotations", 1], "x"), "annotation 2 is not a JSON object"),
    ],
)
def test_bad_documents_say_what_is_wrong(document, message):
    with pytest.raises(AnnotationError, match=message) as caught:
        objects_from_coco(document, width=W, height=H)
    assert isinstance(caught.value, ValueError)
