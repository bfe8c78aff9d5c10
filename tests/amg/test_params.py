"""The generator's parameters are checked before any GPU work (RELIABILITY.md AM-1)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from sandseg import AutomaticMaskGenerator
from sandseg.amg import MAX_CROP_LAYERS, MAX_POINTS_PER_SIDE, GeneratorParams
from sandseg.predictor import InputError


class _NoGPU:
    """Stands for the predictor: any use of it fails the test."""

    def __getattr__(self, name: str):
        raise AssertionError(f"the generator touched the predictor ({name}) while validating")


BAD = [
    ({"points_per_side": MAX_POINTS_PER_SIDE + 1}, r"points_per_side must be between 1 and 64"),
    ({"points_per_side": 0}, r"points_per_side must be between 1 and 64, got 0"),
    ({"points_per_side": 8.5}, r"points_per_side must be an integer"),
    ({"crop_n_layers": MAX_CROP_LAYERS + 1}, r"crop_n_layers must be between 0 and 2, got 3"),
    ({"crop_n_layers": -1}, r"crop_n_layers must be between 0 and 2"),
    ({"points_per_batch": 0}, r"points_per_batch must be at least 1"),
    ({"pred_iou_thresh": 1.5}, r"pred_iou_thresh must be between 0 and 1"),
    ({"stability_score_thresh": float("nan")}, r"stability_score_thresh must be a finite"),
    ({"stability_score_offset": -0.1}, r"stability_score_offset must be between 0 and 1000"),
    # Finite, but past float32: it could not reach the GPU (the API fuzzer found it: a 500).
    ({"stability_score_offset": 1e308}, r"stability_score_offset must be between 0 and 1000"),
    ({"box_nms_thresh": "0.7"}, r"box_nms_thresh must be a finite number"),
    ({"crop_nms_thresh": -1.0}, r"crop_nms_thresh must be between 0 and 1"),
    ({"crop_overlap_ratio": 2.0}, r"crop_overlap_ratio must be between 0 and 1"),
    ({"min_mask_region_area": -5}, r"min_mask_region_area must be at least 0"),
    ({"output_mode": "png"}, r"output_mode must be one of binary_mask, uncompressed_rle"),
    ({"points_per_side": None}, r"give exactly one of points_per_side and point_grids"),
    ({"point_grids": [[(0.5, 0.5)]]}, r"give exactly one of points_per_side and point_grids"),
    (
        {"crop_n_layers": 2, "crop_n_points_downscale_factor": 8, "points_per_side": 32},
        r"crop_n_points_downscale_factor 8 leaves no points in crop layer 2",
    ),
    (
        {"points_per_side": None, "point_grids": [[(0.5, 1.5)]]},
        r"point_grids\[0\] points must be \(x, y\) in \[0, 1\]",
    ),
    (
        {"points_per_side": None, "point_grids": [[(0.5, 0.5)]], "crop_n_layers": 1},
        r"point_grids must hold one grid per crop layer \(2\), got 1",
    ),
]


@pytest.mark.requirement("AM-1")
@pytest.mark.parametrize(("kwargs", "message"), BAD)
def test_out_of_bound_parameters_are_refused_before_any_gpu_work(kwargs, message):
    with pytest.raises(InputError, match=message):
        AutomaticMaskGenerator(_NoGPU(), **kwargs)  # type: ignore[arg-type]


def test_the_bounds_are_am1s(evidence):
    for kwargs in ({"points_per_side": 65}, {"crop_n_layers": 3}):
        with pytest.raises(InputError):
            GeneratorParams(**kwargs)  # type: ignore[arg-type]
    evidence(
        "AM-1",
        f"generator: points_per_side <= {MAX_POINTS_PER_SIDE}, crop_n_layers <= "
        f"{MAX_CROP_LAYERS}, {len(BAD)} bad parameter sets refused before GPU work",
    )


@pytest.mark.requirement("AM-1")
def test_bounds_themselves_are_accepted():
    params = GeneratorParams(points_per_side=64, crop_n_layers=2)
    assert [len(g) for g in params.grids()] == [64 * 64] * 3
    explicit = GeneratorParams(points_per_side=None, point_grids=[[(0, 1), (0.25, 0.5)]])
    assert explicit.grids() == [[(0.0, 1.0), (0.25, 0.5)]]


@pytest.mark.requirement("AM-1")
def test_an_image_the_device_cannot_take_is_refused_before_any_gpu_work():
    generator = AutomaticMaskGenerator(_NoGPU(), points_per_side=4)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"too thin to segment \(3000 x 1 pixels\)"):
        asyncio.run(generator.generate_async(np.zeros((1, 3000, 3), np.uint8)))
    with pytest.raises(InputError, match=r"image must be 8-bit"):
        asyncio.run(generator.generate_async(np.zeros((8, 8, 3), np.float32)))
