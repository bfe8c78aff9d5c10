"""The generator's paths that the conformance configs leave out, on the GPU: crop layers with
downscaled grids, small-region removal and COCO output, checked for the official records'
invariants (area and box of the decoded mask, crops and points where the grids put them)."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg import AutomaticMaskGenerator
from sandseg.amg.grids import generate_crop_boxes, xyxy_to_xywh
from sandseg.amg.regions import components, row_runs

from . import coco


@pytest.mark.slow
def test_crops_small_regions_and_coco_output_keep_the_records_consistent(predictor, picture1):
    generator = AutomaticMaskGenerator(
        predictor,
        points_per_side=2,
        pred_iou_thresh=0.01,
        stability_score_thresh=0.1,
        stability_score_offset=0.05,
        box_nms_thresh=0.95,
        crop_n_layers=1,
        crop_nms_thresh=0.95,
        crop_n_points_downscale_factor=2,
        min_mask_region_area=2000,
        output_mode="coco_rle",
    )
    records = generator.generate(picture1)
    assert records, "these thresholds keep masks on the seed-1234 weights"
    crops = [xyxy_to_xywh(b) for b in generate_crop_boxes((770, 769), 1, 512 / 1500)[0]]
    for r in records:
        mask = coco.decode(r["segmentation"])
        assert mask.shape == (770, 769)
        assert r["area"] == int(mask.sum())
        ys, xs = np.nonzero(mask)
        x0, y0 = int(xs.min()), int(ys.min())
        assert r["bbox"] == [x0, y0, int(xs.max()) - x0, int(ys.max()) - y0]
        assert r["crop_box"] in crops
        cx, cy, cw, ch = r["crop_box"]
        # The whole image is prompted on a 2x2 grid, each crop of layer 1 at its centre.
        grid = [0.25, 0.75] if r["crop_box"] == crops[0] else [0.5]
        assert r["point_coords"][0] in [[cx + x * cw, cy + y * ch] for y in grid for x in grid]
        # Small-region removal left no island and no hole under 2000 pixels (unless the
        # mask is a single small island).
        islands = components(row_runs(mask.astype(np.uint8).tobytes(), 770, 769, 1))[1]
        holes = components(row_runs(mask.astype(np.uint8).tobytes(), 770, 769, 0))[1]
        assert len(islands) == 1 or min(islands) >= 2000, islands
        assert not holes or min(holes) >= 2000, holes
