"""The weights as the page ships them (float16-stored, upcast to float32 on load) against the
official outputs, from the decoded photo through the whole pipeline.

float16 storage rounds every weight matrix (relative error up to 2**-11), so the strict
float32 thresholds of test_conformance.py do not apply; these are the stated ones for
float16-stored weights (issue 14, RELIABILITY.md RT-1's f16 line): masks IoU >= 0.99, IoU
predictions within 1e-3, mask logits within 0.02 (measured: IoU >= 0.996, logits within
0.0045, IoU predictions within 1e-4, on the conformance checkpoint).
"""

from __future__ import annotations

import numpy as np
import pytest

from sandseg import Predictor
from tests.model.conftest import describe, mask_iou

PROMPTS = ["center_point", "two_points", "center_box"]
MASK_IOU = 0.99
IOU_PREDICTIONS = 1e-3
LOGITS = 0.02


@pytest.mark.slow
@pytest.mark.requirement("RT-1")
def test_f16_stored_weights_keep_the_official_masks(gpu_device, converted_weights_f16, reference):
    predictor = Predictor.from_weights(converted_weights_f16, gpu_device)
    predictor.set_image(reference["image_rgb"])
    for prompt in PROMPTS:
        key = f"{prompt}__multi__"
        logits, iou, _ = predictor.predict(
            reference.get(f"{prompt}__point_coords"),
            reference.get(f"{prompt}__point_labels"),
            reference.get(f"{prompt}__box"),
            None,
            True,
            return_logits=True,
        )
        want_logits = reference[key + "mask_logits"][0]
        assert np.abs(logits - want_logits).max() <= LOGITS, describe(logits, want_logits)
        assert np.abs(iou - reference[key + "iou_predictions"][0]).max() <= IOU_PREDICTIONS
        for c, want in enumerate(reference[key + "masks"][0]):
            iou_c = mask_iou(logits[c] > 0, want)
            assert iou_c >= MASK_IOU, f"{prompt} mask {c}: IoU {iou_c:.5f}"
