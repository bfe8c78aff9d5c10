"""Comparing generator records with the official generator's outputs.

Same masks in the same order, except, explicitly and narrowly, masks whose predicted IoU or
stability score lies within BORDER of an active threshold: float32 noise may put those on
either side, so one may be missing on either side (and nothing else)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..model.conftest import mask_iou

BORDER = 1e-4
MIN_MASK_IOU = 0.99


def reference_records(case: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "segmentation": case["masks"][i],
            "area": int(case["area"][i]),
            "bbox": case["bbox_xywh"][i].tolist(),
            "predicted_iou": float(case["predicted_iou"][i]),
            "point_coords": [case["point_coords"][i].tolist()],
            "stability_score": float(case["stability_score"][i]),
            "crop_box": case["crop_box_xywh"][i].tolist(),
        }
        for i in range(len(case["area"]))
    ]


def borderline(record: dict[str, Any], config: dict[str, Any]) -> bool:
    iou_thresh = config.get("pred_iou_thresh", 0.88)
    stability_thresh = config.get("stability_score_thresh", 0.95)
    return (iou_thresh > 0 and abs(record["predicted_iou"] - iou_thresh) <= BORDER) or (
        stability_thresh > 0 and abs(record["stability_score"] - stability_thresh) <= BORDER
    )


def _same_prompt(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (
        a["point_coords"] == b["point_coords"]
        and a["crop_box"] == b["crop_box"]
        and abs(a["predicted_iou"] - b["predicted_iou"]) <= BORDER
    )


def _describe(r: dict[str, Any]) -> str:
    return (
        f"point {r['point_coords']} crop {r['crop_box']} iou {r['predicted_iou']:.6f} "
        f"stability {r['stability_score']:.6f} bbox {r['bbox']}"
    )


def assert_conforms(got: list[dict[str, Any]], case: dict[str, Any]) -> dict[str, float]:
    """got: records with (H, W) bool segmentations. Returns the worst margins seen."""
    want = reference_records(case)
    config = case["config"]
    extra = [g for g in got if not any(_same_prompt(g, w) for w in want)]
    missing = [w for w in want if not any(_same_prompt(g, w) for g in got)]
    for what, records in (("extra", extra), ("missing", missing)):
        off = [_describe(r) for r in records if not borderline(r, config)]
        assert not off, f"{what} masks not within {BORDER} of a threshold: {off}"
    got = [g for g in got if not any(g is e for e in extra)]
    want = [w for w in want if not any(w is m for m in missing)]
    assert len(got) == len(want), f"{len(got)} masks, reference {len(want)}"
    worst = {"mask_iou": 1.0, "predicted_iou": 0.0, "stability_score": 0.0, "bbox": 0.0}
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        where = f"mask {i}: got {_describe(g)}, want {_describe(w)}"
        assert _same_prompt(g, w), f"order differs at {where}"
        iou = mask_iou(g["segmentation"], w["segmentation"])
        stability = abs(g["stability_score"] - w["stability_score"])
        bbox = float(np.max(np.abs(np.subtract(g["bbox"], w["bbox"]))))
        assert iou >= MIN_MASK_IOU, f"mask IoU {iou:.5f} at {where}"
        assert stability <= 1e-3, f"stability score off by {stability:.2e} at {where}"
        assert bbox <= 1, f"bbox off by {bbox} px at {where}"
        assert g["area"] == int(g["segmentation"].sum()), f"area is not the mask's at {where}"
        worst["mask_iou"] = min(worst["mask_iou"], iou)
        worst["predicted_iou"] = max(
            worst["predicted_iou"], abs(g["predicted_iou"] - w["predicted_iou"])
        )
        worst["stability_score"] = max(worst["stability_score"], stability)
        worst["bbox"] = max(worst["bbox"], bbox)
    worst["compared"] = len(got)
    worst["borderline_differences"] = len(extra) + len(missing)
    return worst
