"""`sandseg tune` tunes the products and convolutions the model really runs."""

from __future__ import annotations

import numpy as np

from sandseg.model.tuning import CONV2D_SHAPES, MATMUL_SHAPES
from sandseg.ops import conv, variants


def test_the_tuned_shapes_are_those_of_an_image_and_a_click(predictor, reference, monkeypatch):
    seen = set()
    convs = set()
    shape_class, conv_class = variants.matmul_class, conv.conv2d_class

    def record(m: int, k: int, n: int) -> str:
        seen.add((m, k, n))
        return shape_class(m, k, n)

    def record_conv(geometry: tuple[int, ...], groups: int) -> str:
        h, w, cin, cout, _, _, kh, kw, stride, padding = geometry[:10]
        convs.add((h, w, cin, cout, kh, kw, stride, padding, groups))
        return conv_class(geometry, groups)

    monkeypatch.setattr(variants, "matmul_class", record)
    monkeypatch.setattr(conv, "conv2d_class", record_conv)
    predictor.set_image(reference["image_rgb"])
    predictor.predict(point_coords=np.array([[500, 375]]), point_labels=np.array([1]))
    assert seen == set(MATMUL_SHAPES), (
        f"missing from MATMUL_SHAPES: {sorted(seen - set(MATMUL_SHAPES))}; "
        f"no longer run: {sorted(set(MATMUL_SHAPES) - seen)}"
    )
    assert convs == set(CONV2D_SHAPES), sorted(convs)
