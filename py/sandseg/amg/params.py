"""The generator's parameters, checked before any GPU work (RELIABILITY.md AM-1).

Bounds: at most MAX_POINTS_PER_SIDE points per side (a grid of that many squared prompts per
crop) and MAX_CROP_LAYERS crop layers; every other value must make sense for the official
algorithm. A bad value raises InputError naming the parameter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..predictor import InputError
from .grids import Point, build_all_layer_point_grids, layer_points_per_side

MAX_POINTS_PER_SIDE = 64
MAX_CROP_LAYERS = 2
OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")


# Mask logits stay within tens of units; an offset beyond this only makes every mask
# unstable (or, past float32's range, cannot reach the GPU at all).
MAX_STABILITY_OFFSET = 1000.0


@dataclass(frozen=True)
class GeneratorParams:
    points_per_side: int | None = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    point_grids: Sequence[Sequence[Point]] | None = None
    min_mask_region_area: int = 0
    output_mode: str = "binary_mask"

    def __post_init__(self) -> None:
        _check_int("points_per_batch", self.points_per_batch, 1, None)
        _check_int("crop_n_layers", self.crop_n_layers, 0, MAX_CROP_LAYERS)
        _check_int("crop_n_points_downscale_factor", self.crop_n_points_downscale_factor, 1, None)
        _check_int("min_mask_region_area", self.min_mask_region_area, 0, None)
        for name in ("pred_iou_thresh", "stability_score_thresh", "box_nms_thresh"):
            _check_float(name, getattr(self, name), 0.0, 1.0)
        _check_float("crop_nms_thresh", self.crop_nms_thresh, 0.0, 1.0)
        _check_float(
            "stability_score_offset", self.stability_score_offset, 0.0, MAX_STABILITY_OFFSET
        )
        _check_float("crop_overlap_ratio", self.crop_overlap_ratio, 0.0, 1.0)
        if self.output_mode not in OUTPUT_MODES:
            raise InputError(
                f"output_mode must be one of {', '.join(OUTPUT_MODES)}; got {self.output_mode!r}"
            )
        if (self.points_per_side is None) == (self.point_grids is None):
            raise InputError("give exactly one of points_per_side and point_grids")
        if self.points_per_side is not None:
            _check_int("points_per_side", self.points_per_side, 1, MAX_POINTS_PER_SIDE)
            sides = layer_points_per_side(
                self.points_per_side, self.crop_n_layers, self.crop_n_points_downscale_factor
            )
            if sides[-1] < 1:
                raise InputError(
                    f"crop_n_points_downscale_factor {self.crop_n_points_downscale_factor} "
                    f"leaves no points in crop layer {self.crop_n_layers} "
                    f"(points_per_side {self.points_per_side}): lower it or crop_n_layers"
                )
        else:
            self._check_point_grids()

    def _check_point_grids(self) -> None:
        grids = self.point_grids or []
        if len(grids) != self.crop_n_layers + 1:
            raise InputError(
                f"point_grids must hold one grid per crop layer ({self.crop_n_layers + 1}), "
                f"got {len(grids)}"
            )
        for i, grid in enumerate(grids):
            if not 1 <= len(grid) <= MAX_POINTS_PER_SIDE**2:
                raise InputError(
                    f"point_grids[{i}] must hold 1 to {MAX_POINTS_PER_SIDE**2} points, "
                    f"got {len(grid)}"
                )
            for point in grid:
                if len(point) != 2 or not all(
                    isinstance(v, int | float) and 0.0 <= v <= 1.0 for v in point
                ):
                    raise InputError(
                        f"point_grids[{i}] points must be (x, y) in [0, 1]; got {point!r}"
                    )

    def grids(self) -> list[list[Point]]:
        """The normalised point grid of each crop layer."""
        if self.points_per_side is not None:
            return build_all_layer_point_grids(
                self.points_per_side, self.crop_n_layers, self.crop_n_points_downscale_factor
            )
        return [[(float(x), float(y)) for x, y in grid] for grid in self.point_grids or []]


def _check_int(name: str, value: Any, low: int, high: int | None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InputError(f"{name} must be {bound}, got {value}")


def _check_float(name: str, value: Any, low: float, high: float | None) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise InputError(f"{name} must be {bound}, got {value:g}")
