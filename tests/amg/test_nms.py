"""Box NMS (sandseg.amg.nms): hand-computed cases of torchvision's semantics."""

from __future__ import annotations

import math

from sandseg.amg.nms import box_iou, f32, nms


def test_iou_of_overlapping_disjoint_and_empty_boxes():
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == f32(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert math.isnan(box_iou((0, 0, 0, 0), (0, 0, 0, 0)))


def test_highest_score_first_and_overlaps_above_threshold_dropped():
    boxes = [(0, 0, 10, 10), (1, 0, 11, 10), (20, 20, 30, 30), (0, 0, 10, 10)]
    scores = [0.5, 0.9, 0.7, 0.1]
    # IoU(0, 1) = 90 / 110 = 0.82: 0 goes under 1; 3 duplicates 0, which is gone, but it
    # overlaps 1 by 0.82 too.
    assert nms(boxes, scores, 0.8) == [1, 2]
    assert nms(boxes, scores, 0.85) == [1, 2, 0]


def test_threshold_one_keeps_everything_sorted_by_score_stably():
    boxes = [(0, 0, 4, 4)] * 4
    assert nms(boxes, [0.2, 0.5, 0.2, 0.5], 1.0) == [1, 3, 0, 2]


def test_iou_exactly_at_threshold_is_kept_and_empty_boxes_never_suppress():
    # IoU 0.5 exactly: not above the threshold.
    assert nms([(0, 0, 2, 2), (1, 0, 3, 2)], [1.0, 0.5], 1 / 3) == [0]
    assert nms([(0, 0, 2, 2), (0, 0, 4, 2)], [1.0, 0.5], 0.5) == [0, 1]
    assert nms([(0, 0, 0, 0), (0, 0, 0, 0)], [1.0, 0.5], 0.0) == [0, 1]
