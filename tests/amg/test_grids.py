"""Point grids and crop boxes (sandseg.amg.grids) against numpy re-statements of the
official formulas and hand-computed crops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sandseg.amg.grids import build_all_layer_point_grids, build_point_grid, generate_crop_boxes


@pytest.mark.parametrize("n", [1, 2, 8, 16, 32, 64])
def test_point_grid_is_numpy_linspace_row_by_row(n):
    offset = 1 / (2 * n)
    side = np.linspace(offset, 1 - offset, n)
    want = np.stack(np.meshgrid(side, side), axis=-1).reshape(-1, 2)  # x fastest
    got = np.array(build_point_grid(n))
    np.testing.assert_array_equal(got, want)  # bit for bit


def test_layer_grids_shrink_by_the_downscale_factor():
    grids = build_all_layer_point_grids(32, 2, 2)
    assert [len(g) for g in grids] == [32 * 32, 16 * 16, 8 * 8]
    assert [len(g) for g in build_all_layer_point_grids(8, 1, 3)] == [64, 4]


def test_no_crop_layers_is_the_whole_image():
    assert generate_crop_boxes((770, 769), 0, 512 / 1500) == ([(0, 0, 769, 770)], [0])


def test_one_layer_on_picture1_is_four_overlapping_crops_column_by_column():
    boxes, layers = generate_crop_boxes((770, 769), 1, 512 / 1500)
    overlap = int(512 / 1500 * 769 * (2 / 2))  # 262
    crop_w, crop_h = math.ceil((overlap + 769) / 2), math.ceil((overlap + 770) / 2)  # 516
    assert (overlap, crop_w, crop_h) == (262, 516, 516)
    step = crop_w - overlap  # 254
    assert boxes == [
        (0, 0, 769, 770),
        (0, 0, 516, 516),
        (0, step, 516, 770),
        (step, 0, 769, 516),
        (step, step, 769, 770),
    ]
    assert layers == [0, 1, 1, 1, 1]


def test_two_layers_add_sixteen_crops_inside_the_image():
    boxes, layers = generate_crop_boxes((603, 1072), 2, 512 / 1500)
    assert layers == [0] + [1] * 4 + [2] * 16
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= 1072 and 0 <= y0 < y1 <= 603
    assert {b[2] for b in boxes[5:]} >= {1072} and {b[3] for b in boxes[5:]} >= {603}
