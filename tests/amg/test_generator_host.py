"""The generator's host-side steps, without a GPU: records in each output mode, crop-edge
filtering, small-region removal and the re-run of NMS after it."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg import AutomaticMaskGenerator
from sandseg.amg import rle
from sandseg.amg.generator import Candidate, _near_crop_edge, _remove_small_regions

from . import coco


def _candidate(mask: np.ndarray, box, iou=0.9, crop_box=(0, 0, 12, 10)) -> Candidate:
    h, w = mask.shape
    encoded = rle.encode(mask.astype(np.uint8).tobytes(), h, w)
    return Candidate(iou, 0.97, box, (3.5, 4.25), crop_box, encoded)


@pytest.mark.parametrize("mode", ["binary_mask", "uncompressed_rle", "coco_rle"])
def test_records_in_each_output_mode(mode):
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    generator = AutomaticMaskGenerator(None, output_mode=mode)  # type: ignore[arg-type]
    record = generator._record(_candidate(mask, (3, 2, 8, 4)))
    seg = record.pop("segmentation")
    assert record == {
        "area": 18,
        "bbox": [3, 2, 5, 2],  # XYWH of the inclusive box, as the official records give it
        "predicted_iou": 0.9,
        "point_coords": [[3.5, 4.25]],
        "stability_score": 0.97,
        "crop_box": [0, 0, 12, 10],
    }
    if mode == "binary_mask":
        assert seg == mask.astype(np.uint8).tobytes()
    elif mode == "uncompressed_rle":
        assert seg == rle.encode(mask.astype(np.uint8).tobytes(), 10, 12)
    else:
        np.testing.assert_array_equal(coco.decode(seg), mask)


def test_boxes_near_an_inner_crop_edge_are_dropped_but_not_near_the_image_edge():
    orig = (100, 200)  # H, W
    crop = (80, 0, 200, 60)  # the right column of crops: its left and bottom edges are inner
    assert _near_crop_edge((10, 10, 50, 30), crop, orig)  # x0 + 80 = 90 is within 20 of 80
    assert _near_crop_edge((40, 10, 60, 45), crop, orig)  # y1 = 45 is within 20 of 60
    assert not _near_crop_edge((40, 0, 119, 30), crop, orig)  # top and right are the image's
    assert not _near_crop_edge((21, 10, 60, 39), crop, orig)
    assert not _near_crop_edge((0, 0, 199, 99), (0, 0, 200, 100), orig)


def test_small_regions_are_removed_and_unchanged_masks_win_nms():
    clean = np.zeros((10, 12), bool)
    clean[1:9, 1:10] = True
    noisy = clean.copy()
    noisy[4, 5] = False  # a one-pixel hole
    noisy[0, 11] = True  # a one-pixel island, touching nothing
    masks = [_candidate(noisy, (1, 0, 11, 8), iou=0.99), _candidate(clean, (1, 1, 9, 8))]
    kept = _remove_small_regions(masks, 3, 0.7)
    # Both become the same mask; the unchanged one comes first and the cleaned one overlaps it.
    assert len(kept) == 1 and kept[0] is masks[1]
    kept = _remove_small_regions(masks, 3, 1.0)
    assert [m.iou for m in kept] == [0.9, 0.99]
    assert kept[1].box == (1, 1, 9, 8)
    assert rle.decode(kept[1].rle) == clean.astype(np.uint8).tobytes()
