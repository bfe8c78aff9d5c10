"""Bad images and prompts get a clear InputError and change nothing (issue 3)."""

from __future__ import annotations

import numpy as np
import pytest

from sandseg.predictor import InputError


@pytest.fixture
def ready(predictor, reference):
    h, w = reference["image_rgb"].shape[:2]
    hwc = np.ascontiguousarray(reference["image_embeddings"][0].transpose(1, 2, 0))
    predictor.set_image_embedding(hwc.tobytes(), (h, w))
    return predictor


@pytest.mark.parametrize(
    ("image", "fragment"),
    [
        (np.zeros((8, 8, 3), np.float32), "8-bit"),
        (np.zeros((8, 8, 3), np.uint16), "8-bit"),
        (np.zeros((8, 8, 2), np.uint8), "1, 3 or 4 channels"),
        (np.zeros((0, 8, 3), np.uint8), "empty"),
        (np.zeros((8, 0), np.uint8), "empty"),
        (np.zeros((2, 2, 2, 3), np.uint8), "shape"),
        ("not an image", "8-bit array"),
    ],
)
def test_bad_images_are_rejected_and_keep_the_previous_image(ready, image, fragment):
    before = ready.get_image_embedding()
    with pytest.raises(InputError, match=fragment):
        ready.set_image(image)
    assert ready.is_image_set
    np.testing.assert_array_equal(ready.get_image_embedding(), before)


def test_unknown_image_format_is_rejected(ready):
    with pytest.raises(InputError, match="image_format"):
        ready.set_image(np.zeros((4, 4, 3), np.uint8), image_format="HSV")


@pytest.mark.parametrize("channels", [3, 4])
def test_bgr_is_the_same_image_with_channels_swapped(rng, channels):
    from sandseg.inputs import image_bytes

    rgb = rng.integers(0, 256, (5, 7, channels), dtype=np.uint8)
    bgr = rgb.copy()
    bgr[..., [0, 2]] = rgb[..., [2, 0]]
    assert image_bytes(bgr, "BGR") == (rgb.tobytes(), 5, 7, channels)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"point_coords": [[10, 10]], "point_labels": [2]}, "1 \\(foreground\\) or 0"),
        ({"point_coords": [[10, 10]], "point_labels": [1, 0]}, "2 labels for 1 points"),
        ({"point_coords": [[10, 10]]}, "together"),
        ({"point_coords": [[-1, 10]], "point_labels": [1]}, "outside the image"),
        ({"point_coords": [[10, 771]], "point_labels": [1]}, "outside the image"),
        ({"point_coords": [[10, float("nan")]], "point_labels": [1]}, "finite"),
        ({"point_coords": [[10, 10, 3]], "point_labels": [1]}, "2 numbers per row"),
        ({"box": [300, 10, 200, 50]}, "x0 <= x1"),
        ({"box": [10, 300, 200, 50]}, "y0 <= y1"),
        ({"box": [10, 10, 2000, 50]}, "outside the image"),
        ({"box": [10, 10, 20]}, "4 numbers"),
        ({}, "at least one point or a box"),
        ({"point_coords": [[5, 5]] * 1025, "point_labels": [1] * 1025}, "at most 1024"),
        ({"box": [10, 10, 20, 20], "mask_input": np.zeros((1, 64, 64), np.float32)}, "mask_input"),
    ],
)
def test_bad_prompts_are_rejected_with_the_reason(ready, kwargs, fragment):
    with pytest.raises(InputError, match=fragment):
        ready.predict(**kwargs)


def test_predict_before_set_image_says_what_to_do(predictor):
    predictor.reset_image()
    with pytest.raises(InputError, match="call set_image"):
        predictor.predict(point_coords=[[1, 1]], point_labels=[1])
