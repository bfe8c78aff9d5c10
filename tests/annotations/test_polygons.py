"""Polygons traced from masks: exact at tolerance 0, within a stated IoU at 1 pixel, holes
kept by keyholes under both fill rules (pycocotools fills even-odd; canvas defaults to
nonzero)."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg.annotations import coco_document, coco_polygons, polygons

from ..conftest import require
from .coco_reader import annotation_mask, iou
from .shapes import awkward, shapes

# Measured at tolerance 1 px (README "COCO export"): 0.9896-0.9949 on the shapes; 0.89-0.98
# on the noise-like masks of the seeded random demo weights (conformance vectors), whose
# thousands of specks a pixel or two across lose most to simplification.
SHAPES_IOU = 0.985
NOISY_IOU = 0.88


def _centres(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:h, :w]
    return xx + 0.5, yy + 0.5


def _winding(flat: list[int], px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """The winding number of a closed polygon around each point (the nonzero rule's count)."""
    x0, y0 = np.reshape(flat, (-1, 2)).T.astype(float)
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    total = np.zeros(px.shape, int)
    for a, b, c, d in zip(x0, y0, x1, y1, strict=True):
        side = (c - a) * (py - b) - (px - a) * (d - b)  # > 0: the point is left of a->b
        total += ((b <= py) & (py < d) & (side > 0)).astype(int)
        total -= ((d <= py) & (py < b) & (side < 0)).astype(int)
    return total


def _polygon_annotation(mask: np.ndarray, tolerance: float) -> dict:
    h, w = mask.shape
    objects = [{"name": "o", "mask": mask.astype(np.uint8).tobytes(), "iou": None}]
    document = coco_document(
        file_name="a",
        width=w,
        height=h,
        objects=objects,
        segmentation="polygon",
        tolerance=tolerance,
    )
    return document["annotations"][0]


def test_tolerance_zero_is_exact_in_pycocotools(rng):
    """Pixel-corner polygons: diagonal touches, holes, islands, noise of every density."""
    for mask in [*awkward(rng), *shapes().values()]:
        annotation = _polygon_annotation(mask, 0.0)
        if mask.any():
            assert isinstance(annotation["segmentation"], list)
        assert np.array_equal(annotation_mask(annotation, *mask.shape), mask)


@pytest.mark.parametrize("name", list(shapes()))
def test_one_pixel_tolerance_keeps_shapes_within_the_stated_iou(name):
    mask = shapes()[name]
    annotation = _polygon_annotation(mask, 1.0)
    assert iou(annotation_mask(annotation, *mask.shape), mask) >= SHAPES_IOU
    # Simplified: a few points per piece, not one per pixel of the boundary.
    assert sum(len(p) for p in annotation["segmentation"]) < 2 * 150


def test_one_pixel_tolerance_on_a_noisy_demo_mask():
    with np.load(require("amg_seed1234_picture1_B.npz")) as case:
        mask = case["masks"][0]
    annotation = _polygon_annotation(mask, 1.0)
    assert iou(annotation_mask(annotation, *mask.shape), mask) >= NOISY_IOU


def test_holes_are_keyholes_that_both_fill_rules_leave_empty():
    mask = shapes()["island in a hole"]
    h, w = mask.shape
    segmentation = coco_polygons(mask.astype(np.uint8).tobytes(), w, h, 0.0)
    assert len(segmentation) == 2  # the disk with its two holes, and the island
    px, py = _centres(h, w)
    nonzero = np.zeros((h, w), bool)
    for flat in segmentation:
        nonzero |= _winding(flat, px, py) != 0
    assert np.array_equal(nonzero, mask)


def test_polygons_helper_outers_clockwise_holes_counter_clockwise():
    mask = shapes()["island in a hole"]
    h, w = mask.shape
    outers, holes = polygons(mask.astype(np.uint8).tobytes(), w, h, 1.0)
    assert (len(outers), len(holes)) == (2, 2)

    def twice_area(flat: list[int]) -> float:
        x, y = np.reshape(flat, (-1, 2)).T
        return float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))

    assert all(twice_area(ring) > 0 for ring in outers)  # clockwise on screen (y down)
    assert all(twice_area(ring) < 0 for ring in holes)
    # Filled together as one path, by either rule: the mask, within the stated IoU.
    px, py = _centres(h, w)
    winding = sum(_winding(ring, px, py) for ring in outers + holes)
    assert iou(winding % 2 == 1, mask) >= SHAPES_IOU
    assert iou(winding != 0, mask) >= SHAPES_IOU
