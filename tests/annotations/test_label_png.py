"""label_png: an 8-bit PNG that Pillow reads as the label map (0 background, k object k)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sandseg.annotations import MAX_OBJECTS, AnnotationError, label_png

from .shapes import H, W, shapes


def test_pillow_reads_the_label_map_later_objects_on_top():
    masks = list(shapes().values())
    expected = np.zeros((H, W), np.uint8)
    for k, mask in enumerate(masks, start=1):
        expected[mask] = k
    png = label_png(W, H, [m.astype(np.uint8).tobytes() for m in masks])
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        assert (image.format, image.mode, image.size) == ("PNG", "L", (W, H))
        assert np.array_equal(np.asarray(image), expected)


def test_no_objects_is_all_background_and_odd_sizes_work():
    with Image.open(io.BytesIO(label_png(1, 3, []))) as image:
        assert np.array_equal(np.asarray(image), np.zeros((3, 1), np.uint8))


def test_at_most_255_objects():
    masks = [b"\x01"] * MAX_OBJECTS
    with Image.open(io.BytesIO(label_png(1, 1, masks))) as image:
        assert np.asarray(image)[0, 0] == 255
    with pytest.raises(AnnotationError, match="at most 255 objects"):
        label_png(1, 1, [*masks, b"\x01"])


def test_bad_masks_are_named():
    with pytest.raises(AnnotationError, match="object 2: mask has 3 bytes"):
        label_png(2, 2, [b"\x00" * 4, b"\x01" * 3])
