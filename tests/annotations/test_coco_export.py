"""coco_document: the COCO document of several objects, judged by pycocotools."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sandseg.annotations import AnnotationError, coco_document

from .coco_reader import annotation_mask
from .shapes import H, W, awkward, shapes


def _objects(masks: dict[str, np.ndarray]) -> list[dict]:
    return [
        {"name": name, "mask": m.astype(np.uint8).tobytes(), "iou": 0.5 + i / 100}
        for i, (name, m) in enumerate(masks.items())
    ]


def test_rle_decodes_to_each_mask_pixel_for_pixel():
    masks = shapes()
    document = coco_document(file_name="shapes.png", width=W, height=H, objects=_objects(masks))
    document = json.loads(json.dumps(document))  # what a file holds
    assert len(document["annotations"]) == len(masks)
    for annotation, mask in zip(document["annotations"], masks.values(), strict=True):
        assert annotation["segmentation"]["size"] == [H, W]
        assert isinstance(annotation["segmentation"]["counts"], str)
        assert np.array_equal(annotation_mask(annotation, H, W), mask)


def test_rle_is_exact_on_awkward_masks(rng):
    for mask in awkward(rng):
        h, w = mask.shape
        objects = [{"name": "o", "mask": mask.astype(np.uint8).tobytes(), "iou": None}]
        [annotation] = coco_document(file_name="a", width=w, height=h, objects=objects)[
            "annotations"
        ]
        assert np.array_equal(annotation_mask(annotation, h, w), mask)


def test_document_layout_categories_area_bbox_and_score():
    masks = shapes()
    objects = _objects(masks)
    objects[1]["name"] = objects[0]["name"]  # two objects, one category
    objects[2]["iou"] = None
    document = coco_document(
        file_name="shapes.png", width=W, height=H, objects=objects, tolerance=1.5
    )
    assert document["images"] == [{"id": 1, "file_name": "shapes.png", "width": W, "height": H}]
    names = list(dict.fromkeys(o["name"] for o in objects))
    assert [c["name"] for c in document["categories"]] == names
    assert [c["id"] for c in document["categories"]] == list(range(1, len(names) + 1))
    assert "sandseg" in document["info"]["description"]
    assert document["info"]["polygon_tolerance"] == 1.5
    for k, (annotation, obj, mask) in enumerate(
        zip(document["annotations"], objects, masks.values(), strict=True), start=1
    ):
        assert annotation["id"] == k and annotation["image_id"] == 1 and annotation["iscrowd"] == 0
        assert annotation["category_id"] == names.index(obj["name"]) + 1
        assert annotation["area"] == int(mask.sum())
        ys, xs = np.nonzero(mask)
        assert annotation["bbox"] == [xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1]
        assert annotation.get("score") == obj["iou"]


def test_empty_mask_stays_rle_in_polygon_mode():
    objects = [{"name": "nothing", "mask": bytes(W * H), "iou": None}]
    [annotation] = coco_document(
        file_name="a", width=W, height=H, objects=objects, segmentation="polygon"
    )["annotations"]
    assert annotation["bbox"] == [0, 0, 0, 0] and annotation["area"] == 0
    assert not annotation_mask(annotation, H, W).any()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mask": b"\x01" * 3}, "mask has 3 bytes"),
        ({"mask": b"\x02" * (W * H)}, "must be 0 or 1"),
        ({"mask": "text"}, "mask must be bytes"),
        ({"name": 7}, "'name' has the wrong type"),
        ({"iou": "high"}, "iou must be a number"),
    ],
)
def test_bad_objects_are_named(change, message):
    obj = {"name": "o", "mask": bytes(W * H), "iou": None, **change}
    with pytest.raises(AnnotationError, match=message) as caught:
        coco_document(file_name="a", width=W, height=H, objects=[obj])
    assert "object 1" in str(caught.value)


def test_bad_options():
    with pytest.raises(AnnotationError, match="segmentation must be one of"):
        coco_document(file_name="a", width=2, height=2, objects=[], segmentation="mask")
    with pytest.raises(AnnotationError, match="tolerance"):
        coco_document(file_name="a", width=2, height=2, objects=[], tolerance=-1)
    with pytest.raises(AnnotationError, match="width must be a positive integer"):
        coco_document(file_name="a", width=0, height=2, objects=[])
