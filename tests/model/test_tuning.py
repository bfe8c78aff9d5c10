"""`sandseg tune` tunes the products the model really runs (sandseg.model.tuning)."""

from __future__ import annotations

import numpy as np

from sandseg.model.tuning import MATMUL_SHAPES
from sandseg.ops import variants


def test_the_tuned_matmul_shapes_are_those_of_an_image_and_a_click(
    predictor, reference, monkeypatch
):
    seen = set()
    shape_class = variants.matmul_class

    def record(m: int, k: int, n: int) -> str:
        seen.add((m, k, n))
        return shape_class(m, k, n)

    monkeypatch.setattr(variants, "matmul_class", record)
    predictor.set_image(reference["image_rgb"])
    predictor.predict(point_coords=np.array([[500, 375]]), point_labels=np.array([1]))
    assert seen == set(MATMUL_SHAPES), (
        f"missing from MATMUL_SHAPES: {sorted(seen - set(MATMUL_SHAPES))}; "
        f"no longer run: {sorted(set(MATMUL_SHAPES) - seen)}"
    )
